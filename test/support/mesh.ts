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
import { startNatsServer, tempDir } from '@aese/testing';
import type { NatsServerProcess } from '@aese/testing';

export const TEST_TRUST_DOMAIN = 'scef.test';

type Start = (env: Record<string, string>, logger: Logger) => Promise<{ port: number; stop(): Promise<void> }>;

/** Everything a test needs to talk to a running mesh. */
export interface TestMesh {
  readonly stateDir: string;
  readonly trustDomain: string;
  readonly layout: PkiLayout;
  readonly nats: NatsServerProcess;
  /** The environment the services were started with (addresses, state folder, NATS). */
  readonly env: Record<string, string>;
  readonly ports: Readonly<Record<string, number>>;
  /** Every log line every service wrote, for scans for leaked secrets. */
  readonly logs: string[];
  tls(identity: MeshServiceName | 'operator'): MeshTls;
  id(identity: MeshServiceName | 'operator'): string;
  /** Stops one service and starts it again with the same settings. */
  restart(service: MeshServiceName): Promise<void>;
  stop(): Promise<void>;
}

export interface TestMeshOptions {
  /** Starts the edge too; its start function is passed in so the harness has no edge import cycle. */
  readonly edge?: Start;
  readonly extraEnv?: Record<string, string>;
  /** Use this NATS (a cluster, say) instead of starting a private nats-server; the caller owns it. */
  readonly natsUrl?: string;
}

/**
 * Starts a private nats-server, a fresh PKI in a temporary state folder and every service on an
 * ephemeral loopback port, in dependency order.
 */
export async function startTestMesh(options: TestMeshOptions = {}): Promise<TestMesh> {
  const dir = tempDir('aese-mesh');
  const nats: NatsServerProcess = options.natsUrl ? externalNats(options.natsUrl) : await startNatsServer();
  await initPki({ stateDir: dir.path, trustDomain: TEST_TRUST_DOMAIN });
  const kekFile = join(dir.path, 'crypto-kek');
  writeFileSync(kekFile, randomBytes(32).toString('base64'), { mode: 0o600 });
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      logs.push(...chunk.toString('utf8').split('\n').filter(l => l.length > 0));
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
  const running = new Map<MeshServiceName, { port: number; stop(): Promise<void> }>();
  const ports: Record<string, number> = {};
  const envFor = (name: MeshServiceName): Record<string, string> => ({ ...env, PORT: String(ports[name] ?? 0) });
  const startOne = async (name: MeshServiceName, start: Start, addrEnv: string): Promise<void> => {
    const logger = createLogger({ service: name, level: 'debug', destination: sink });
    const svc = await start(envFor(name), logger);
    running.set(name, svc);
    ports[name] = svc.port;
    env[addrEnv] = `localhost:${svc.port}`;
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
    restart: async name => {
      const entry = starts.find(s => s[0] === name);
      if (!entry) throw new Error(`unknown service ${name}`);
      await running.get(name)?.stop();
      await startOne(...entry);
    },
    stop: async () => {
      for (const svc of [...running.values()].reverse()) await svc.stop();
      await nats.dispose();
      dir.remove();
    },
  };
}

function externalNats(url: string): NatsServerProcess {
  const notOwned = async (): Promise<void> => {
    throw new Error('this mesh does not own its NATS');
  };
  return { url, port: 0, storeDir: '', stop: notOwned, restart: notOwned, dispose: async () => undefined };
}
