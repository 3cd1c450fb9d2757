import { spawn } from 'node:child_process';
import { generateKeyPairSync, sign } from 'node:crypto';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { connect as natsConnect } from 'nats';
import type { ConnectionOptions, NatsConnection } from 'nats';
import { NATS_ADMIN_NAME, pkiLayout } from '@aese/pki';
import { natsInboxPrefix, renderNatsServerConfig } from '@aese/nats-trust';
import type { NatsIdentity } from '@aese/nats-trust';
import type { EventSigner } from '@aese/events';
import { join } from 'node:path';

/** An ephemeral TCP port on 127.0.0.1 that was free a moment ago. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** Polls `cond` until it holds, or throws after `timeoutMs`: tests wait for a state, never a fixed time. */
export async function eventually(cond: () => boolean | Promise<boolean>, timeoutMs = 10_000, what = 'condition'): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`${what} not met in ${timeoutMs} ms`);
    await new Promise(r => setTimeout(r, 20));
  }
}

/** Polls `probe` until it gives a value (not undefined) and returns it; fails after `timeoutMs`. */
export async function eventuallyValue<T>(probe: () => T | undefined | Promise<T | undefined>, timeoutMs = 10_000, what = 'a value'): Promise<T> {
  let value: T | undefined;
  await eventually(async () => (value = await probe()) !== undefined, timeoutMs, what);
  return value as T;
}

/**
 * An ES256 event signer with a key of its own, and its public JWK: a stand-in for crypto's
 * event-signing key in tests of the events libraries, or a forger's key under a real kid.
 */
export function ecdsaEventSigner(kid: string): { signer: EventSigner; jwk: Record<string, string> } {
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return {
    signer: { sign: async data => ({ kid, signature: sign('sha256', data, { key: privateKey, dsaEncoding: 'ieee-p1363' }) }) },
    jwk: { ...(publicKey.export({ format: 'jwk' }) as Record<string, string>), kid, alg: 'ES256' },
  };
}

