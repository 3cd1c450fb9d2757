/**
 * The process supervisor behind `npm start`: the whole SCEF on one machine, for development and
 * evaluation.
 *
 * Prepares the state folder (PKI and key-encryption key, the same code as `aese pki init`),
 * makes sure NATS answers (starting a private nats-server when none does and one is installed),
 * then starts every service as its own process in dependency order, waiting for each one's port.
 * Child output is prefixed with the service name. Ctrl-C or SIGTERM stops the services, newest
 * first, then the private NATS; if a service dies on its own, everything is stopped and the exit
 * status is non-zero.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { join, relative, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { int, list, loadConfig, str } from '@aese/config';
import type { Setting } from '@aese/config';
import { createMeshHealthClient } from '@aese/grpc-client/health';
import { DEFAULT_T8_HOSTNAMES, OPERATOR_NAME, pkiLayout, readMeshTlsMaterial, spiffeId } from '@aese/pki';
import { COMMON_SETTINGS, DEFAULT_EDGE_PORT, DEFAULT_STATE_DIR, MESH_ENDPOINTS, REPO_ROOT } from '@aese/runtime';
import type { MeshServiceName } from '@aese/runtime';
import { describeFailure } from './errors.js';
import { CLI_SETTINGS, optionalStr, resolveTrustDomain, tokenEndpointOf } from './settings.js';
import { kekPath, prepareState } from './state.js';
import { removeStackRecord, writePrivateNatsConfig, writeStackRecord } from './nats-endpoint.js';
import type { PkiLayout } from '@aese/pki';

/** The services in start order: each one's dependencies come before it. */
export const START_ORDER: readonly MeshServiceName[] = ['crypto', 'authentication', 'authorization', 'replay-guard', 'capability-exposure', 'edge'];

/** How long one service may take to open its port. */
export const DEFAULT_START_TIMEOUT_MS = 30_000;
/** How long a process may take to stop after SIGTERM before it is killed. */
export const STOP_GRACE_MS = 10_000;
/** The nats-server binary looked for on PATH when NATS must be started. */
export const DEFAULT_NATS_SERVER_BIN = 'nats-server';
/** Where `npm run build` writes the bundles plain node runs (`<dir>/<service>/main.mjs`). */
export const DEFAULT_BUILD_DIR = join(REPO_ROOT, 'dist');

/** The built entry of a service (`npm run build`). */
export function builtServiceEntry(buildDir: string, service: MeshServiceName): string {
  return join(buildDir, service, 'main.mjs');
}

/** The variable overriding a service's port, e.g. `REPLAY_GUARD_PORT`. */
export function portEnvOf(service: MeshServiceName): string {
  return `${service.toUpperCase().replace(/-/g, '_')}_PORT`;
}

function defaultPortOf(service: MeshServiceName): number {
  return service === 'edge' ? DEFAULT_EDGE_PORT : MESH_ENDPOINTS[service].port;
}

/** Settings of `npm start`; the services' own settings pass through the environment to them. */
export const START_SETTINGS = {
  stateDir: CLI_SETTINGS.stateDir,
  trustDomain: CLI_SETTINGS.trustDomain,
  /** Unset: a private nats-server under the state folder. Set: that NATS (TLS, mesh certificates). */
  natsUrl: optionalStr(COMMON_SETTINGS.natsUrl.env),
  /** Loopback port of the private nats-server; 0 lets the system choose a free one. */
  natsPrivatePort: int('NATS_PRIVATE_PORT', 0, 0, 65535),
  listenHost: COMMON_SETTINGS.listenHost,
  /** Unset: `https://localhost:<edge port>`. */
  issuer: optionalStr('AESE_ISSUER'),
  /** Host names of the edge's T8 certificate, used only when the PKI is first created. */
  t8Hostnames: list('AESE_T8_HOSTNAMES', DEFAULT_T8_HOSTNAMES),
  natsServerBin: str('NATS_SERVER_BIN', DEFAULT_NATS_SERVER_BIN),
  startTimeoutMs: int('START_TIMEOUT_MS', DEFAULT_START_TIMEOUT_MS, 1_000, 600_000),
  /** The production build `--production` runs; relative: to the repository. */
  buildDir: str('AESE_BUILD_DIR', relative(REPO_ROOT, DEFAULT_BUILD_DIR)),
} as const;

