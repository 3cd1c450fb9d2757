/**
 * `npm run bench`: the full T8 secure path against a bare Node HTTPS server, in one run on this
 * machine (../shared/design/BENCHMARKING.md).
 *
 * Starts a private nats-server, a fresh PKI and every service of the mesh as its own process
 * (process-mesh.ts), all pinned to core 0 (`taskset -c 0`), and a bare HTTPS server with client
 * certificates, also on core 0, answering the same JSON body. An AS is onboarded and granted, creates one
 * MonitoringEvent subscription, and autocannon (pinned to core 1, 50 keep-alive connections,
 * 2 s warm-up, 10 s measured) GETs that subscription: against the bare server, then through the
 * edge with everything on (mTLS, bearer token, an RFC 9421 signature with a fresh nonce per
 * request, the replay check, authorization, MonitoringEvent GET, the signed response). Repeated
 * GETs are given capability-exposure's reusable answer again at the edge (every check before it
 * still made); `EDGE_ANSWER_REUSE_MAX_AGE_MS=0 npm run bench` sends every one to
 * capability-exposure, for comparison. Three
 * rounds, alternating; prints req/s and p50/p99 of each, the medians, the spread and the ratio
 * (of the medians, and of each round's back-to-back pair),
 * and a table of the CPU time each server-core process spent per request (from /proc), which
 * says where the secure path's cost goes.
 *
 * The replay guard is checked while it is loaded: during each measured secure round the load
 * runner also sends replay probes (a freshly signed request, then the very same bytes again) on
 * its own connection, and every replay must be refused as one (401, cause REPLAYED_REQUEST). After
 * the rounds a second edge is started beside the first, and requests served by one edge are
 * replayed to the other: each must be refused as a replay too. Otherwise the run fails.
 *
 * Also the resident memory of each server-core process: the largest VmRSS sampled while the
 * secure path is under load, and the peak (VmHWM) since start; and how many nonces each append
 * to the replay stream carried (the stream's sequence read before and after each secure round).
 *
 * Options: `--quick` (one 5 s round, for iterating), `--profile` (V8 CPU profiles of every service),
 * `--production` (the services from the production build, scripts/build.ts, with plain node instead
 * of tsx).
 * The load generator is autocannon; it does not verify the server certificate (it hard-codes
 * rejectUnauthorized: false), which weakens nothing measured: the servers still require and
 * verify the AS client certificate.
 */
import type { ChildProcess } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { computeContentDigest, createNonce, signMessage } from '@aese/http-signatures';
import { NATS_ADMIN_NAME, readT8ServerTlsMaterial } from '@aese/pki';
import { REPLAY_WINDOW_STREAM } from '@aese/replay-window';
import { connectNatsAs, freePort } from '@aese/testing';
import { BenchProcesses, captureErrors, grantApis, onboardAs, startProcessMesh } from './process-mesh.ts';
import type { ProcessMesh } from './process-mesh.ts';
import { noCounts, probeAgent, probeOnce, sendGet, signedGet } from './replay-probe.ts';
import type { ReplayCounts } from './replay-probe.ts';

const SERVER_CORE = '0';
const LOAD_CORE = '1';
const CONNECTIONS = 50;
const WARMUP_S = 2;
/** One untimed pass through the freshly started mesh before the rounds. */
const INITIAL_WARMUP_S = 5;
/** `--quick` (one short round) is for profiling while changing the code; quotes use the full run. */
const QUICK = process.argv.includes('--quick');
const DURATION_S = QUICK ? 5 : 10;
const ROUNDS = QUICK ? 1 : 3;
/** `--profile`: every service writes a V8 CPU profile (.cpuprofile) here when it stops. */
const PROFILE_DIR = process.argv.includes('--profile') ? join(tmpdir(), 'aese-bench-profiles') : undefined;
const PRODUCTION = process.argv.includes('--production');
/** How often resident memory is sampled under load. */
const RSS_SAMPLE_MS = 250;
/** Replay probes during each measured secure round: one every 100 ms, bounded by the round's length. */
const REPLAY_PROBE_INTERVAL_MS = 100;
const REPLAY_PROBE_MAX = Math.ceil((DURATION_S * 1000) / REPLAY_PROBE_INTERVAL_MS);
/** Cross-edge replay probes after the rounds, in each direction. */
const TWO_EDGE_PROBES = 50;
/** How long the second edge may take to serve its first request. */
const SECOND_EDGE_READY_MS = 60_000;
const TRUST_DOMAIN = 'bench.local';
const SCS_AS_ID = 'as-bench';
const UE = 'ue1@scef.test';

