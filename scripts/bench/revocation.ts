/**
 * `npm run bench:revocation`: how long a revocation takes to be enforced at every edge, on the
 * mesh as it is deployed (process-mesh.ts): a private nats-server with the deployment's NATS
 * configuration, a fresh PKI, and every service as its own process, plus a second authentication
 * process and a second edge process behind it (AUTHENTICATION_ADDR), so each edge has its own
 * authentication replica. The processes are not pinned to cores: this measures latency, and the
 * operating system spreads them over the machine as it would in a deployment.
 *
 * For each of N revocations (default 100): a fresh access token is used once at both edges (so
 * both hold a cached, valid verification), then the operator revokes its jti over the mesh (its
 * own mTLS identity, the first authentication replica), and from the moment the revocation call
 * starts, each edge is asked again and again (signed T8 requests) until it refuses (401). The
 * time to the first refusal is measured per edge; the resolution is one request round trip.
 * Each edge also logs the moment it enforced the revocation ("revocation enforced", at info, its
 * clock in ms): from then on it refuses the token, so call start to that line is the time to
 * refusal without the polling's round trips. Prints p50/p90/p99/max of both, per edge and over
 * both, and of the revocation call itself (signed, published and acknowledged by JetStream before
 * it returns).
 *
 * Options: `--count=N` (revocations, default 100), `--production` (the services from the
 * production build, scripts/build.ts, with plain node instead of tsx).
 */
import { readFileSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { createInterface } from 'node:readline';
import { performance } from 'node:perf_hooks';
import { RevocationKind } from '@aese/protos/authentication/v1';
import { freePort } from '@aese/testing';
import { MONITORING_EVENT, newSigningKey, simulatedUe, T8_ISSUER, T8Client } from '../../test/support/t8-client.ts';
import type { T8As } from '../../test/support/t8-client.ts';
import { BenchProcesses, grantApis, onboardAs, operatorAuthentication, startProcessMesh, untilServing } from './process-mesh.ts';

const COUNT = Number(process.argv.find(a => /^--count=\d+$/.test(a))?.split('=')[1] ?? 100);
const PRODUCTION = process.argv.includes('--production');
const TRUST_DOMAIN = 'bench.local';
const SCS_AS_ID = 'bench-revocation';
const ME = '/3gpp-monitoring-event/v1';
/** How long one revocation may take to be enforced at an edge before the run fails. */
const POLL_LIMIT_MS = 5_000;
/** How long a freshly started edge may take to serve its first request. */
const EDGE_READY_MS = 60_000;
/** The whole run, start-up and build included: past this everything is stopped and the run fails. */
const RUN_LIMIT_MS = 300_000 + COUNT * 2 * POLL_LIMIT_MS;

const processes = new BenchProcesses();
const say = (line: string): void => void process.stdout.write(`bench | ${line}\n`);

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

function summary(name: string, samples: number[]): string {
  const s = [...samples].sort((a, b) => a - b);
  const f = (x: number) => `${x.toFixed(1)} ms`;
  return `${name.padEnd(10)} n=${s.length}  p50 ${f(percentile(s, 50))}  p90 ${f(percentile(s, 90))}  p99 ${f(percentile(s, 99))}  max ${f(s[s.length - 1])}`;
}

/** The `jti` claim of a JWT (read, not verified: the bench issued it). */
const jtiOf = (token: string): string => (JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString()) as { jti: string }).jti;

