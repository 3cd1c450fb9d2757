import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { int, loadConfig, optionalStr, str } from '@aese/config';
import type { Env } from '@aese/config';
import { createLogger } from '@aese/logger';
import type { Logger } from '@aese/logger';
import type { Tracing } from '@aese/telemetry';
import { connectNats, DEFAULT_NATS_URL } from '@aese/nats';
import type { NatsConnection } from '@aese/nats';
import { natsInboxPrefix } from '@aese/nats-trust';
import { checkDeployment } from './deployment.js';
export { checkDeployment } from './deployment.js';
import { pkiLayout, spiffeId } from '@aese/pki';
import { TRACING_SETTINGS } from '@aese/telemetry';
import { METRICS_SETTINGS, natsConnectionGauge, startServiceMetrics } from '@aese/telemetry';
import type { ServiceMetrics } from '@aese/telemetry';
import type { Meter } from '@opentelemetry/api';
import { Events } from 'nats';

/** The repository root; the default state folder lives below it. */
export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const DEFAULT_STATE_DIR = join(REPO_ROOT, '.state');
export const DEFAULT_TRUST_DOMAIN = 'scef.local';

/** The mesh services, their default gRPC ports and the variable holding each one's address. */
export const MESH_ENDPOINTS = {
  authentication: { port: 50051, addressEnv: 'AUTHENTICATION_ADDR' },
  authorization: { port: 50052, addressEnv: 'AUTHORIZATION_ADDR' },
  'replay-guard': { port: 50053, addressEnv: 'REPLAY_GUARD_ADDR' },
  crypto: { port: 50054, addressEnv: 'CRYPTO_ADDR' },
  'capability-exposure': { port: 50055, addressEnv: 'CAPABILITY_EXPOSURE_ADDR' },
} as const;
export type MeshServiceName = keyof typeof MESH_ENDPOINTS | 'edge';
export const DEFAULT_EDGE_PORT = 8443;

/** Settings every mesh process reads. */
export const COMMON_SETTINGS = {
  stateDir: str('AESE_STATE_DIR', DEFAULT_STATE_DIR),
  trustDomain: str('AESE_TRUST_DOMAIN', DEFAULT_TRUST_DOMAIN),
  natsUrl: str('NATS_URL', DEFAULT_NATS_URL),
  /** Replicas of streams and KV buckets: 3 on a NATS cluster. */
  natsReplicas: int('NATS_REPLICAS', 1, 1, 5),
  /** CA of the NATS server certificate when it is not the mesh CA (an external NATS). */
  natsCaFile: optionalStr('NATS_CA_FILE'),
  /** A NATS user credentials file, for an external NATS that authenticates with nkeys/JWTs. */
  natsCredsFile: optionalStr('NATS_CREDS_FILE'),
  listenHost: str('LISTEN_HOST', '127.0.0.1'),
  logLevel: str('LOG_LEVEL', 'info'),
  addrAuthentication: str('AUTHENTICATION_ADDR', `localhost:${MESH_ENDPOINTS.authentication.port}`),
  addrAuthorization: str('AUTHORIZATION_ADDR', `localhost:${MESH_ENDPOINTS.authorization.port}`),
  addrReplayGuard: str('REPLAY_GUARD_ADDR', `localhost:${MESH_ENDPOINTS['replay-guard'].port}`),
  addrCrypto: str('CRYPTO_ADDR', `localhost:${MESH_ENDPOINTS.crypto.port}`),
  addrCapabilityExposure: str('CAPABILITY_EXPOSURE_ADDR', `localhost:${MESH_ENDPOINTS['capability-exposure'].port}`),
  ...TRACING_SETTINGS,
  ...METRICS_SETTINGS,
} as const;

export type CommonConfig = ReturnType<typeof loadCommonConfig>;

export function loadCommonConfig(env: Env) {
  return loadConfig(COMMON_SETTINGS, env);
}

/** The listen port setting of a service (`PORT`, defaulting to the service's own port). */
export function portSetting(defaultPort: number) {
  return int('PORT', defaultPort, 0, 65535);
}

/** mTLS material of a mesh identity, read from the state folder. */
export interface MeshTls {
  readonly caPem: string;
  readonly certPem: string;
  readonly keyPem: string;
}

