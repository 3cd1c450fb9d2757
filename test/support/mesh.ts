import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { startAuthenticationService } from '@aese/authentication-service';
import { startAuthorizationService } from '@aese/authorization-service';
import { startCapabilityExposureService } from '@aese/capability-exposure-service';
import { startCryptoService } from '@aese/crypto-service';
import { startReplayGuardService } from '@aese/replay-guard-service';
import { createLogger } from '@aese/logger';
import type { Logger } from '@aese/logger';
import { initPki, OPERATOR_NAME, pkiLayout, spiffeId } from '@aese/pki';
import type { PkiLayout } from '@aese/pki';
import { serviceId } from '@aese/runtime';
import type { MeshServiceName, MeshTls } from '@aese/runtime';
import { connectNatsAs, startNatsCluster, startNatsServer, tempDir } from '@aese/testing';
import type { NatsCluster } from '@aese/testing';
import type { NatsConnection } from 'nats';
import type { NatsServerProcess } from '@aese/testing';

export const TEST_TRUST_DOMAIN = 'scef.test';

type Start = (env: Record<string, string>, logger: Logger) => Promise<{ port: number; stop(): Promise<void>; whenReady?: Promise<void> }>;

/** Everything a test needs to talk to a running mesh. */
export interface TestMesh {
  readonly stateDir: string;
  readonly trustDomain: string;
  readonly layout: PkiLayout;
  readonly nats: NatsServerProcess;
  /** The NATS cluster, when the mesh was started with `natsCluster`. */
  readonly cluster: NatsCluster | undefined;
  /** The environment the services were started with (addresses, state folder, NATS). */
  readonly env: Record<string, string>;
  readonly ports: Readonly<Record<string, number>>;
  /** Every log line every service wrote, for scans for leaked secrets. */
  readonly logs: string[];
  tls(identity: MeshServiceName | 'operator'): MeshTls;
  id(identity: MeshServiceName | 'operator'): string;
  /**
   * A raw NATS connection to the mesh's NATS as one identity, for tests that play an insider or
   * an operator: a service, the operator CLI (`operator`), or the JetStream administrator
   * (`nats-admin`, the only one allowed to delete or purge). The caller closes it.
   */
  natsConnect(identity: MeshServiceName | 'operator' | 'nats-admin'): Promise<NatsConnection>;
  /** Stops one service and starts it again with the same settings. */
  restart(service: MeshServiceName): Promise<void>;
  /** Stops one service (NATS and the state folder stay); {@link startService} starts it again. */
  stopService(service: MeshServiceName): Promise<void>;
  /** Stops every service (NATS and the state folder stay), for tests that start them again in their own order. */
  stopServices(): Promise<void>;
  /**
   * Starts one service again on its port. By default resolves once it has loaded its state (is
   * SERVING); with `waitReady: false`, as soon as it listens.
   */
  startService(service: MeshServiceName, options?: { waitReady?: boolean }): Promise<void>;
  stop(): Promise<void>;
}

export interface TestMeshOptions {
  /** Starts the edge too; its start function is passed in so the harness has no edge import cycle. */
  readonly edge?: Start;
  readonly extraEnv?: Record<string, string>;
  /** Run NATS as a cluster of this many secured nodes instead of one server (`mesh.cluster`). */
  readonly natsCluster?: number;
  /** Each service's `METRICS_PORT` (unset: no metrics endpoint). */
  readonly metricsPorts?: Partial<Record<MeshServiceName, number>>;
}

/**
 * Starts a private nats-server, a fresh PKI in a temporary state folder and every service on an
 * ephemeral loopback port, in dependency order.
 */