async function main(): Promise<void> {
  const started = Date.now();
  const mesh = await startProcessMesh({
    processes,
    trustDomain: TRUST_DOMAIN,
    production: PRODUCTION,
    // One token per revocation: the OAuth endpoint's per-AS limit is lifted like the T8 one.
    env: () => ({
      AESE_ISSUER: T8_ISSUER,
      // Info: the edges' "revocation enforced" lines are read (the other services' output is discarded).
      LOG_LEVEL: 'info',
      SIM_TICK_MS: '0',
      EDGE_RATE_LIMIT_PER_S: '100000',
      EDGE_RATE_LIMIT_BURST: '100000',
      EDGE_OAUTH_RATE_LIMIT_PER_S: '100000',
      EDGE_OAUTH_RATE_LIMIT_BURST: '100000',
    }),
    say,
  });
  const closers: (() => Promise<void>)[] = [];
  try {
    for (const service of ['crypto', 'authentication', 'authorization', 'replay-guard', 'capability-exposure'] as const) await untilServing(mesh, service, mesh.ports[service]);
    const auth2Port = await freePort();
    await mesh.startService('authentication', auth2Port, 'authentication-2');
    await untilServing(mesh, 'authentication', auth2Port);
    const edge2Port = await freePort();
    const edge2 = await mesh.startService('edge', edge2Port, 'edge-2', { AUTHENTICATION_ADDR: `localhost:${auth2Port}` });
    const enforcedAt = [enforcementTimes(mesh.processes.get('edge')!.stdout!), enforcementTimes(edge2.stdout!)];

    const signing = newSigningKey(`${SCS_AS_ID}-sig-1`);
    const as: T8As = { ...(await onboardAs(mesh, SCS_AS_ID, [MONITORING_EVENT], signing.publicJwk)), signing };
    await grantApis(mesh, SCS_AS_ID, {
      [MONITORING_EVENT]: { operations: ['read'], categories: ['location'], targets: [`externalId:${simulatedUe(1).externalId}`], anyTarget: false },
    });
    const operator = operatorAuthentication(mesh);
    closers.push(async () => operator.close());
    const caPem = readFileSync(mesh.layout.t8Ca.cert, 'utf8');
    const clients = [mesh.ports.edge, edge2Port].map(port => new T8Client(as, port, caPem));
    closers.push(async () => {
      for (const c of clients) await c.close();
    });

    const path = `${ME}/${SCS_AS_ID}/subscriptions`;
    const status = async (c: T8Client, token: string) => (await c.call({ method: 'GET', path, token })).reply.status;
    /** A fresh token from the first edge's token endpoint (tls_client_auth). */
    const freshToken = async (): Promise<string> => {
      const reply = await clients[0].postForm('/oauth2/token', { grant_type: 'client_credentials', client_id: SCS_AS_ID, scope: MONITORING_EVENT });
      if (reply.status !== 200) throw new Error(`token request failed: ${reply.status} ${reply.text.slice(0, 200)}`);
      return (JSON.parse(reply.text) as { access_token: string }).access_token;
    };
    // The edges listen before they can serve (feeds, keys): wait for each one's first 200.
    const deadline = Date.now() + EDGE_READY_MS;
    for (const [e, c] of clients.entries()) {
      for (;;) {
        const answer = await freshToken()
          .then(token => status(c, token))
          .catch((err: unknown) => String(err));
        if (answer === 200) break;
        if (Date.now() > deadline) throw new Error(`edge ${e + 1} does not serve: ${answer}`);
        await new Promise(r => setTimeout(r, 250));
      }
    }
    say(`setup done in ${((Date.now() - started) / 1000).toFixed(1)} s; ${COUNT} revocations`);

    const perEdge: number[][] = [[], []];
    /** Call start to each edge's own "revocation enforced" line. */
    const enforcedPerEdge: number[][] = [[], []];
    /** How long each revocation call took to return. */
    const calls: number[] = [];
    for (let i = 0; i < COUNT; i++) {
      const token = await freshToken();
      for (const c of clients) if ((await status(c, token)) !== 200) throw new Error('a fresh token was refused before its revocation');
      const jti = jtiOf(token);
      const t0 = performance.now();
      const t0Epoch = Date.now();
      const revoked = operator.revoke({ kind: RevocationKind.REVOCATION_KIND_TOKEN, scsAsId: '', certificateThumbprint: '', jti, reason: 'bench' }).then(() => {
        calls.push(performance.now() - t0);
      });
      await Promise.all(
        clients.map(async (c, e) => {
          for (;;) {
            const s = await status(c, token);
            if (s === 401) break;
            if (s !== 200) throw new Error(`unexpected status ${s}`);
            if (performance.now() - t0 > POLL_LIMIT_MS) throw new Error(`revocation not enforced within ${POLL_LIMIT_MS / 1000} s`);
          }
          perEdge[e].push(performance.now() - t0);
        }),
      );
      await revoked;
      for (const [e, times] of enforcedAt.entries()) enforcedPerEdge[e].push((await times.next(t0Epoch)) - t0Epoch);
    }
    const lines = [
      `revocation to refusal, ${COUNT} token revocations, 2 edges (each behind its own authentication replica), every service its own process (${PRODUCTION ? 'production build, plain node' : 'through tsx'}):`,
      summary('edge 1', perEdge[0]),
      summary('edge 2', perEdge[1]),
      summary('all edges', [...perEdge[0], ...perEdge[1]]),
      '(resolution: one signed T8 request round trip)',
      "revocation call to enforcement, from each edge's own log line (resolution: 1 ms):",
      summary('edge 1', enforcedPerEdge[0]),
      summary('edge 2', enforcedPerEdge[1]),
      summary('all edges', [...enforcedPerEdge[0], ...enforcedPerEdge[1]]),
      summary('the call', calls),
      `(total run ${((Date.now() - started) / 1000).toFixed(0)} s)`,
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
  } finally {
    for (const close of closers.reverse()) await close().catch(() => undefined);
    await mesh.stop();
  }
}

/** How long the bench waits for an edge's log line after that edge refused. */
const LOG_LINE_WAIT_MS = 2_000;

/**
 * The times (ms since the epoch, the edge's clock) of an edge's "revocation enforced" log lines,
 * taken in order: revocations run one at a time, so the first line at or after a call's start is
 * that revocation's.
 */
function enforcementTimes(stdout: Readable): { next(notBeforeMs: number): Promise<number> } {
  const times: number[] = [];
  createInterface({ input: stdout }).on('line', line => {
    if (!line.includes('"revocation enforced"')) return;
    const time = (JSON.parse(line) as { time?: unknown }).time;
    if (typeof time === 'number') times.push(time);
  });
  return {
    async next(notBeforeMs) {
      const until = Date.now() + LOG_LINE_WAIT_MS;
      for (;;) {
        while (times.length > 0 && times[0] < notBeforeMs) times.shift();
        if (times.length > 0) return times.shift()!;
        if (Date.now() > until) throw new Error('an edge logged no "revocation enforced" line for a revocation it enforced');
        await new Promise(r => setTimeout(r, 10));
      }
    },
  };
}

const runLimit = setTimeout(() => {
  process.stderr.write(`bench:revocation failed: not done within ${RUN_LIMIT_MS / 1000} s\n`);
  void processes.stopAll().then(() => process.exit(1));
}, RUN_LIMIT_MS);
runLimit.unref();
process.on('SIGINT', () => void processes.stopAll().then(() => process.exit(130)));
main().then(
  () => process.exit(0),
  async (err: unknown) => {
    process.stderr.write(`bench:revocation failed: ${err instanceof Error ? err.message : String(err)}\n`);
    await processes.stopAll();
    process.exit(1);
  },
);