export function serviceTls(stateDir: string, service: MeshServiceName): MeshTls {
  const layout = pkiLayout(resolve(stateDir));
  return {
    caPem: readFileSync(layout.meshCa.cert, 'utf8'),
    certPem: readFileSync(layout.services[service].cert, 'utf8'),
    keyPem: readFileSync(layout.services[service].key, 'utf8'),
  };
}

/** Starts a service's own meter and Prometheus endpoint (`METRICS_PORT` on `LISTEN_HOST`). */
export function startMeshServiceMetrics(common: CommonConfig, service: MeshServiceName): Promise<ServiceMetrics> {
  return startServiceMetrics({ service, host: common.listenHost, port: common.metricsPort });
}

/**
 * Connects a mesh service to NATS as itself: TLS with its mesh certificate (NATS maps it to the
 * service's permissions), its own inbox prefix, and the credentials file when one is configured.
 * With a meter, the connection's state is the `aese.nats.connected` gauge.
 */
export async function connectServiceNats(common: CommonConfig, service: MeshServiceName, logger: Logger, meter?: Meter): Promise<NatsConnection> {
  const tls = serviceTls(common.stateDir, service);
  const nc = await connectNats({
    servers: common.natsUrl,
    name: service,
    logger,
    replicas: common.natsReplicas,
    tls: { ...tls, caPem: common.natsCaFile ? readFileSync(common.natsCaFile, 'utf8') : tls.caPem },
    inboxPrefix: natsInboxPrefix(service),
    ...(common.natsCredsFile ? { credentials: readFileSync(common.natsCredsFile, 'utf8') } : {}),
  });
  try {
    await checkDeployment(nc, { meshCaPem: tls.caPem, trustDomain: common.trustDomain, record: service === 'crypto', natsUrl: common.natsUrl });
  } catch (err) {
    await nc.close();
    throw err;
  }
  if (meter) followConnectionState(nc, natsConnectionGauge(meter));
  return nc;
}

/** Drives the gauge from the connection's status events: down on a disconnect, up on a reconnect, down once closed. */
function followConnectionState(nc: NatsConnection, set: (connected: boolean) => void): void {
  void (async () => {
    for await (const s of nc.status()) {
      if (s.type === Events.Disconnect) set(false);
      else if (s.type === Events.Reconnect) set(true);
    }
  })().catch(() => undefined);
  void nc.closed().then(() => set(false));
}

/** The SPIFFE ID of a mesh service. */
export function serviceId(trustDomain: string, service: MeshServiceName): string {
  return spiffeId(trustDomain, 'svc', service);
}

/** Something that was started and can be stopped. */
export interface Stoppable {
  stop(): Promise<void>;
  /**
   * Resolves once the service has loaded its state and reports SERVING (a service listens, and
   * says NOT_SERVING, before that: its dependencies may start later).
   */
  readonly whenReady?: Promise<void>;
}

/**
 * Runs a service process: builds its logger, starts it, and stops it gracefully on SIGTERM or
 * SIGINT. A start-up failure (a missing setting, say) exits with status 1 and a clear message.
 */
export function runMain(service: MeshServiceName, start: (env: Env, logger: Logger) => Promise<Stoppable>): void {
  const logger = createLogger({ service, level: loadConfig({ logLevel: COMMON_SETTINGS.logLevel }, process.env).logLevel });
  const stopOnSignals = (running: Stoppable, tracing: Tracing): void => {
    let stopping = false;
    const stop = (signal: string): void => {
      if (stopping) return;
      stopping = true;
      logger.info({ signal }, 'stopping');
      // Spans still buffered are exported before the process ends.
      running
        .stop()
        .then(() => tracing.shutdown())
        .then(
          () => process.exit(0),
          (err: unknown) => {
            logger.error({ err }, 'stop failed');
            process.exit(1);
          },
        );
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
  };
  // The trace SDK is loaded by service processes only: importing this module (the CLI does) stays light.
  import('@aese/telemetry/sdk')
    .then(({ startTracing }) => startTracing({ service, config: loadConfig(TRACING_SETTINGS, process.env) }))
    .then(tracing => start(process.env, logger).then(running => stopOnSignals(running, tracing)))
    .catch((err: unknown) => {
      logger.fatal({ err }, 'start failed');
      process.exit(1);
    });
}
export type { DeploymentRecord } from './deployment.js';
export { DEFAULT_READINESS_MAX_BACKOFF_MS, DEFAULT_READINESS_MIN_BACKOFF_MS, untilReady } from './readiness.js';
export type { Readiness, ReadinessOptions, ReadinessStep } from './readiness.js';