/** A fresh temporary directory, removed by the returned function. */
export function tempDir(prefix: string): { path: string; remove: () => void } {
  const path = mkdtempSync(join(tmpdir(), `${prefix}-`));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

/** Resolves once something accepts TCP connections on host:port, or rejects after timeoutMs. */
export async function waitForPort(host: string, port: number, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>(resolve => {
      const s = connect({ host, port }, () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > until) throw new Error(`nothing listens on ${host}:${port} after ${timeoutMs} ms`);
    await new Promise(r => setTimeout(r, 50));
  }
}

/** A nats-server process with JetStream, owned by a test. */
export interface NatsServerProcess {
  readonly url: string;
  readonly port: number;
  readonly storeDir: string;
  /** Stops the process; the store stays so a restart keeps JetStream state. */
  stop(): Promise<void>;
  /** Starts it again on the same port and store. */
  restart(): Promise<void>;
  /** Stops it and deletes its store. */
  dispose(): Promise<void>;
}

/** Name of the nats-server binary; `NATS_SERVER_BIN` overrides it in tests. */
export const NATS_SERVER_BIN = 'nats-server';

/** A deployment's PKI, for a nats-server that enforces the NATS trust model. */
export interface SecuredNatsOptions {
  readonly stateDir: string;
  readonly trustDomain: string;
  /** Cluster membership of this node: its route port and every node's route URL. */
  readonly cluster?: { readonly name: string; readonly port: number; readonly routes: readonly string[] };
}

/** Options of {@link startNatsServer}. */
export interface NatsServerOptions {
  readonly bin?: string;
  readonly extraArgs?: readonly string[];
  /** Run the shipped configuration (TLS, identities, permissions) of this PKI instead of an open server. */
  readonly secured?: SecuredNatsOptions;
  /** Server name (cluster nodes need distinct ones). */
  readonly name?: string;
}

/**
 * Starts a private nats-server with JetStream on a free loopback port and a temporary store,
 * so tests never touch a shared server. With `secured`, it runs the configuration every
 * deployment runs (libs/nats-trust): TLS, certificate identities and per-identity permissions.
 */
export async function startNatsServer(options: NatsServerOptions = {}): Promise<NatsServerProcess> {
  const port = await freePort();
  const store = tempDir('aese-nats');
  const bin = options.bin ?? NATS_SERVER_BIN;
  let args = ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', store.path, ...(options.extraArgs ?? [])];
  if (options.secured) {
    const layout = pkiLayout(options.secured.stateDir);
    const configFile = join(store.path, 'nats.conf');
    const c = options.secured.cluster;
    writeFileSync(
      configFile,
      renderNatsServerConfig({
        trustDomain: options.secured.trustDomain,
        serverName: options.name ?? `aese-test-${port}`,
        host: '127.0.0.1',
        port,
        storeDir: join(store.path, 'jetstream'),
        tls: { certFile: layout.natsServer.cert, keyFile: layout.natsServer.key, caFile: layout.meshCa.cert },
        ...(c ? { cluster: { name: c.name, host: '127.0.0.1', port: c.port, routes: c.routes } } : {}),
      }),
    );
    args = ['-c', configFile, '-l', join(store.path, 'nats-server.log'), ...(options.extraArgs ?? [])];
  }
  let child: ChildProcess | undefined;
  const start = async (): Promise<void> => {
    child = spawn(bin, args, {
      stdio: 'ignore',
    });
    const spawned = child;
    const failed = new Promise<never>((_, reject) => spawned.once('error', reject));
    await Promise.race([waitForPort('127.0.0.1', port), failed]);
  };
  const stop = async (): Promise<void> => {
    const c = child;
    child = undefined;
    if (!c || c.exitCode !== null) return;
    await new Promise<void>(resolve => {
      c.once('exit', () => resolve());
      c.kill('SIGTERM');
    });
  };
  await start();
  return {
    url: `${options.secured ? 'tls' : 'nats'}://127.0.0.1:${port}`,
    port,
    storeDir: store.path,
    stop,
    restart: start,
    dispose: async () => {
      await stop();
      store.remove();
    },
  };
}

/** A JetStream cluster of nats-server processes on loopback, owned by a test. */
export interface NatsCluster {
  /** Comma-separated client URLs of every node. */
  readonly url: string;
  readonly nodes: readonly NatsServerProcess[];
  dispose(): Promise<void>;
}

/**
 * Starts `size` nats-server processes clustered over loopback routes, each with JetStream and its
 * own store, and resolves once JetStream has a meta leader (streams with replicas can be made).
 */
export async function startNatsCluster(size = 3, options: { bin?: string; secured?: Omit<SecuredNatsOptions, 'cluster'> } = {}): Promise<NatsCluster> {
  const clusterPorts = await Promise.all(Array.from({ length: size }, () => freePort()));
  const routeUrls = clusterPorts.map(p => `${options.secured ? 'tls' : 'nats'}://127.0.0.1:${p}`);
  const nodes: NatsServerProcess[] = [];
  try {
    for (let i = 0; i < size; i++) {
      nodes.push(
        await startNatsServer(
          options.secured
            ? { bin: options.bin, name: `aese-${i}`, secured: { ...options.secured, cluster: { name: 'aese', port: clusterPorts[i], routes: routeUrls } } }
            : {
                bin: options.bin,
                extraArgs: ['-n', `aese-${i}`, '--cluster_name', 'aese', '--cluster', routeUrls[i], '--routes', routeUrls.join(',')],
              },
        ),
      );
    }
  } catch (err) {
    for (const n of nodes) await n.dispose();
    throw err;
  }
  const url = nodes.map(n => n.url).join(',');
  await waitForJetStreamCluster(url, size, options.secured ? natsTlsOptions(options.secured.stateDir, NATS_ADMIN_NAME) : {});
  return {
    url,
    nodes,
    dispose: async () => {
      for (const n of nodes) await n.dispose();
    },
  };
}

/** Waits until the cluster's JetStream answers and has all `peers` in its meta group. */
async function waitForJetStreamCluster(url: string, peers: number, extra: ConnectionOptions, timeoutMs = 30_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  const nc = await natsConnect({ servers: url.split(','), maxReconnectAttempts: -1, ...extra });
  try {
    for (;;) {
      try {
        const reply = await nc.request('$JS.API.INFO', undefined, { timeout: 1000 });
        const info = JSON.parse(new TextDecoder().decode(reply.data)) as { error?: unknown };
        if (!info.error) {
          const jsm = await nc.jetstreamManager({ timeout: 2000 });
          // A throwaway replicated stream proves the meta leader can place replicas.
          await jsm.streams.add({ name: 'AESE_CLUSTER_PROBE', subjects: ['aese.cluster.probe'], num_replicas: peers });
          await jsm.streams.delete('AESE_CLUSTER_PROBE');
          return;
        }
      } catch {
        // not ready yet
      }
      if (Date.now() > until) throw new Error(`JetStream cluster at ${url} not ready after ${timeoutMs} ms`);
      await new Promise(r => setTimeout(r, 250));
    }
  } finally {
    await nc.close();
  }
}

/** Connection options that present one identity's mesh certificate to a secured NATS. */
export function natsTlsOptions(stateDir: string, identity: NatsIdentity): ConnectionOptions {
  const layout = pkiLayout(stateDir);
  const pair = identity === NATS_ADMIN_NAME ? layout.natsAdmin : identity === 'admin' ? layout.operator : layout.services[identity];
  return {
    tls: { ca: readFileSync(layout.meshCa.cert, 'utf8'), cert: readFileSync(pair.cert, 'utf8'), key: readFileSync(pair.key, 'utf8') },
    inboxPrefix: natsInboxPrefix(identity),
  };
}

/** A raw connection to a secured NATS as one identity (tests playing an insider or an operator). */
export function connectNatsAs(url: string, stateDir: string, identity: NatsIdentity): Promise<NatsConnection> {
  return natsConnect({ servers: url.split(','), ...natsTlsOptions(stateDir, identity) });
}

export { startTcpGate } from './tcp-gate.js';
export type { TcpGate } from './tcp-gate.js';
