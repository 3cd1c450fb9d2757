/**
 * The mesh as it is deployed, for the benches (`npm run bench`, `npm run bench:revocation`): a
 * private nats-server with the deployment's NATS configuration (TLS, one identity per service,
 * least privilege), a fresh PKI, and every service as its own process, from the production build
 * (`production`: plain node) or through tsx, all on 127.0.0.1 and on ports from the OS. Also the
 * operator's side: its mesh clients, onboarding an AS and granting it access.
 *
 * Every process a bench starts goes through one {@link BenchProcesses}, so that a failure (or
 * Ctrl-C) stops them all.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { builtServiceEntry, prepareState, writePrivateNatsConfig } from '@aese/cli';
import { createMeshClient } from '@aese/grpc-client';
import { createMeshHealthClient } from '@aese/grpc-client/health';
import type { MeshClient } from '@aese/grpc-client';
import { issueAsClientCertificate } from '@aese/pki';
import type { KeyPairPem, PkiLayout } from '@aese/pki';
import { AuthenticationServiceClient, SignatureProfile } from '@aese/protos/authentication/v1';
import { AuthorizationServiceClient } from '@aese/protos/authorization/v1';
import { MESH_ENDPOINTS, REPO_ROOT, serviceId } from '@aese/runtime';
import type { MeshServiceName, MeshTls } from '@aese/runtime';
import { freePort, tempDir, waitForPort } from '@aese/testing';
import { buildAll } from '../build.ts';

/** Every service, in the order they start (each one's dependencies first). */
export const MESH_SERVICES: readonly MeshServiceName[] = ['crypto', 'authentication', 'authorization', 'replay-guard', 'capability-exposure', 'edge'];
/** How long a service process may take to listen. */
const LISTEN_TIMEOUT_MS = 60_000;
/** How long a stopping process may take before it is killed. */
const STOP_GRACE_MS = 5_000;

/** The child processes of a bench, stopped together, newest first, and the files they leave. */
export class BenchProcesses {
  private readonly children: ChildProcess[] = [];
  private readonly cleanups: (() => void)[] = [];

  /** Runs `cleanup` once every process has stopped (removing the folder they wrote in). */
  afterStop(cleanup: () => void): void {
    this.cleanups.push(cleanup);
  }

