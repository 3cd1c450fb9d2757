/**
 * `aese bench <service>`: load on one service's gRPC API, straight over the mesh's mTLS, with the
 * certificate of the RPC's real caller (the allow-lists admit nobody else), so a platform team can
 * size each service on its own. Latencies go into an HDR histogram; with a rate the load is open
 * loop and each latency counts from when the request was due, not when it was sent, so a stalled
 * service shows in the percentiles (coordinated-omission correction).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { status as GrpcStatus } from '@grpc/grpc-js';
import type { ServiceError } from '@grpc/grpc-js';
import type { Histogram } from 'hdr-histogram-js';
import type { Env } from '@aese/config';
import { AeseError } from '@aese/errors';
import { createMeshClient } from '@aese/grpc-client';
import { pkiLayout, readMeshTlsMaterial } from '@aese/pki';
import type { MeshService } from '@aese/pki';
import { AuthorizationServiceClient } from '@aese/protos/authorization/v1';
import type { DecideRequest } from '@aese/protos/authorization/v1';
import { CapabilityExposureServiceClient } from '@aese/protos/capability-exposure/v1';
import { KeyPurpose } from '@aese/protos/common/v1';
import { CryptoServiceClient } from '@aese/protos/crypto/v1';
import { ReplayGuardServiceClient, Verdict, verdictToJSON } from '@aese/protos/replay-guard/v1';
import { serviceId } from '@aese/runtime';
import { isValidIdentityName } from '@aese/pki';
import { OPERATIONS, targetSyntaxError } from '@aese/t8-catalog';
import { parseCommandArgs } from './args.js';
import { CLI_NAME, describeFailure, EXIT_FAILURE, EXIT_OK, UsageError } from './errors.js';
import { grantRows, setGrant, withdrawGrants } from './grants.js';
import { operatorCapabilityExposureClient } from './network-commands.js';
import { connectPolicyAdmin } from './policy-commands.js';
import { existingPkiTrustDomain, loadCliConfig } from './settings.js';
import type { CliConfig } from './settings.js';

/** The AS the requests are made for unless --as names another. */
export const DEFAULT_BENCH_AS = 'bench';
/** The API, operation and data category of the authorization and capability-exposure loads. */
const BENCH_API = '3gpp-monitoring-event';
const BENCH_CATEGORY = 'location';
const DEFAULTS = { concurrency: 8, rate: 0, durationMs: 10_000, warmupMs: 2_000, destination: 'https://127.0.0.1:9443/bench-notify' } as const;
/** Latencies are recorded in microseconds up to this (one hour): a longer one is an outage, not a latency. */
const HIGHEST_TRACKABLE_US = 3_600_000_000;

export const BENCH_USAGE = `  ${CLI_NAME} bench <service> [--concurrency <n>] [--rate <per-second>] [--duration <time>]
                  [--warmup <time>] [--as <scsAsId>] [--target <kind:value>] [--grant]
                  [--purpose access-token|message-signing] [--destination <https-url>] [--json]
      Load one service's gRPC API directly over mTLS, presenting the certificate of the RPC's
      real caller from the PKI, and print throughput, p50/p90/p99/p99.9/max latency (HDR
      histogram of the successful calls) and the failures by gRPC code. --concurrency calls in
      flight (default ${DEFAULTS.concurrency}); --rate calls per second, open loop, latency counted from when each
      call was due (default ${DEFAULTS.rate}: as fast as the calls in flight allow); --duration (default
      ${DEFAULTS.durationMs / 1000}s) and --warmup (default ${DEFAULTS.warmupMs / 1000}s, not measured) as 500ms, 10s or 1m. Exit 1 if a call failed.
        replay-guard         CheckAndRecord as the edge: a fresh 128-bit base64url nonce per call
                             for the AS --as (default ${DEFAULT_BENCH_AS}), created now.
        authorization        Decide as capability-exposure: may --as read ${BENCH_CATEGORY} of --target
                             through ${BENCH_API}. Expects that grant
        capability-exposure  Invoke as the edge: GET of a ${BENCH_API} subscription of --as
                             on --target that the bench creates first (notifications to
                             --destination, default ${DEFAULTS.destination}, which
                             NOTIFICATION_DESTINATION_ALLOWLIST must allow) and deletes after.
                             Expects the same grant.
        crypto               Sign as authentication with the access-token key (a JWS signing
                             input), or with --purpose message-signing as the edge.
      --target defaults to the first UE of '${CLI_NAME} network list'. The grant is that of
      '${CLI_NAME} policy grant <as> --api ${BENCH_API} --category ${BENCH_CATEGORY} --target <target>'; with --grant
      the bench applies it (operator certificate) for the run and withdraws it afterwards.
`;

