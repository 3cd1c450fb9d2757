import { int, loadConfig } from '@aese/config';
import type { Env } from '@aese/config';
import { createMeshServer, mount } from '@aese/grpc-server';
import type { Logger } from '@aese/logger';
import type { NatsConnection } from '@aese/nats';
import { PROTO_FILES } from '@aese/protos';
import { ReplayGuardServiceService } from '@aese/protos/replay-guard/v1';
import { connectServiceNats, loadCommonConfig, MESH_ENDPOINTS, portSetting, serviceId, serviceTls, startMeshServiceMetrics } from '@aese/runtime';
import { ReplayRefusalMetrics } from '@aese/telemetry';
import type { Stoppable } from '@aese/runtime';
import { nonceTtlMs, ReplayGuard, StreamNonceStore } from '@aese/replay-window';
import { replayGuardHandlers } from './handlers.js';

/** How old a request's `created` may be (T8 security profile section 4). */
export const DEFAULT_REPLAY_WINDOW_S = 60;
/** How far ahead of our clock a request's `created` may be. */
export const DEFAULT_REPLAY_SKEW_S = 10;
/**
 * Longest wait for the nonce store on one call. A KV write takes well under a millisecond; past
 * this the answer is UNAVAILABLE (503 at the edge) rather than a caller's deadline running out.
 */
export const DEFAULT_REPLAY_STORE_TIMEOUT_MS = 1_000;

export const REPLAY_GUARD_SETTINGS = {
  port: portSetting(MESH_ENDPOINTS['replay-guard'].port),
  windowS: int('REPLAY_WINDOW_S', DEFAULT_REPLAY_WINDOW_S, 1, 3600),
  skewS: int('REPLAY_SKEW_S', DEFAULT_REPLAY_SKEW_S, 0, 300),
  storeTimeoutMs: int('REPLAY_STORE_TIMEOUT_MS', DEFAULT_REPLAY_STORE_TIMEOUT_MS, 10, 60_000),
} as const;

export interface RunningService extends Stoppable {
  readonly port: number;
}

/** Dependencies a test may replace. */
export interface ReplayGuardStartOptions {
  /** The clock, ms since the epoch; tests freeze it to hit the window edges exactly. */
  readonly now?: () => number;
}

/**
 * Starts the replay guard: nonces in the shared JetStream replay stream (libs/replay-window),
 * decisions on mTLS gRPC for the edge only (for the ASes whose replay window no edge holds). Health follows the store: NOT_SERVING while NATS is unreachable, when every
 * call fails closed with UNAVAILABLE.
 */
export async function startReplayGuardService(env: Env, logger: Logger, options: ReplayGuardStartOptions = {}): Promise<RunningService> {
  const common = loadCommonConfig(env);
  const config = loadConfig(REPLAY_GUARD_SETTINGS, env);
  const td = common.trustDomain;
  const now = options.now ?? Date.now;
  const tls = serviceTls(common.stateDir, 'replay-guard');

  const telemetry = await startMeshServiceMetrics(common, 'replay-guard');
  const nc = await connectServiceNats(common, 'replay-guard', logger, telemetry.meter);
  let store: StreamNonceStore;
  try {
    store = await StreamNonceStore.open(nc, {
      ttlMs: nonceTtlMs(config.windowS, config.skewS),
      timeoutMs: config.storeTimeoutMs,
      replicas: common.natsReplicas,
      logger,
      now,
    });
  } catch (err) {
    await nc.close();
    throw err;
  }
  const guard = new ReplayGuard({ store, windowS: config.windowS, skewS: config.skewS, now, refusals: new ReplayRefusalMetrics(telemetry.meter) });

  const server = createMeshServer({
    name: 'replay-guard',
    tls,
    logger,
    protoFiles: [PROTO_FILES.replayGuard],
    serviceNames: ['aese.replay_guard.v1.ReplayGuardService'],
    services: [
      mount({
        definition: ReplayGuardServiceService,
        handlers: replayGuardHandlers(guard, logger),
        allowedCallers: { checkAndRecord: [serviceId(td, 'edge')] },
        // The edge's hot path: CheckAndRecord multiplexed on one stream, same handler and allow-list.
        streams: { checkAndRecordStream: 'checkAndRecord' },
      }),
    ],
  });
  let port: number;
  try {
    port = await server.listen(common.listenHost, config.port);
  } catch (err) {
    store.close();
    await nc.close();
    throw err;
  }
  const unwatch = store.onAvailabilityChange(available => server.setServing(available));
  server.setServing(store.isAvailable);
  logger.info({ port, windowS: config.windowS, skewS: config.skewS }, 'replay-guard serving');
  return {
    port,
    stop: async () => {
      unwatch();
      await server.shutdown();
      store.close();
      await drainOrClose(nc);
      await telemetry.stop();
    },
  };
}

/** How long a stop waits for NATS to drain (it cannot while the server is unreachable). */
const DRAIN_TIMEOUT_MS = 2_000;

async function drainOrClose(nc: NatsConnection): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<void>(resolve => {
    timer = setTimeout(resolve, DRAIN_TIMEOUT_MS);
  });
  await Promise.race([nc.drain().catch(() => undefined), timeout]);
  clearTimeout(timer);
  if (!nc.isClosed()) await nc.close();
}