  /** Starts a process in the repository root, pinned to `core` (taskset) when one is given. */
  spawn(command: string, args: readonly string[], env: NodeJS.ProcessEnv, core?: string): ChildProcess {
    const [file, argv] = core === undefined ? [command, [...args]] : ['taskset', ['-c', core, command, ...args]];
    const child = spawn(file, argv, { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    // A process that cannot start (no such command) fails its waiter below, not the whole bench unannounced.
    child.on('error', () => undefined);
    this.children.push(child);
    return child;
  }

  /** SIGTERM to each process still running, SIGKILL to one that has not exited after the grace time. */
  async stopAll(): Promise<void> {
    for (const child of [...this.children].reverse()) {
      if (child.exitCode !== null || child.signalCode !== null) continue;
      child.kill('SIGTERM');
      await Promise.race([new Promise(r => child.once('exit', r)), new Promise(r => setTimeout(r, STOP_GRACE_MS))]);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
    for (const cleanup of this.cleanups.splice(0).reverse()) cleanup();
  }
}

/** Rejects when the process exits or cannot be started: raced against waiting for it to listen. */
function failsWhenGone(child: ChildProcess, name: string, errors: readonly string[]): Promise<never> {
  return new Promise<never>((_, reject) => {
    child.once('error', err => reject(new Error(`${name} could not start: ${err.message}`)));
    child.once('exit', code => reject(new Error(`${name} exited (${code}): ${errors.slice(-5).join(' | ')}`)));
  });
}

/** Collects a child's stderr lines so that a failure can show them. */
export function captureErrors(child: ChildProcess, name: string, into: string[]): void {
  createInterface({ input: child.stderr! }).on('line', line => into.push(`${name}: ${line}`));
}

export interface ProcessMeshOptions {
  readonly processes: BenchProcesses;
  readonly trustDomain: string;
  /** Services from the production build (built first into the mesh's folder) instead of tsx. */
  readonly production: boolean;
  /** Pins NATS and every service to this core; unset, the OS schedules them. */
  readonly core?: string;
  /** Each service writes a V8 CPU profile into `<profileDir>/<name>` when it stops. */
  readonly profileDir?: string;
  /** The bench's own settings, added to the mesh's (addresses, state, NATS) for every service. */
  readonly env: (ports: Readonly<Record<MeshServiceName, number>>) => Readonly<Record<string, string>>;
  /** Progress lines (the build, each service up). */
  readonly say: (line: string) => void;
}

/** A running process mesh. */
export interface ProcessMesh {
  /** A private temporary folder (removed by `stop`) for the bench's own files too. */
  readonly dir: string;
  readonly stateDir: string;
  readonly trustDomain: string;
  readonly layout: PkiLayout;
  readonly ports: Readonly<Record<MeshServiceName, number>>;
  /** The environment every service was started with. */
  readonly env: NodeJS.ProcessEnv;
  /** NATS (`nats-server`) and each service, in start order; replicas started later are not in it. */
  readonly processes: ReadonlyMap<string, ChildProcess>;
  /** The stderr lines of every process, for failure messages. */
  readonly errors: string[];
  /**
   * Starts one more service process (a replica: `name` tells it apart) on `port`, with `env`
   * over the mesh's; resolves once it listens.
   */
  startService(service: MeshServiceName, port: number, name?: string, env?: Readonly<Record<string, string>>): Promise<ChildProcess>;
  /** The operator's mesh TLS identity. */
  operatorTls(): MeshTls;
  /** Stops every process of the bench and removes the folder (as `processes.stopAll()` does). */
  stop(): Promise<void>;
}

/** Starts NATS and every service, each its own process, in dependency order; on failure stops what started. */
export async function startProcessMesh(options: ProcessMeshOptions): Promise<ProcessMesh> {
  const { processes, trustDomain, say } = options;
  const dir = tempDir('aese-bench');
  processes.afterStop(() => dir.remove());
  const stop = (): Promise<void> => processes.stopAll();
  try {
    // The state folder and the private NATS configuration, made the way `npm start` makes them.
    const stateDir = join(dir.path, 'state');
    const { layout, kekPath: kekFile } = await prepareState({ stateDir, trustDomain });

    const errors: string[] = [];
    const started = new Map<string, ChildProcess>();
    const natsPort = await freePort();
    const natsConfig = writePrivateNatsConfig(layout, trustDomain, natsPort).config;
    const nats = processes.spawn('nats-server', ['-c', natsConfig], process.env, options.core);
    captureErrors(nats, 'nats', errors);
    started.set('nats-server', nats);
    await Promise.race([waitForPort('127.0.0.1', natsPort), failsWhenGone(nats, 'nats-server', errors)]);

    const ports = Object.fromEntries(await Promise.all(MESH_SERVICES.map(async s => [s, await freePort()] as const))) as Record<MeshServiceName, number>;
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      AESE_STATE_DIR: stateDir,
      AESE_TRUST_DOMAIN: trustDomain,
      NATS_URL: `tls://127.0.0.1:${natsPort}`,
      LISTEN_HOST: '127.0.0.1',
      CRYPTO_KEK_FILE: kekFile,
      ...Object.fromEntries(Object.entries(MESH_ENDPOINTS).map(([name, e]) => [e.addressEnv, `localhost:${ports[name as MeshServiceName]}`])),
      ...options.env(ports),
    };
    const buildDir = join(dir.path, 'dist');
    if (options.production) say(`production build in ${(await buildAll(buildDir)).ms} ms`);

    const startService = async (service: MeshServiceName, port: number, name: string = service, extra: Readonly<Record<string, string>> = {}): Promise<ChildProcess> => {
      const t0 = Date.now();
      const profile = options.profileDir ? ['--cpu-prof', `--cpu-prof-dir=${join(options.profileDir, name)}`] : [];
      const entry = options.production ? [builtServiceEntry(buildDir, service)] : ['--import', 'tsx', join('services', service, 'src', 'main.ts')];
      const child = processes.spawn(process.execPath, [...profile, ...entry], { ...env, ...extra, PORT: String(port) }, options.core);
      captureErrors(child, name, errors);
      child.stdout!.resume();
      await Promise.race([waitForPort('127.0.0.1', port, LISTEN_TIMEOUT_MS), failsWhenGone(child, name, errors)]);
      say(`${name} up in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
      return child;
    };
    for (const service of MESH_SERVICES) started.set(service, await startService(service, ports[service]));

    return {
      dir: dir.path,
      stateDir,
      trustDomain,
      layout,
      ports,
      env,
      processes: started,
      errors,
      startService,
      operatorTls: () => ({
        caPem: readFileSync(layout.meshCa.cert, 'utf8'),
        certPem: readFileSync(layout.operator.cert, 'utf8'),
        keyPem: readFileSync(layout.operator.key, 'utf8'),
      }),
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** The operator's client of the authentication service (on `port`, by default the mesh's); close it after use. */
export function operatorAuthentication(mesh: ProcessMesh, port: number = mesh.ports.authentication): MeshClient<AuthenticationServiceClient> {
  return createMeshClient(AuthenticationServiceClient, { address: `localhost:${port}`, tls: mesh.operatorTls(), serverId: serviceId(mesh.trustDomain, 'authentication') });
}

/** The operator's client of the authorization service; close it after use. */
export function operatorAuthorization(mesh: ProcessMesh): MeshClient<AuthorizationServiceClient> {
  return createMeshClient(AuthorizationServiceClient, {
    address: `localhost:${mesh.ports.authorization}`,
    tls: mesh.operatorTls(),
    serverId: serviceId(mesh.trustDomain, 'authorization'),
  });
}

/**
 * Resolves once a mesh service on `port` reports SERVING over gRPC health (it listens before it
 * has loaded its state); fails after `timeoutMs`.
 */
export async function untilServing(mesh: ProcessMesh, service: Exclude<MeshServiceName, 'edge'>, port: number, timeoutMs = LISTEN_TIMEOUT_MS): Promise<void> {
  const health = createMeshHealthClient({ address: `localhost:${port}`, tls: mesh.operatorTls(), serverId: serviceId(mesh.trustDomain, service) });
  const deadline = Date.now() + timeoutMs;
  try {
    for (;;) {
      const status = await health.check().catch((err: unknown) => (err instanceof Error ? err.message.split('\n')[0] : String(err)));
      if (status === 'SERVING') return;
      if (Date.now() > deadline) throw new Error(`${service} on port ${port} is not SERVING after ${timeoutMs / 1000} s (${status})`);
      await new Promise(r => setTimeout(r, 100));
    }
  } finally {
    health.close();
  }
}

/** An onboarded AS: its id, client certificate and key, and the certificate's thumbprint. */
export interface BenchAs extends KeyPairPem {
  readonly scsAsId: string;
  readonly thumbprint: string;
}

/**
 * Onboards an AS as the operator does: a client certificate from the AS CA, and a registration
 * of its thumbprint, scopes and request-signing key (a public JWK with its `kid`) that requires
 * signed requests.
 */
export async function onboardAs(mesh: ProcessMesh, scsAsId: string, scopes: readonly string[], signingJwk: Readonly<Record<string, unknown>>): Promise<BenchAs> {
  const cert = await issueAsClientCertificate(mesh.stateDir, mesh.trustDomain, scsAsId);
  const auth = operatorAuthentication(mesh);
  try {
    await auth.registerApplicationServer({
      scsAsId,
      certificateThumbprints: [cert.thumbprint],
      scopes: [...scopes],
      signingKeysJson: [JSON.stringify(signingJwk)],
      encryptionKeyJson: '',
      signatureProfile: SignatureProfile.SIGNATURE_PROFILE_REQUIRED,
    });
  } finally {
    auth.close();
  }
  return { scsAsId, ...cert };
}

/**
 * Grants an AS these APIs (Cedar entity tags, see services/authorization/README.md) through the
 * operator's ApplyPolicies: the policy set and the other entities stay as they are.
 */
export async function grantApis(mesh: ProcessMesh, scsAsId: string, apis: Readonly<Record<string, unknown>>): Promise<void> {
  const authz = operatorAuthorization(mesh);
  try {
    const current = await authz.getPolicies({});
    const entities = [...(JSON.parse(current.entitiesJson || '[]') as unknown[]), { uid: { type: 'Aese::Application', id: scsAsId }, attrs: {}, parents: [], tags: apis }];
    await authz.applyPolicies({ policies: current.policies, entitiesJson: JSON.stringify(entities), expectedVersion: current.version });
  } finally {
    authz.close();
  }
}