/** The services `aese bench` drives. */
export const BENCH_SERVICES = ['replay-guard', 'authorization', 'capability-exposure', 'crypto'] as const;
type BenchService = (typeof BENCH_SERVICES)[number];

interface BenchOptions {
  readonly concurrency: number;
  readonly rate: number;
  readonly durationMs: number;
  readonly warmupMs: number;
  readonly scsAsId: string;
  readonly target: string | undefined;
  readonly grant: boolean;
  readonly purpose: 'access-token' | 'message-signing';
  readonly destination: string;
  readonly json: boolean;
}

/** A call the service answered, but not with what the caller needed (a replayed verdict, a denial, a 4xx). */
class Refusal extends Error {
  constructor(readonly label: string) {
    super(label);
  }
}

/** One service's load: what is called, as whom, and the call. */
interface Workload {
  readonly rpc: string;
  readonly address: string;
  readonly identity: string;
  /** One call; throws on failure. */
  readonly call: () => Promise<void>;
  /** Lines saying what the bench set up or expects. */
  readonly notes: string[];
  /** Undoes the set-up (subscription, grant) and closes the channels. */
  readonly close: () => Promise<void>;
}

interface BenchIo {
  readonly stdout: (text: string) => void;
  readonly env: Env;
}

function durationOf(raw: string | undefined, name: string, fallback: number, allowZero: boolean): number {
  if (raw === undefined) return fallback;
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(raw);
  const ms = m ? Number(m[1]) * { ms: 1, s: 1000, m: 60_000 }[(m[2] ?? 's') as 'ms' | 's' | 'm'] : NaN;
  if (!Number.isFinite(ms) || ms > 3_600_000 || (allowZero ? ms < 0 : ms < 1)) {
    throw new UsageError(`--${name} must be a time up to 1h such as 500ms, 10s or 1m${allowZero ? ' (0: none)' : ''}`);
  }
  return Math.round(ms);
}

function wholeNumber(raw: string | undefined, name: string, fallback: number, min: number, max: number): number {
  if (raw === undefined) return fallback;
  if (!/^\d{1,7}$/.test(raw) || Number(raw) < min || Number(raw) > max) throw new UsageError(`--${name} must be a whole number ${min}-${max}`);
  return Number(raw);
}

