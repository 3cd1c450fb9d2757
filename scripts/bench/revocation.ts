/**
 * `npm run bench:revocation`: how long a revocation takes to be enforced at every edge.
 *
 * One mesh (NATS, PKI, every service) with two edge replicas, each behind its own authentication
 * replica. For each of N revocations (default 100): a fresh access token is used once at both
 * edges (so both hold a cached, valid verification), then the operator revokes its jti, and from
 * the moment the revocation call starts, each edge is asked again and again (signed T8 requests)
 * until it refuses. The time to the first refusal is measured per edge; the resolution is one
 * request round trip. Prints p50/p90/p99/max per edge and over both, and of the revocation call
 * itself (signed, published and acknowledged by JetStream before it returns).
 */
import { performance } from 'node:perf_hooks';
import { Writable } from 'node:stream';
import { startAuthenticationService } from '@aese/authentication-service';
import { startEdgeService } from '@aese/edge-service';
import { createLogger } from '@aese/logger';
import { RevocationKind } from '@aese/protos/authentication/v1';
import { operatorAuthClient } from '../../test/support/as-client.ts';
import { startTestMesh } from '../../test/support/mesh.ts';
import { grantAccess, MONITORING_EVENT, onboardT8As, simulatedUe, T8_ISSUER, T8Client } from '../../test/support/t8-client.ts';

const COUNT = Number(process.argv.find(a => /^--count=\d+$/.test(a))?.split('=')[1] ?? 100);
const POLL_LIMIT_MS = 5_000;
const ME = '/3gpp-monitoring-event/v1';

const quiet = () => createLogger({ service: 'bench', level: 'silent', destination: new Writable({ write: (_c, _e, cb) => cb() }) });

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

function summary(name: string, samples: number[]): string {
  const s = [...samples].sort((a, b) => a - b);
  const f = (x: number) => `${x.toFixed(1)} ms`;
  return `${name.padEnd(10)} n=${s.length}  p50 ${f(percentile(s, 50))}  p90 ${f(percentile(s, 90))}  p99 ${f(percentile(s, 99))}  max ${f(s[s.length - 1])}`;
}

async function main(): Promise<void> {
  const started = Date.now();
  const mesh = await startTestMesh({
    edge: startEdgeService,
    // One token per revocation: the OAuth endpoint's per-AS limit is lifted like the T8 one.
    extraEnv: {
      AESE_ISSUER: T8_ISSUER,
      SIM_TICK_MS: '0',
      EDGE_RATE_LIMIT_PER_S: '100000',
      EDGE_RATE_LIMIT_BURST: '100000',
      EDGE_OAUTH_RATE_LIMIT_PER_S: '100000',
      EDGE_OAUTH_RATE_LIMIT_BURST: '100000',
      LOG_LEVEL: 'warn',
    },
  });
  const stops: (() => Promise<void>)[] = [];
  try {
    const auth2 = await startAuthenticationService({ ...mesh.env, PORT: '0' }, quiet());
    await auth2.whenReady;
    stops.push(() => auth2.stop());
    const edge2 = await startEdgeService({ ...mesh.env, PORT: '0', AUTHENTICATION_ADDR: `localhost:${auth2.port}` }, quiet());
    await edge2.whenReady;
    stops.push(() => edge2.stop());
    const operator = operatorAuthClient(mesh);
    stops.push(async () => operator.close());
    const as = await onboardT8As(mesh, operator, 'bench-revocation', { scopes: [MONITORING_EVENT] });
    await grantAccess(mesh, {
      'bench-revocation': {
        apis: { [MONITORING_EVENT]: { operations: ['read'], categories: ['location'], targets: [`externalId:${simulatedUe(1).externalId}`], anyTarget: false } },
      },
    });
    const clients = [mesh.ports['edge'], edge2.port].map(p => T8Client.forMesh(mesh, as, p));
    stops.push(async () => {
      for (const c of clients) await c.close();
    });
    const path = `${ME}/${as.scsAsId}/subscriptions`;
    const status = async (c: T8Client) => (await c.call({ method: 'GET', path })).reply.status;
    const perEdge: number[][] = [[], []];
    /** How long each revocation call took to return. */
    const calls: number[] = [];
    for (let i = 0; i < COUNT; i++) {
      const tokens = clients.map(c => (c as unknown as { tokens: Map<string, string> }).tokens);
      tokens[0].clear();
      const token = await clients[0].token();
      tokens[1].set(MONITORING_EVENT, token);
      for (const c of clients) if ((await status(c)) !== 200) throw new Error('a fresh token was refused before its revocation');
      const jti = (JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString()) as { jti: string }).jti;
      const t0 = performance.now();
      const revoked = operator.revoke({ kind: RevocationKind.REVOCATION_KIND_TOKEN, scsAsId: '', certificateThumbprint: '', jti, reason: 'bench' }).then(() => {
        calls.push(performance.now() - t0);
      });
      await Promise.all(
        clients.map(async (c, e) => {
          for (;;) {
            const s = await status(c);
            if (s === 401) break;
            if (s !== 200) throw new Error(`unexpected status ${s}`);
            if (performance.now() - t0 > POLL_LIMIT_MS) throw new Error('revocation not enforced within 5 s');
          }
          perEdge[e].push(performance.now() - t0);
        }),
      );
      await revoked;
    }
    const lines = [
      `revocation to refusal, ${COUNT} token revocations, 2 edges (each behind its own authentication replica):`,
      summary('edge 1', perEdge[0]),
      summary('edge 2', perEdge[1]),
      summary('all edges', [...perEdge[0], ...perEdge[1]]),
      summary('the call', calls),
      `(resolution: one signed T8 request round trip; total run ${((Date.now() - started) / 1000).toFixed(0)} s)`,
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
  } finally {
    for (const s of stops.reverse()) await s().catch(() => undefined);
    await mesh.stop();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`bench:revocation failed: ${(err as Error).message}\n`);
    process.exit(1);
  },
);