export async function startTestMesh(options: TestMeshOptions = {}): Promise<TestMesh> {
  const dir = tempDir('aese-mesh');
  await initPki({ stateDir: dir.path, trustDomain: TEST_TRUST_DOMAIN });
  const secured = { stateDir: dir.path, trustDomain: TEST_TRUST_DOMAIN };
  const cluster = options.natsCluster ? await startNatsCluster(options.natsCluster, { secured }) : undefined;
  const nats: NatsServerProcess = cluster ? clusterAsOne(cluster) : await startNatsServer({ secured });
  const kekFile = join(dir.path, 'crypto-kek');
  writeFileSync(kekFile, randomBytes(32).toString('base64'), { mode: 0o600 });
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      logs.push(
        ...chunk
          .toString('utf8')
          .split('\n')
          .filter(l => l.length > 0),
      );
      cb();
    },
  });
  const env: Record<string, string> = {
    AESE_STATE_DIR: dir.path,
    AESE_TRUST_DOMAIN: TEST_TRUST_DOMAIN,
    NATS_URL: nats.url,
    LISTEN_HOST: '127.0.0.1',
    CRYPTO_KEK_FILE: kekFile,
    ...options.extraEnv,
  };
  const starts: [MeshServiceName, Start, string][] = [
    ['crypto', startCryptoService, 'CRYPTO_ADDR'],
    ['authentication', startAuthenticationService, 'AUTHENTICATION_ADDR'],
    ['authorization', startAuthorizationService, 'AUTHORIZATION_ADDR'],
    ['replay-guard', startReplayGuardService, 'REPLAY_GUARD_ADDR'],
    ['capability-exposure', startCapabilityExposureService, 'CAPABILITY_EXPOSURE_ADDR'],
  ];
  if (options.edge) starts.push(['edge', options.edge, 'EDGE_ADDR']);
  const running = new Map<MeshServiceName, { port: number; stop(): Promise<void>; whenReady?: Promise<void> }>();
  const ports: Record<string, number> = {};
  const envFor = (name: MeshServiceName): Record<string, string> => {
    const metricsPort = options.metricsPorts?.[name];
    return { ...env, PORT: String(ports[name] ?? 0), ...(metricsPort === undefined ? {} : { METRICS_PORT: String(metricsPort) }) };
  };
  const stopService = async (name: MeshServiceName): Promise<void> => {
    await running.get(name)?.stop();
    running.delete(name);
  };
  const startOne = async (name: MeshServiceName, start: Start, addrEnv: string, waitReady = true): Promise<void> => {
    const logger = createLogger({ service: name, level: 'debug', destination: sink });
    const svc = await start(envFor(name), logger);
    running.set(name, svc);
    ports[name] = svc.port;
    env[addrEnv] = `localhost:${svc.port}`;
    // Services listen before their state is loaded; tests start from a mesh that serves.
    if (waitReady) await svc.whenReady;
  };
  try {
    for (const [name, start, addrEnv] of starts) await startOne(name, start, addrEnv);
  } catch (err) {
    for (const svc of [...running.values()].reverse()) await svc.stop();
    await nats.dispose();
    dir.remove();
    throw err;
  }
  const layout = pkiLayout(dir.path);
  return {
    stateDir: dir.path,
    trustDomain: TEST_TRUST_DOMAIN,
    layout,
    nats,
    cluster,
    env,
    ports,
    logs,
    tls: identity => {
      const pair = identity === 'operator' ? layout.operator : layout.services[identity];
      return {
        caPem: readFileSync(layout.meshCa.cert, 'utf8'),
        certPem: readFileSync(pair.cert, 'utf8'),
        keyPem: readFileSync(pair.key, 'utf8'),
      };
    },
    id: identity => (identity === 'operator' ? spiffeId(TEST_TRUST_DOMAIN, 'operator', OPERATOR_NAME) : serviceId(TEST_TRUST_DOMAIN, identity)),
    natsConnect: identity => connectNatsAs(nats.url, dir.path, identity === 'operator' ? OPERATOR_NAME : identity),
    restart: async name => {
      const entry = starts.find(s => s[0] === name);
      if (!entry) throw new Error(`unknown service ${name}`);
      await stopService(name);
      await startOne(...entry);
    },
    stopService,
    stopServices: async () => {
      for (const [name, svc] of [...running.entries()].reverse()) {
        await svc.stop();
        running.delete(name);
      }
    },
    startService: async (name, opts = {}) => {
      const entry = starts.find(s => s[0] === name);
      if (!entry) throw new Error(`unknown service ${name}`);
      if (running.has(name)) throw new Error(`${name} is running`);
      await startOne(...entry, opts.waitReady ?? true);
    },
    stop: async () => {
      for (const svc of [...running.values()].reverse()) await svc.stop();
      await nats.dispose();
      dir.remove();
    },
  };
}

/** A cluster seen as the mesh's one NATS: its URL lists every node; stop and restart are per node. */
function clusterAsOne(cluster: NatsCluster): NatsServerProcess {
  const perNode = async (): Promise<void> => {
    throw new Error('stop or restart one node of mesh.cluster');
  };
  return { url: cluster.url, port: 0, storeDir: '', stop: perNode, restart: perNode, dispose: () => cluster.dispose() };
}