function parseBenchArgs(args: readonly string[]): BenchOptions {
  const { values, positionals } = parseCommandArgs(args, {
    concurrency: { type: 'string' },
    rate: { type: 'string' },
    duration: { type: 'string' },
    warmup: { type: 'string' },
    as: { type: 'string' },
    target: { type: 'string' },
    grant: { type: 'boolean' },
    purpose: { type: 'string' },
    destination: { type: 'string' },
    json: { type: 'boolean' },
  });
  if (positionals.length > 0) throw new UsageError(`bench takes one service, got also ${JSON.stringify(positionals[0])}`);
  const scsAsId = values.as ?? DEFAULT_BENCH_AS;
  if (!isValidIdentityName(scsAsId)) throw new UsageError(`invalid --as ${JSON.stringify(scsAsId)}: expected 1-64 characters of [A-Za-z0-9._-]`);
  const problem = values.target === undefined ? undefined : targetSyntaxError(values.target);
  if (problem !== undefined) throw new UsageError(`--target ${problem}`);
  const purpose = values.purpose ?? 'access-token';
  if (purpose !== 'access-token' && purpose !== 'message-signing') throw new UsageError('--purpose must be access-token or message-signing');
  const destination = values.destination ?? DEFAULTS.destination;
  if (!/^https:\/\/[^\s/]+\/\S*$/.test(destination)) throw new UsageError('--destination must be an https URL');
  return {
    concurrency: wholeNumber(values.concurrency, 'concurrency', DEFAULTS.concurrency, 1, 10_000),
    rate: wholeNumber(values.rate, 'rate', DEFAULTS.rate, 0, 1_000_000),
    durationMs: durationOf(values.duration, 'duration', DEFAULTS.durationMs, false),
    warmupMs: durationOf(values.warmup, 'warmup', DEFAULTS.warmupMs, true),
    scsAsId,
    target: values.target,
    grant: values.grant === true,
    purpose,
    destination,
    json: values.json === true,
  };
}

/** What one run measured. */
interface Tally {
  readonly histogram: Histogram;
  ok: number;
  readonly failures: Map<string, number>;
  elapsedMs: number;
}

/** The label a failure is counted under: the gRPC status (and the stable code when it says more), or the refusal. */
function failureLabel(err: unknown): string {
  if (err instanceof Refusal) return err.label;
  if (err instanceof AeseError) {
    const grpc = (err.cause as Partial<ServiceError> | undefined)?.code;
    const name = typeof grpc === 'number' ? (GrpcStatus[grpc] ?? String(grpc)) : undefined;
    return name === undefined ? err.code : name === err.code ? name : `${name} (${err.code})`;
  }
  return 'CLIENT_ERROR';
}

/**
 * Runs `call` from `concurrency` workers for `durationMs`. With a rate, call i is due at
 * start + i/rate whether or not a worker is free then, and its latency counts from then.
 */
async function runLoad(call: () => Promise<void>, o: { concurrency: number; rate: number; durationMs: number }): Promise<Tally> {
  // Loaded here, not with the module: every other command of the CLI starts without it.
  const { build } = await import('hdr-histogram-js');
  const tally: Tally = {
    histogram: build({ lowestDiscernibleValue: 1, highestTrackableValue: HIGHEST_TRACKABLE_US, numberOfSignificantValueDigits: 3 }),
    ok: 0,
    failures: new Map(),
    elapsedMs: 0,
  };
  const start = performance.now();
  const end = start + o.durationMs;
  const interval = o.rate > 0 ? 1000 / o.rate : 0;
  let issued = 0;
  const worker = async (): Promise<void> => {
    for (;;) {
      const due = o.rate > 0 ? start + issued * interval : performance.now();
      if (due >= end) return;
      issued += 1;
      const wait = due - performance.now();
      if (wait > 1) await sleep(wait);
      try {
        await call();
        tally.ok += 1;
        tally.histogram.recordValue(Math.min(HIGHEST_TRACKABLE_US, Math.max(1, Math.round((performance.now() - due) * 1000))));
      } catch (err) {
        const label = failureLabel(err);
        tally.failures.set(label, (tally.failures.get(label) ?? 0) + 1);
      }
    }
  };
  await Promise.all(Array.from({ length: o.concurrency }, worker));
  tally.elapsedMs = performance.now() - start;
  return tally;
}

function meshTls(config: CliConfig, identity: MeshService) {
  return readMeshTlsMaterial(pkiLayout(config.stateDir), identity);
}