/** One port setting per service (`CRYPTO_PORT`, ..., `EDGE_PORT`), defaulting to the standard ports. */
export const PORT_SETTINGS = Object.fromEntries(START_ORDER.map(s => [s, int(portEnvOf(s), defaultPortOf(s), 1, 65535)])) as Readonly<Record<MeshServiceName, Setting<number>>>;

const LABEL_WIDTH = Math.max(...START_ORDER.map(s => s.length));
/** A line of this script's own, labelled like the children's. */
const say = (line: string): void => void process.stdout.write(`${'start'.padEnd(LABEL_WIDTH)} | ${line}\n`);

/** Copies a child's output line by line, each line prefixed with the child's name. */
function prefixLines(stream: Readable | null, label: string, sink: NodeJS.WriteStream): void {
  if (!stream) return;
  const prefix = `${label.padEnd(LABEL_WIDTH)} | `;
  createInterface({ input: stream, crlfDelay: Infinity }).on('line', line => sink.write(`${prefix}${line}\n`));
}

/** True when something accepts a TCP connection on host:port within timeoutMs. */
function answers(host: string, port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise(resolvePromise => {
    const socket = connect({ host, port });
    const done = (ok: boolean): void => {
      socket.destroy();
      resolvePromise(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

const PROC_NET_TCP = ['/proc/net/tcp', '/proc/net/tcp6'];
/** TCP state LISTEN in /proc/net/tcp. */
const TCP_LISTEN = '0A';

/**
 * Whether a socket listens on the port, from the kernel's socket table (Linux): a probe the
 * service never sees, so it logs no connection that closed before its TLS handshake. Undefined
 * where there is no such table.
 */
export function listensInKernelTable(port: number): boolean | undefined {
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  let found: boolean | undefined;
  for (const file of PROC_NET_TCP) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    found ??= false;
    for (const line of text.split('\n').slice(1)) {
      const [, local, , state] = line.trim().split(/\s+/);
      if (state === TCP_LISTEN && local?.endsWith(`:${hexPort}`)) return true;
    }
  }
  return found;
}

/** True when a service listens on host:port: the kernel's socket table, else a TCP connection. */
async function listening(host: string, port: number): Promise<boolean> {
  return listensInKernelTable(port) ?? (await answers(host, port));
}

/** True when a NATS server answers on host:port: it greets every client with an INFO line. */
function natsAnswers(host: string, port: number, timeoutMs = 1_000): Promise<boolean> {
  return new Promise(resolvePromise => {
    const socket = connect({ host, port });
    let greeting = '';
    const done = (ok: boolean): void => {
      socket.destroy();
      resolvePromise(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.on('data', (chunk: Buffer) => {
      greeting += chunk.toString('latin1');
      if (greeting.length >= 5) done(greeting.startsWith('INFO '));
    });
    socket.once('error', () => done(false));
    socket.once('close', () => done(false));
  });
}

/** The address to probe a listener bound to `host` on. */
function probeHost(listenHost: string): string {
  if (listenHost === '0.0.0.0' || listenHost === '') return '127.0.0.1';
  if (listenHost === '::' || listenHost === '[::]') return '::1';
  return listenHost;
}

interface Managed {
  readonly name: string;
  readonly child: ChildProcess;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function manage(name: string, child: ChildProcess): Managed {
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>(resolveExit => {
    child.once('exit', (code, signal) => resolveExit({ code, signal }));
    child.once('error', () => resolveExit({ code: null, signal: null }));
  });
  prefixLines(child.stdout, name, process.stdout);
  prefixLines(child.stderr, name, process.stderr);
  return { name, child, exited };
}

function isRunning(m: Managed): boolean {
  return m.child.exitCode === null && m.child.signalCode === null && m.child.pid !== undefined;
}

/** SIGTERM, then SIGKILL after the grace period; resolves when the process is gone. */
async function stopProcess(m: Managed): Promise<void> {
  if (!isRunning(m)) return;
  m.child.kill('SIGTERM');
  const timer = setTimeout(() => {
    if (isRunning(m)) {
      say(`${m.name} did not stop within ${STOP_GRACE_MS} ms; killing it`);
      m.child.kill('SIGKILL');
    }
  }, STOP_GRACE_MS);
  await m.exited;
  clearTimeout(timer);
}

/** Resolves when host:port answers; rejects when the process exits first or the time is up. */
async function waitUntilListening(m: Managed, host: string, port: number, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  let exited = false;
  void m.exited.then(() => (exited = true));
  for (;;) {
    if (exited || !isRunning(m)) {
      const { code, signal } = await m.exited;
      throw new Error(`${m.name} exited during start-up (${signal ? `signal ${signal}` : `status ${code}`})`);
    }
    if (await listening(host, port)) return;
    if (Date.now() > until) throw new Error(`${m.name} did not listen on ${host}:${port} within ${timeoutMs} ms`);
    await new Promise(r => setTimeout(r, 100));
  }
}

/**
 * The host to dial a local gRPC service by: a loopback address as `localhost`, because TLS sends
 * the host as SNI and an IP address there is not allowed (node warns); the server's identity is
 * checked by its SPIFFE ID, not by this name.
 */
function grpcHostOf(host: string): string {
  if (host === '127.0.0.1' || host === '::1') return 'localhost';
  return host.includes(':') ? `[${host}]` : host;
}

/** The health status a mesh service reports once it decides requests. */
const SERVING = 'SERVING';

/**
 * Resolves when a mesh service's gRPC health says SERVING, asked over mTLS as the operator (a
 * real handshake, so the service logs nothing); rejects when the process exits or the time is up.
 * A service listens before it serves (it waits for its keys, its control feeds, NATS), so a
 * listening port alone is not "ready".
 */
async function waitUntilServing(m: Managed, address: string, serverId: string, tls: ReturnType<typeof readMeshTlsMaterial>, until: number): Promise<void> {
  const health = createMeshHealthClient({ address, tls, serverId, deadlineMs: 1_000 });
  let last: string;
  try {
    for (;;) {
      if (!isRunning(m)) {
        const { code, signal } = await m.exited;
        throw new Error(`${m.name} exited during start-up (${signal ? `signal ${signal}` : `status ${code}`})`);
      }
      last = await health.check().catch((err: unknown) => `no answer (${describeFailure(err)})`);
      if (last === SERVING) return;
      if (Date.now() > until) throw new Error(`${m.name} was not SERVING within the start timeout (health: ${last})`);
      await new Promise(r => setTimeout(r, 100));
    }
  } finally {
    health.close();
  }
}

/** The running stack: what was started, and the one way to stop it. */
class Stack {
  readonly services: Managed[] = [];
  nats: Managed | undefined;
  stopping = false;
  private stopped: Promise<void> | undefined;

  /** Stops the services newest first, then the private NATS. Safe to call more than once. */
  stop(): Promise<void> {
    this.stopping = true;
    return (this.stopped ??= (async () => {
      for (const m of [...this.services].reverse()) await stopProcess(m);
      if (this.nats) await stopProcess(this.nats);
    })());
  }

  /** Last resort on an abrupt exit of this process: signal whatever still runs. */
  killAll(): void {
    for (const m of [...this.services, ...(this.nats ? [this.nats] : [])]) if (isRunning(m)) m.child.kill('SIGTERM');
  }
}

/** A loopback port that was free a moment ago. */
function freeLoopbackPort(): Promise<number> {
  return new Promise((resolvePromise, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => resolvePromise(typeof addr === 'object' && addr ? addr.port : 0));
    });
  });
}

/**
 * Returns the NATS the services use: the one NATS_URL names (it must answer), or a private
 * nats-server started here with the deployment's NATS configuration (TLS, one identity per
 * service, least-privilege permissions) and its store under the state folder.
 */
async function ensureNats(stack: Stack, opts: { natsUrl: string | undefined; bin: string; layout: PkiLayout; trustDomain: string; privatePort: number }): Promise<string> {
  if (opts.natsUrl) {
    const first = opts.natsUrl.split(',')[0].trim();
    let url: URL;
    try {
      url = new URL(first);
    } catch {
      throw new Error(`NATS_URL ${JSON.stringify(first)} is not a URL (tls://host:port)`);
    }
    const host = url.hostname === 'localhost' ? '127.0.0.1' : url.hostname.replace(/^\[|\]$/g, '');
    if (!(await natsAnswers(host, url.port === '' ? 4222 : Number(url.port)))) throw new Error(`no NATS server answers at NATS_URL ${first}`);
    say(`using NATS at ${first}`);
    return opts.natsUrl;
  }
  const port = opts.privatePort || (await freeLoopbackPort());
  const paths = writePrivateNatsConfig(opts.layout, opts.trustDomain, port);
  say(`starting a private nats-server on 127.0.0.1:${port} (configuration ${paths.config}, JetStream store ${paths.store})`);
  // Its own process group: a Ctrl-C in the terminal reaches the services, and NATS stays up until
  // they have drained their connections; it is stopped last.
  const child = spawn(opts.bin, ['-c', paths.config], {
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const spawnError = new Promise<Error>(r => child.once('error', r));
  const nats = manage('nats', child);
  stack.nats = nats;
  const failed = await Promise.race([
    waitUntilListening(nats, '127.0.0.1', port, 10_000).then(
      () => undefined,
      (err: unknown) => err as Error,
    ),
    spawnError,
  ]);
  if (failed) {
    await stopProcess(nats);
    stack.nats = undefined;
    const missing = (failed as NodeJS.ErrnoException).code === 'ENOENT';
    throw new Error(missing ? `${opts.bin} is not on PATH: install it (apt-get install nats-server) or set NATS_URL` : `cannot start ${opts.bin}: ${failed.message}`);
  }
  return `tls://127.0.0.1:${port}`;
}

function nextSteps(opts: { edgeUrl: string; stateDir: string }): string[] {
  // The CLI reads this stack's addresses from the state folder; only a non-default one is named.
  const prefix = resolve(opts.stateDir) !== resolve(DEFAULT_STATE_DIR) ? `${CLI_SETTINGS.stateDir.env}=${opts.stateDir} ` : '';
  const bundle = '~/aese-bundles/my-as';
  return [
    'next steps, in another terminal:',
    `  ${prefix}npx aese as onboard my-as --scope 3gpp-monitoring-event --out ${bundle}`,
    `  ${prefix}npx aese network list`,
    `  ${prefix}npx aese policy grant my-as --api 3gpp-monitoring-event --category location --target externalId:ue1@scef.test`,
    `  curl --cert ${bundle}/client.crt --key ${bundle}/client.key --cacert ${bundle}/ca.crt \\`,
    `       -d grant_type=client_credentials -d client_id=my-as -d scope=3gpp-monitoring-event \\`,
    `       ${tokenEndpointOf(opts.edgeUrl)}`,
    'Ctrl-C stops everything.',
  ];
}

/** How `npm start` runs the services. */
export interface StackOptions {
  /** Run the production build (`node <build>/<service>/main.mjs`) instead of the sources through tsx. */
  readonly production?: boolean;
  /** With `production`: makes the build in the given folder first. */
  readonly build?: (buildDir: string) => Promise<unknown>;
}

/**
 * Runs the whole mesh on this machine until SIGINT or SIGTERM (see scripts/start.ts) and returns
 * the exit status: 0 after a requested stop, 1 when something failed or a service died.
 *
 * @throws Error for a problem found before anything was started (a missing service, a port in use).
 */
export async function runStack(options: StackOptions = {}): Promise<number> {
  const config = loadConfig(START_SETTINGS, process.env);
  const ports = loadConfig(PORT_SETTINGS, process.env);
  const stateDir = resolve(config.stateDir);
  const buildDir = resolve(REPO_ROOT, config.buildDir);
  const host = probeHost(config.listenHost);

  if (options.production && options.build) {
    const t0 = Date.now();
    await options.build(buildDir);
    say(`built the services into ${buildDir} in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  }
  const commandOf = (service: MeshServiceName): string[] =>
    options.production ? [builtServiceEntry(buildDir, service)] : ['--import', 'tsx', join(REPO_ROOT, 'services', service, 'src', 'main.ts')];
  for (const service of START_ORDER) {
    const main = commandOf(service).at(-1)!;
    if (!existsSync(main)) throw new Error(`${relative(REPO_ROOT, main)} is missing${options.production ? ': run npm run build first' : ''}`);
  }
  const seen = new Map<number, MeshServiceName>();
  for (const service of START_ORDER) {
    const other = seen.get(ports[service]);
    if (other) throw new Error(`${portEnvOf(service)} and ${portEnvOf(other)} are both ${ports[service]}`);
    seen.set(ports[service], service);
  }

  const trustDomain = resolveTrustDomain(pkiLayout(stateDir), config.trustDomain);
  const state = await prepareState({ stateDir, trustDomain, t8Hostnames: config.t8Hostnames });
  const operatorTls = readMeshTlsMaterial(state.layout, OPERATOR_NAME);
  say(`${state.pkiCreated ? 'created' : 'using'} the PKI in ${state.layout.root} (trust domain ${trustDomain})`);
  if (state.kekCreated) say(`created the key-encryption key ${state.kekPath}`);

  for (const service of START_ORDER) {
    if (await answers(host, ports[service])) {
      throw new Error(`port ${ports[service]} (${service}) is in use: stop what holds it or set ${portEnvOf(service)}`);
    }
  }

  const stack = new Stack();
  let exitCode = 0;
  let resolveDone: () => void = () => undefined;
  const done = new Promise<void>(r => (resolveDone = r));
  const shutdown = (reason: string, code: number): void => {
    if (stack.stopping) return;
    exitCode = code;
    say(`${reason}; stopping`);
    void stack.stop().then(resolveDone, resolveDone);
  };
  process.on('SIGINT', () => shutdown('SIGINT received', 0));
  process.on('SIGTERM', () => shutdown('SIGTERM received', 0));
  process.on('exit', () => stack.killAll());

  try {
    const natsUrl = await ensureNats(stack, {
      natsUrl: config.natsUrl,
      bin: config.natsServerBin,
      layout: state.layout,
      trustDomain,
      privatePort: config.natsPrivatePort,
    });
    const edgeUrl = config.issuer ?? `https://localhost:${ports.edge}`;
    const addresses = Object.fromEntries(Object.entries(MESH_ENDPOINTS).map(([name, e]) => [e.addressEnv, `localhost:${ports[name as MeshServiceName]}`]));
    // The CLI finds this stack's NATS, services and edge here (and only while the stack runs).
    writeStackRecord(stateDir, { natsUrl, pid: process.pid, startedAt: new Date().toISOString(), addresses, edgeUrl });
    process.on('exit', () => removeStackRecord(stateDir));
    const baseEnv: NodeJS.ProcessEnv = {
      ...process.env,
      [COMMON_SETTINGS.stateDir.env]: stateDir,
      [COMMON_SETTINGS.trustDomain.env]: trustDomain,
      [COMMON_SETTINGS.natsUrl.env]: natsUrl,
      CRYPTO_KEK_FILE: kekPath(stateDir),
      [START_SETTINGS.issuer.env]: edgeUrl,
      ...addresses,
    };
    for (const service of START_ORDER) {
      if (stack.stopping) break;
      const t0 = Date.now();
      const child = spawn(process.execPath, commandOf(service), {
        cwd: REPO_ROOT,
        env: { ...baseEnv, PORT: String(ports[service]) },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const m = manage(service, child);
      stack.services.push(m);
      say(`starting ${service} (pid ${child.pid})`);
      // A service exits 0 only when it was asked to stop (a Ctrl-C that reached the whole
      // process group, say): stop the rest too. Anything else is a failure.
      void m.exited.then(({ code, signal }) => {
        if (code === 0) shutdown(`${service} stopped`, 0);
        else shutdown(`${service} exited (${signal ? `signal ${signal}` : `status ${code}`})`, 1);
      });
      await waitUntilListening(m, host, ports[service], config.startTimeoutMs);
      // The edge is the HTTPS front, with no gRPC server; every other service says when it serves.
      const grpc = service !== 'edge';
      if (grpc) await waitUntilServing(m, `${grpcHostOf(host)}:${ports[service]}`, spiffeId(trustDomain, 'svc', service), operatorTls, t0 + config.startTimeoutMs);
      say(`${service} ready on ${host}:${ports[service]} after ${((Date.now() - t0) / 1000).toFixed(1)} s${grpc ? ' (health: SERVING)' : ''}`);
    }
    if (!stack.stopping) {
      say(`SCEF is up: the T8 edge listens at ${edgeUrl}`);
      for (const line of nextSteps({ edgeUrl, stateDir })) say(line);
    }
  } catch (err: unknown) {
    if (!stack.stopping) shutdown(describeFailure(err), 1);
  }
  await done;
  say(exitCode === 0 ? 'stopped' : 'stopped after a failure');
  return exitCode;
}