const processes = new BenchProcesses();
/** The processes on the server core, by name, for the CPU breakdown. */
const serverProcesses = new Map<string, ChildProcess>();
const say = (line: string): void => void process.stdout.write(`bench | ${line}\n`);

/** One HTTPS request with the AS's certificate; resolves with status and body. */
function asRequest(
  port: number,
  as: { certPem: string; keyPem: string },
  caPem: string,
  method: string,
  path: string,
  headers: Record<string, string>,
  body?: Buffer,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      {
        host: '127.0.0.1',
        port,
        servername: 'localhost',
        ca: caPem,
        cert: as.certPem,
        key: as.keyPem,
        method,
        path,
        headers: { host: `localhost:${port}`, ...headers },
        agent: false,
      },
      res => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

interface RunResult {
  readonly rps: number;
  readonly total: number;
  readonly p50: number;
  readonly p99: number;
  readonly non2xx: number;
  readonly errors: number;
  /** Replay probes sent beside the measured load (secure rounds only). */
  readonly replayProbes?: ReplayCounts;
}

/** CPU time (user + system, ms) a process has used so far, from /proc (Linux). */
function cpuMs(child: ChildProcess): number {
  try {
    const stat = readFileSync(`/proc/${child.pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // Fields 14 and 15 of stat (utime, stime), in clock ticks (100 per second on Linux).
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
  } catch {
    return 0;
  }
}

/** Resident set size (VmRSS) and its peak (VmHWM) of a process, in kB, from /proc (Linux). */
function memoryKb(child: ChildProcess): { rss: number; hwm: number } {
  try {
    const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
    const field = (name: string): number => Number(status.match(new RegExp(`^${name}:\\s+(\\d+) kB$`, 'm'))?.[1] ?? 0);
    return { rss: field('VmRSS'), hwm: field('VmHWM') };
  } catch {
    return { rss: 0, hwm: 0 };
  }
}

/** The largest VmRSS sampled per server-core process while the secure path was under load. */
const rssUnderLoadKb = new Map<string, number>();
function sampleRss(): void {
  for (const [name, child] of serverProcesses) rssUnderLoadKb.set(name, Math.max(rssUnderLoadKb.get(name) ?? 0, memoryKb(child).rss));
}

function cpuSnapshot(): Map<string, number> {
  return new Map([...serverProcesses].map(([name, child]) => [name, cpuMs(child)]));
}

async function load(configPath: string): Promise<RunResult> {
  const child = processes.spawn(process.execPath, ['--import', 'tsx', join('scripts', 'bench', 'load-runner.ts'), configPath], process.env, LOAD_CORE);
  const errors: string[] = [];
  captureErrors(child, 'load-runner', errors);
  let out = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString('utf8')));
  const code = await new Promise<number | null>(r => child.once('exit', r));
  if (code !== 0) throw new Error(`load runner failed (${code}): ${errors.slice(-5).join(' | ')}`);
  return JSON.parse(out.trim().split('\n').pop()!) as RunResult;
}

const median = (xs: readonly number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const spread = (xs: readonly number[]): string => {
  const m = median(xs);
  return `${Math.round(Math.min(...xs))}-${Math.round(Math.max(...xs))} (±${((100 * (Math.max(...xs) - Math.min(...xs))) / 2 / m).toFixed(1)} %)`;
};

/** Every replay refused as a replay, and at least one sent. */
const allRefused = (c: ReplayCounts): boolean => c.sent > 0 && c.accepted === 0 && c.refused === c.sent;
const countsText = (c: ReplayCounts): string =>
  `${c.sent} sent, ${c.refused} refused (replayed), ${c.accepted} accepted, ${c.other} other${c.firstUnexpected ? ` (first: ${c.firstUnexpected})` : ''}`;

/** The server-core CPU per request as a table: median and min-max over the rounds, per process. */
function cpuTable(perRound: ReadonlyMap<string, readonly number[]>, secure: readonly string[], rounds: number): string {
  const total = Array.from({ length: rounds }, (_, i) => secure.reduce((sum, p) => sum + (perRound.get(p)?.[i] ?? 0), 0));
  const rows: readonly (readonly [string, readonly number[]])[] = [
    ...secure.map(p => [p, perRound.get(p) ?? []] as const),
    ['secure path total', total],
    ['bare-server', perRound.get('bare-server') ?? []],
  ];
  const us = (x: number): string => String(Math.round(x));
  const cells = rows.map(([name, xs]) => [name, xs.length ? us(median(xs)) : '-', xs.length ? `${us(Math.min(...xs))}-${us(Math.max(...xs))}` : '-']);
  const header = ['process', 'median', `min-max over ${rounds} round${rounds === 1 ? '' : 's'}`];
  const widths = header.map((h, c) => Math.max(h.length, ...cells.map(row => row[c].length)));
  const line = (row: readonly string[]): string => `  ${row[0].padEnd(widths[0])}  ${row[1].padStart(widths[1])}  ${row[2].padStart(widths[2])}`;
  return [`server-core CPU per request, us (approximate, from /proc; the mesh in the secure rounds, bare-server in the bare ones)`, line(header), ...cells.map(line)].join('\n');
}

async function main(): Promise<void> {
  const started = Date.now();
  // NATS and every service, pinned to the server core.
  const mesh: ProcessMesh = await startProcessMesh({
    processes,
    trustDomain: TRUST_DOMAIN,
    production: PRODUCTION,
    core: SERVER_CORE,
    ...(PROFILE_DIR ? { profileDir: PROFILE_DIR } : {}),
    env: ports => ({
      AESE_ISSUER: `https://localhost:${ports.edge}`,
      LOG_LEVEL: 'warn',
      SIM_TICK_MS: '0',
      NOTIFICATION_DESTINATION_ALLOWLIST: '127.0.0.1:9443',
      // The bench measures the path, not the limiter: one AS sends everything.
      EDGE_RATE_LIMIT_PER_S: '1000000',
      EDGE_RATE_LIMIT_BURST: '1000000',
    }),
    say,
  });
  // The replay stream's appends, read as the JetStream administrator: nonces per append says
  // whether the replay windows' group commit batches under the load.
  const natsAdmin = await connectNatsAs(mesh.env['NATS_URL']!, mesh.stateDir, NATS_ADMIN_NAME);
  try {
    const jsm = await natsAdmin.jetstreamManager();
    const replayAppends = async (): Promise<number> => (await jsm.streams.info(REPLAY_WINDOW_STREAM)).state.last_seq;
    const { layout, ports, errors } = mesh;
    const issuer = `https://localhost:${ports.edge}`;
    for (const [name, child] of mesh.processes) serverProcesses.set(name, child);

    // An AS with a request-signing key, onboarded and granted by the operator.
    const signing = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const kid = `${SCS_AS_ID}-sig-1`;
    const as = await onboardAs(mesh, SCS_AS_ID, ['3gpp-monitoring-event'], { ...(signing.publicKey.export({ format: 'jwk' }) as object), kid });
    await grantApis(mesh, SCS_AS_ID, {
      '3gpp-monitoring-event': { operations: ['create', 'read'], categories: ['location'], targets: [`externalId:${UE}`], anyTarget: false, locationGranularity: 'exact' },
    });

    const t8 = readT8ServerTlsMaterial(layout);
    const caPem = readFileSync(layout.t8Ca.cert, 'utf8');
    const form = `grant_type=client_credentials&client_id=${SCS_AS_ID}&scope=3gpp-monitoring-event`;
    const tokenReply = await asRequest(ports.edge, as, caPem, 'POST', '/oauth2/token', { 'content-type': 'application/x-www-form-urlencoded' }, Buffer.from(form));
    if (tokenReply.status !== 200) throw new Error(`token request failed: ${tokenReply.status} ${tokenReply.body}`);
    const token = (JSON.parse(tokenReply.body) as { access_token: string }).access_token;

    const signed = (method: string, path: string, body?: Buffer): Record<string, string> => {
      const headers: Record<string, string> = { authorization: `Bearer ${token}` };
      if (body) {
        headers['content-type'] = 'application/json';
        headers['content-digest'] = computeContentDigest(body);
      }
      const out = signMessage(
        { method, targetUri: `https://localhost:${ports.edge}${path}`, authority: `localhost:${ports.edge}`, headers },
        {
          label: 'sig1',
          components: body ? ['@method', '@target-uri', 'authorization', 'content-digest', 'content-type'] : ['@method', '@target-uri', 'authorization'],
          params: { created: Math.floor(Date.now() / 1000), nonce: createNonce(), keyid: kid },
          key: signing.privateKey,
          alg: 'ecdsa-p256-sha256',
        },
      );
      return { ...headers, 'signature-input': out.signatureInput, signature: out.signature };
    };
    const collection = `/3gpp-monitoring-event/v1/${SCS_AS_ID}/subscriptions`;
    const subscription = Buffer.from(
      JSON.stringify({ externalId: UE, notificationDestination: 'https://127.0.0.1:9443/notify', monitoringType: 'LOCATION_REPORTING', maximumNumberOfReports: 100 }),
    );
    const created = await asRequest(ports.edge, as, caPem, 'POST', collection, signed('POST', collection, subscription), subscription);
    if (created.status !== 201) throw new Error(`creating the subscription failed: ${created.status} ${created.body}`);
    const itemPath = `${collection}/${(JSON.parse(created.body) as { self: string }).self.split('/').pop()}`;
    const probe = await asRequest(ports.edge, as, caPem, 'GET', itemPath, signed('GET', itemPath));
    if (probe.status !== 200) throw new Error(`GET of the subscription failed: ${probe.status} ${probe.body}`);

    // The baseline: the same JSON body from a bare HTTPS server with client certificates.
    const bareConfig = join(mesh.dir, 'bare.json');
    writeFileSync(bareConfig, JSON.stringify({ certPem: t8.certPem, keyPem: t8.keyPem, clientCaPem: t8.clientCaPem, body: probe.body }), { mode: 0o600 });
    const bare = processes.spawn(process.execPath, ['--import', 'tsx', join('scripts', 'bench', 'bare-server.ts'), bareConfig], process.env, SERVER_CORE);
    captureErrors(bare, 'bare', errors);
    serverProcesses.set('bare-server', bare);
    const barePort = await new Promise<number>((resolve, reject) => {
      createInterface({ input: bare.stdout! }).once('line', line => resolve(Number(line.split(' ')[1])));
      bare.once('exit', code => reject(new Error(`bare server exited (${code})`)));
    });

    const runnerConfig = (name: string, port: number, withSigning: boolean, warmupS = WARMUP_S, durationS = DURATION_S, replayProbes = false): string => {
      const path = join(mesh.dir, `${name}.json`);
      writeFileSync(
        path,
        JSON.stringify({
          port,
          path: itemPath,
          connections: CONNECTIONS,
          warmupS,
          durationS,
          certPem: as.certPem,
          keyPem: as.keyPem,
          caPem,
          ...(withSigning ? { signing: { token, kid, alg: 'ecdsa-p256-sha256', pkcs8Pem: signing.privateKey.export({ format: 'pem', type: 'pkcs8' }) } } : {}),
          ...(replayProbes ? { replayProbes: { intervalMs: REPLAY_PROBE_INTERVAL_MS, max: REPLAY_PROBE_MAX } } : {}),
        }),
        { mode: 0o600 },
      );
      return path;
    };
    const bareRunner = runnerConfig('bare-runner', barePort, false);
    const secureRunner = runnerConfig('secure-runner', ports.edge, true, WARMUP_S, DURATION_S, true);
    // A freshly started mesh runs its request path cold (JIT, first connections): one untimed
    // pass before the rounds, so round 1 measures the same steady state as the others.
    await load(runnerConfig('mesh-warmup', ports.edge, true, 1, INITIAL_WARMUP_S));

    say(
      `setup and mesh warm-up done in ${((Date.now() - started) / 1000).toFixed(1)} s; ${ROUNDS} rounds of ${WARMUP_S} s warm-up + ${DURATION_S} s, ${CONNECTIONS} connections, servers on core ${SERVER_CORE}, load on core ${LOAD_CORE}`,
    );
    const results: { bare: RunResult[]; secure: RunResult[] } = { bare: [], secure: [] };
    const cpuPerRequest = new Map<string, number[]>();
    /** CPU share of core 0 the (idle) mesh took while the bare server was measured. */
    const meshShareDuringBare: number[] = [];
    /** Nonces per replay-stream append in each secure round. */
    const noncesPerAppend: number[] = [];
    for (let round = 1; round <= ROUNDS; round++) {
      for (const [name, config] of [
        ['bare', bareRunner],
        ['secure', secureRunner],
      ] as const) {
        const appendsBefore = name === 'secure' ? await replayAppends() : 0;
        const before = cpuSnapshot();
        const sampler = name === 'secure' ? setInterval(sampleRss, RSS_SAMPLE_MS) : undefined;
        const r = await load(config).finally(() => clearInterval(sampler));
        const after = cpuSnapshot();
        // Warm-up requests are not in r.total: scale by the measured share of the run.
        const share = DURATION_S / (WARMUP_S + DURATION_S);
        if (name === 'secure') noncesPerAppend.push(r.total / share / ((await replayAppends()) - appendsBefore));
        if (name === 'bare') {
          const meshMs = [...after].filter(([p]) => p !== 'bare-server').reduce((sum, [p, ms]) => sum + ms - before.get(p)!, 0);
          meshShareDuringBare.push(meshMs / ((WARMUP_S + DURATION_S) * 1000));
        }
        for (const [proc, ms] of after) {
          if ((name === 'bare') !== (proc === 'bare-server')) continue;
          cpuPerRequest.set(proc, [...(cpuPerRequest.get(proc) ?? []), ((ms - before.get(proc)!) * share * 1000) / r.total]);
        }
        results[name].push(r);
        say(
          `round ${round} ${name.padEnd(6)} ${Math.round(r.rps).toString().padStart(6)} req/s  p50 ${r.p50} ms  p99 ${r.p99} ms  (${r.total} requests, ${r.non2xx} non-2xx, ${r.errors} errors)`,
        );
        if (name === 'secure') {
          const probes = r.replayProbes ?? noCounts();
          say(`round ${round} replay probes during the load: ${countsText(probes)}`);
          if (!allRefused(probes)) throw new Error(`round ${round}: not every replay probe was refused as a replay (${countsText(probes)})`);
        }
        if (r.non2xx > 0 || r.errors > 0) throw new Error(`${name}: ${r.non2xx} non-2xx answers and ${r.errors} errors: the run does not measure what it says`);
      }
    }
    const row = (name: string, rs: RunResult[]): string =>
      `${name.padEnd(12)} ${Math.round(median(rs.map(r => r.rps)))
        .toString()
        .padStart(7)} req/s  spread ${spread(rs.map(r => r.rps))}  p50 ${median(rs.map(r => r.p50))} ms  p99 ${median(rs.map(r => r.p99))} ms`;
    const ratio = median(results.secure.map(r => r.rps)) / median(results.bare.map(r => r.rps));
    process.stdout.write('\n');
    process.stdout.write(`medians of ${ROUNDS} runs (${DURATION_S} s each, ${CONNECTIONS} connections, keep-alive)\n`);
    process.stdout.write(`${row('bare HTTPS', results.bare)}\n`);
    process.stdout.write(`${row('secure path', results.secure)}\n`);
    // Each round's pair was measured back to back: its ratio shows how far the machine's noise moves the median one.
    const perRound = results.secure.map((r, i) => `${((100 * r.rps) / results.bare[i].rps).toFixed(1)} %`).join(', ');
    process.stdout.write(`ratio secure/bare: ${(100 * ratio).toFixed(1)} % (target >= 10 %); round by round: ${perRound}\n`);
    const secureProcesses = [...serverProcesses.keys()].filter(p => p !== 'bare-server');
    process.stdout.write(`${cpuTable(cpuPerRequest, secureProcesses, ROUNDS)}\n`);
    const mb = (kb: number): string => (kb / 1024).toFixed(0);
    const memory = [...serverProcesses].filter(([p]) => p !== 'bare-server').map(([p, child]) => `${p} ${mb(rssUnderLoadKb.get(p) ?? 0)}/${mb(memoryKb(child).hwm)}`);
    process.stdout.write(
      `services run ${PRODUCTION ? 'from the production build (plain node)' : 'through tsx'}; RSS per process, MB (max sampled under the secure-path load / peak VmHWM): ${memory.join(', ')}\n`,
    );
    process.stdout.write(`core 0 taken by the idle mesh during the bare runs: ${meshShareDuringBare.map(x => `${(100 * x).toFixed(0)} %`).join(', ')}\n`);
    process.stdout.write(
      `replay stream: ${median(noncesPerAppend).toFixed(1)} nonces per append (requests / appends, warm-up included; rounds: ${noncesPerAppend.map(x => x.toFixed(1)).join(', ')})\n`,
    );

    // Two edges behind the one replay guard, after the measurements: a request served by one
    // edge, replayed byte for byte to the other, must be refused as a replay. Every request is
    // signed for the issuer's authority (Host and @target-uri), which both edges serve (each
    // checks the authority's host against the TLS server name, and the signature against the
    // authority as received), so the nonce already seen is the only reason to refuse.
    process.stdout.write('\n');
    const edgeBPort = await freePort();
    await mesh.startService('edge', edgeBPort, 'edge-2');
    const edges = { A: { port: ports.edge, agent: probeAgent() }, B: { port: edgeBPort, agent: probeAgent() } };
    const issuerAuthority = new URL(issuer).host;
    const probeSigning = { token, kid, alg: 'ecdsa-p256-sha256' as const, key: signing.privateKey };
    const tls = { certPem: as.certPem, keyPem: as.keyPem, caPem };
    const sendTo = (edge: keyof typeof edges, headers: Record<string, string>) => sendGet(edges[edge].port, tls, edges[edge].agent, itemPath, headers);
    try {
      // The second edge listens before it can serve (API list, keys): wait for its first 200.
      const deadline = Date.now() + SECOND_EDGE_READY_MS;
      for (;;) {
        const answer = await sendTo('B', signedGet(issuerAuthority, itemPath, probeSigning)).catch((err: unknown) => ({ status: 0, body: String(err) }));
        if (answer.status === 200) break;
        if (Date.now() > deadline) throw new Error(`the second edge does not serve: ${answer.status} ${answer.body.slice(0, 200)}`);
        await new Promise(r => setTimeout(r, 250));
      }
      const cross = { 'A->B': noCounts(), 'B->A': noCounts() };
      for (let i = 0; i < TWO_EDGE_PROBES; i++) {
        for (const [first, second, counts] of [
          ['A', 'B', cross['A->B']],
          ['B', 'A', cross['B->A']],
        ] as const) {
          const headers = signedGet(issuerAuthority, itemPath, probeSigning);
          await probeOnce(
            counts,
            () => sendTo(first, headers),
            () => sendTo(second, headers),
          );
        }
      }
      const all = noCounts();
      for (const c of Object.values(cross)) {
        all.sent += c.sent;
        all.refused += c.refused;
        all.accepted += c.accepted;
        all.other += c.other;
        all.firstUnexpected ??= c.firstUnexpected;
      }
      process.stdout.write(
        `two edges: ${all.sent} cross-edge replays, ${all.refused} refused (replayed) (A->B ${cross['A->B'].refused}/${cross['A->B'].sent}, B->A ${cross['B->A'].refused}/${cross['B->A'].sent}; ${all.accepted} accepted, ${all.other} other)\n`,
      );
      if (!allRefused(all)) throw new Error(`two edges: not every cross-edge replay was refused as a replay (${countsText(all)})`);
    } finally {
      for (const e of Object.values(edges)) e.agent.destroy();
    }
    process.stdout.write(`total time ${((Date.now() - started) / 1000).toFixed(0)} s\n`);
    if (PROFILE_DIR) process.stdout.write(`CPU profiles of the services: ${PROFILE_DIR}/<service>/*.cpuprofile (the second edge's in edge-2)\n`);
  } finally {
    await natsAdmin.close().catch(() => undefined);
    await mesh.stop();
  }
}

process.on('SIGINT', () => void processes.stopAll().then(() => process.exit(130)));
main().then(
  () => process.exit(0),
  async (err: unknown) => {
    process.stderr.write(`bench: ${err instanceof Error ? err.message : String(err)}\n`);
    await processes.stopAll();
    process.exit(1);
  },
);