function replayGuardWorkload(config: CliConfig, td: string, o: BenchOptions): Workload {
  const client = createMeshClient(ReplayGuardServiceClient, { address: config.replayGuardAddr, tls: meshTls(config, 'edge'), serverId: serviceId(td, 'replay-guard') });
  return {
    rpc: 'CheckAndRecord',
    address: config.replayGuardAddr,
    identity: serviceId(td, 'edge'),
    notes: [`a fresh 128-bit nonce per call for ${o.scsAsId}; each accepted one is kept in the nonce bucket for the replay window`],
    call: async () => {
      const res = await client.checkAndRecord({ scsAsId: o.scsAsId, nonce: randomBytes(16).toString('base64url'), created: Math.floor(Date.now() / 1000) });
      if (res.verdict !== Verdict.VERDICT_ACCEPTED) throw new Refusal(`verdict ${verdictToJSON(res.verdict)}`);
    },
    close: async () => client.close(),
  };
}

/** The JWS signing input of an access token as authentication has crypto sign it (header.claims). */
function accessTokenSigningInput(scsAsId: string): Buffer {
  const now = Math.floor(Date.now() / 1000);
  const part = (v: object): string => Buffer.from(JSON.stringify(v)).toString('base64url');
  const header = part({ alg: 'ES256', typ: 'at+jwt', kid: 'bench' });
  const claims = part({
    iss: 'https://localhost:8443',
    sub: scsAsId,
    aud: 'https://localhost:8443',
    client_id: scsAsId,
    scope: BENCH_API,
    jti: randomUUID(),
    iat: now,
    exp: now + 300,
    cnf: { 'x5t#S256': randomBytes(32).toString('base64url') },
  });
  return Buffer.from(`${header}.${claims}`);
}

/** An RFC 9421 signature base of a T8 response as the edge signs it. */
function messageSignatureBase(): Buffer {
  const created = Math.floor(Date.now() / 1000);
  return Buffer.from(
    `"@status": 200\n"content-type": application/json\n"content-digest": sha-256=:${randomBytes(32).toString('base64')}:\n` +
      `"@signature-params": ("@status" "content-type" "content-digest");created=${created};keyid="bench";alg="ecdsa-p256-sha256";nonce="${randomBytes(16).toString('base64url')}"`,
  );
}

function cryptoWorkload(config: CliConfig, td: string, o: BenchOptions): Workload {
  const signer: MeshService = o.purpose === 'access-token' ? 'authentication' : 'edge';
  const client = createMeshClient(CryptoServiceClient, { address: config.cryptoAddr, tls: meshTls(config, signer), serverId: serviceId(td, 'crypto') });
  const purpose = o.purpose === 'access-token' ? KeyPurpose.KEY_PURPOSE_ACCESS_TOKEN : KeyPurpose.KEY_PURPOSE_MESSAGE_SIGNING;
  return {
    rpc: `Sign (${o.purpose})`,
    address: config.cryptoAddr,
    identity: serviceId(td, signer),
    notes: [o.purpose === 'access-token' ? 'an access token signing input per call' : 'an RFC 9421 response signature base per call'],
    call: async () => {
      const res = await client.sign({ purpose, data: o.purpose === 'access-token' ? accessTokenSigningInput(o.scsAsId) : messageSignatureBase() });
      if (res.signature.length === 0) throw new Refusal('empty signature');
    },
    close: async () => client.close(),
  };
}

/** The target the requests name: --target, else the first UE capability-exposure knows. */
async function benchTarget(config: CliConfig, o: BenchOptions): Promise<string> {
  if (o.target !== undefined) return o.target;
  const client = operatorCapabilityExposureClient(config);
  try {
    const { ues } = await client.listNetworkIdentities({});
    const first = ues.find(u => u.externalId !== '');
    if (!first) throw new AeseError('FAILED_PRECONDITION', 'capability-exposure knows no UE with an externalId: pass --target');
    return `externalId:${first.externalId}`;
  } catch (err) {
    if (err instanceof AeseError && err.code === 'FAILED_PRECONDITION') throw err;
    throw new AeseError('UNAVAILABLE', `cannot list the UEs at ${config.capabilityExposureAddr} (${describeFailure(err)}): pass --target`, { cause: err });
  } finally {
    client.close();
  }
}

/**
 * With --grant: grants the AS the bench's API for the target unless it already holds a grant for
 * that API, and returns how to withdraw it. Without: nothing (the preflight call says when the
 * grant is missing).
 */
async function grantForRun(config: CliConfig, td: string, o: BenchOptions, target: string, notes: string[]): Promise<() => Promise<void>> {
  const grantCmd = `${CLI_NAME} policy grant ${o.scsAsId} --api ${BENCH_API} --category ${BENCH_CATEGORY} --target ${target}`;
  if (!o.grant) {
    notes.push(`expects ${o.scsAsId} to be granted ${BENCH_CATEGORY} of ${target} through ${BENCH_API} ('${grantCmd}', or --grant)`);
    return async () => {};
  }
  const admin = connectPolicyAdmin({ address: config.authorizationAddr, stateDir: config.stateDir, trustDomain: td });
  try {
    const current = await admin.getPolicies({});
    if (grantRows(current.entitiesJson, o.scsAsId).some(r => r.api === BENCH_API)) {
      notes.push(`${o.scsAsId} already holds a ${BENCH_API} grant (policy version ${current.version}); left as it is`);
      return async () => {};
    }
    const entitiesJson = setGrant(current.entitiesJson, o.scsAsId, BENCH_API, { operations: OPERATIONS, categories: [BENCH_CATEGORY], targets: [target], anyTarget: false });
    const { version } = await admin.applyPolicies({ policies: current.policies, entitiesJson, expectedVersion: current.version });
    notes.push(`granted ${o.scsAsId} ${BENCH_API} (${BENCH_CATEGORY}, ${target}) for the run: policy version ${version}`);
  } finally {
    admin.close();
  }
  return async () => {
    const after = connectPolicyAdmin({ address: config.authorizationAddr, stateDir: config.stateDir, trustDomain: td });
    try {
      const now = await after.getPolicies({});
      const { entitiesJson, removed } = withdrawGrants(now.entitiesJson, o.scsAsId, BENCH_API);
      if (removed.length === 0) return;
      const { version } = await after.applyPolicies({ policies: now.policies, entitiesJson, expectedVersion: now.version });
      notes.push(`withdrew the grant: policy version ${version}`);
    } finally {
      after.close();
    }
  };
}

function decideRequest(o: BenchOptions, target: string): DecideRequest {
  return { scsAsId: o.scsAsId, api: BENCH_API, operation: 'read', dataCategories: [BENCH_CATEGORY], targets: [target], pathScsAsId: o.scsAsId };
}

async function authorizationWorkload(config: CliConfig, td: string, o: BenchOptions): Promise<Workload> {
  const notes: string[] = [];
  const target = await benchTarget(config, o);
  const withdraw = await grantForRun(config, td, o, target, notes);
  const client = createMeshClient(AuthorizationServiceClient, {
    address: config.authorizationAddr,
    tls: meshTls(config, 'capability-exposure'),
    serverId: serviceId(td, 'authorization'),
  });
  const request = decideRequest(o, target);
  notes.push('repeated decisions are answered from the decision cache, as on the T8 path (AUTHZ_DECISION_CACHE_SIZE=0 measures Cedar evaluation)');
  return {
    rpc: 'Decide',
    address: config.authorizationAddr,
    identity: serviceId(td, 'capability-exposure'),
    notes,
    call: async () => {
      const res = await client.decide(request);
      if (!res.allowed) throw new Refusal(`denied ${res.denyCause || 'without cause'}`);
    },
    close: async () => {
      client.close();
      await withdraw();
    },
  };
}

interface InvokeAnswer {
  status: number;
  headers: Record<string, string>;
  body: Uint8Array;
}

async function capabilityExposureWorkload(config: CliConfig, td: string, o: BenchOptions): Promise<Workload> {
  const notes: string[] = [];
  const target = await benchTarget(config, o);
  const [kind, value] = [target.slice(0, target.indexOf(':')), target.slice(target.indexOf(':') + 1)];
  if (kind !== 'externalId' && kind !== 'msisdn') throw new UsageError('capability-exposure: --target must be an externalId: or msisdn: UE');
  const withdraw = await grantForRun(config, td, o, target, notes);
  const client = createMeshClient(CapabilityExposureServiceClient, {
    address: config.capabilityExposureAddr,
    tls: meshTls(config, 'edge'),
    serverId: serviceId(td, 'capability-exposure'),
  });
  const invoke = (method: string, path: string, body?: object): Promise<InvokeAnswer> =>
    client.invoke({
      scsAsId: o.scsAsId,
      method,
      path,
      contentType: body === undefined ? '' : 'application/json',
      body: Buffer.from(body === undefined ? '' : JSON.stringify(body)),
      scopes: [BENCH_API],
      apiRoot: config.edgeUrl,
    });
  const cleanUp = async (path: string | undefined): Promise<void> => {
    try {
      if (path !== undefined) {
        const gone = await invoke('DELETE', path);
        notes.push(gone.status === 204 ? `deleted the subscription ${path}` : `could not delete the subscription ${path} (HTTP ${gone.status})`);
      }
    } finally {
      client.close();
      await withdraw();
    }
  };
  let path: string | undefined;
  try {
    // One report at most, and gone a minute after the run even if the DELETE never happens.
    const expire = new Date(Date.now() + o.warmupMs + o.durationMs + 60_000).toISOString();
    const created = await invoke('POST', `/${BENCH_API}/v1/${o.scsAsId}/subscriptions`, {
      [kind]: value,
      notificationDestination: o.destination,
      monitoringType: 'LOCATION_REPORTING',
      maximumNumberOfReports: 1,
      monitorExpireTime: expire,
    });
    const location = created.headers['location'];
    if (created.status !== 201 || location === undefined) {
      const detail = Buffer.from(created.body).toString('utf8').slice(0, 300).replace(/\s+/g, ' ');
      const hint = created.status === 403 ? ` (${notes.find(n => n.startsWith('expects')) ?? 'check the grant'})` : '';
      throw new AeseError('FAILED_PRECONDITION', `creating the bench subscription got HTTP ${created.status}: ${detail}${hint}`);
    }
    path = new URL(location).pathname;
    notes.push(`created the subscription ${path} (${target}, notifications to ${o.destination})`);
  } catch (err) {
    await cleanUp(path);
    throw err;
  }
  const item = path;
  return {
    rpc: `Invoke (GET ${item.replace(/[^/]+$/, '{id}')})`,
    address: config.capabilityExposureAddr,
    identity: serviceId(td, 'edge'),
    notes,
    call: async () => {
      const res = await invoke('GET', item);
      if (res.status !== 200) throw new Refusal(`HTTP ${res.status}`);
    },
    close: () => cleanUp(item),
  };
}

const WORKLOADS: Readonly<Record<BenchService, (config: CliConfig, td: string, o: BenchOptions) => Workload | Promise<Workload>>> = {
  'replay-guard': replayGuardWorkload,
  authorization: authorizationWorkload,
  'capability-exposure': capabilityExposureWorkload,
  crypto: cryptoWorkload,
};

/** The figures of one run, as `--json` prints them. */
export interface BenchReport {
  readonly service: string;
  readonly rpc: string;
  readonly address: string;
  readonly identity: string;
  readonly concurrency: number;
  readonly ratePerS: number;
  readonly durationS: number;
  readonly warmupS: number;
  readonly requests: number;
  readonly ok: number;
  readonly failed: number;
  readonly throughputPerS: number;
  readonly latencyMs: { readonly p50: number; readonly p90: number; readonly p99: number; readonly p999: number; readonly max: number; readonly mean: number };
  readonly failures: Readonly<Record<string, number>>;
  readonly notes: readonly string[];
}

const ms = (us: number): number => Math.round(us) / 1000;

function reportOf(service: string, w: Workload, o: BenchOptions, t: Tally): BenchReport {
  const h = t.histogram;
  const failed = [...t.failures.values()].reduce((a, b) => a + b, 0);
  const empty = h.totalCount === 0;
  // A percentile is its bucket's highest equivalent value, which may lie above the exact max.
  const at = (p: number): number => (empty ? 0 : ms(Math.min(h.getValueAtPercentile(p), h.maxValue)));
  return {
    service,
    rpc: w.rpc,
    address: w.address,
    identity: w.identity,
    concurrency: o.concurrency,
    ratePerS: o.rate,
    durationS: o.durationMs / 1000,
    warmupS: o.warmupMs / 1000,
    requests: t.ok + failed,
    ok: t.ok,
    failed,
    throughputPerS: Math.round((t.ok / (t.elapsedMs / 1000)) * 10) / 10,
    latencyMs: { p50: at(50), p90: at(90), p99: at(99), p999: at(99.9), max: empty ? 0 : ms(h.maxValue), mean: empty ? 0 : ms(h.mean) },
    failures: Object.fromEntries([...t.failures].sort(([a], [b]) => a.localeCompare(b))),
    notes: w.notes,
  };
}

function formatReport(r: BenchReport): string {
  const l = r.latencyMs;
  const failures =
    Object.entries(r.failures)
      .map(([k, n]) => `${k} ${n}`)
      .join(', ') || 'none';
  return (
    `bench ${r.service}: ${r.rpc} at ${r.address} as ${r.identity}\n` +
    r.notes.map(n => `  ${n}\n`).join('') +
    `  concurrency ${r.concurrency}, rate ${r.ratePerS > 0 ? `${r.ratePerS}/s (open loop)` : 'unlimited (closed loop)'}, ` +
    `duration ${r.durationS}s after ${r.warmupS}s warm-up\n` +
    `  requests ${r.requests}: ${r.ok} ok, ${r.failed} failed; throughput ${r.throughputPerS}/s\n` +
    `  latency ms: p50 ${l.p50}  p90 ${l.p90}  p99 ${l.p99}  p99.9 ${l.p999}  max ${l.max}  (mean ${l.mean})\n` +
    `  failures by code: ${failures}\n`
  );
}

/** Runs the bench of one service: set-up, a preflight call, warm-up, the measured run, tear-down. */
function benchCommand(service: BenchService) {
  return async (args: readonly string[], io: BenchIo): Promise<number> => {
    const o = parseBenchArgs(args);
    const config = loadCliConfig(io.env);
    const td = existingPkiTrustDomain(config);
    const workload = await WORKLOADS[service](config, td, o);
    let report: BenchReport;
    try {
      // One call first, so a missing grant or a refused identity is one clear line, not N failures.
      try {
        await workload.call();
      } catch (err) {
        const why = err instanceof Refusal ? err.label : describeFailure(err);
        const expects = workload.notes.find(n => n.startsWith('expects'));
        throw new AeseError('FAILED_PRECONDITION', `${service} ${workload.rpc} at ${workload.address} failed: ${why}${expects ? `; the bench ${expects}` : ''}`, { cause: err });
      }
      if (o.warmupMs > 0) await runLoad(workload.call, { ...o, durationMs: o.warmupMs });
      report = reportOf(service, workload, o, await runLoad(workload.call, o));
    } finally {
      await workload.close();
    }
    io.stdout(o.json ? `${JSON.stringify(report, null, 2)}\n` : formatReport(report));
    return report.failed > 0 ? EXIT_FAILURE : EXIT_OK;
  };
}

/** `aese bench <service>` commands by service name. */
export const BENCH_COMMANDS: Readonly<Record<BenchService, (args: readonly string[], io: BenchIo) => Promise<number>>> = Object.fromEntries(
  BENCH_SERVICES.map(s => [s, benchCommand(s)]),
) as Record<BenchService, (args: readonly string[], io: BenchIo) => Promise<number>>;
