/**
 * SECURITY-TESTS.md 8 and 53: the per-AS token bucket at the edge. A flooding AS gets 429 with
 * Retry-After before any service is called (its nonces never reach the replay guard, which
 * evicts nothing), other ASes are unaffected, and a `rate-limit` obligation from policy lowers
 * an AS's rate.
 */
import { expect } from 'chai';
import { startEdgeService } from '@aese/edge-service';
import type { MeshClient } from '@aese/grpc-client';
import type { AuthenticationServiceClient } from '@aese/protos/authentication/v1';
import { operatorAuthClient } from './support/as-client.ts';
import { startTestMesh } from './support/mesh.ts';
import type { TestMesh } from './support/mesh.ts';
import { AuditReader, expectEdgeDenial, grantAccess, invokeCount, MONITORING_EVENT, onboardT8As, retraced, simulatedUe, T8_ISSUER, T8Client } from './support/t8-client.ts';
import type { PreparedRequest, T8Reply } from './support/t8-client.ts';

const ME = '/3gpp-monitoring-event/v1';
const UE1 = simulatedUe(1);
const RATE = 2;
const BURST = 4;

const sleep = (ms: number): Promise<void> => new Promise(r => setTimeout(r, ms));

describe('T8 security catalogue: per-AS rate limit (SECURITY-TESTS 8, 53)', function () {
  this.timeout(40_000);
  let mesh: TestMesh;
  let operator: MeshClient<AuthenticationServiceClient>;
  let audit: AuditReader;
  let ca: T8Client;
  let cb: T8Client;
  let cc: T8Client;

  const get = (c: T8Client) => ({ method: 'GET', path: `${ME}/${c.as.scsAsId}/subscriptions` }) as const;
  /** Waits until the AS's bucket is full again. */
  const refill = (): Promise<void> => sleep((BURST / RATE) * 1000 + 100);
  /** Sends n prepared requests at once; `mostAdmitted` is what a bucket of BURST can admit while they are answered. */
  const flood = async (c: T8Client, n: number): Promise<{ results: { prepared: PreparedRequest; reply: T8Reply }[]; mostAdmitted: number }> => {
    const prepared = await Promise.all(Array.from({ length: n }, () => c.prepare(get(c))));
    const sentAt = performance.now();
    const replies = await Promise.all(prepared.map(p => c.send(p)));
    // A full bucket holds BURST tokens and gains RATE per second while the flood is taken in.
    const mostAdmitted = BURST + Math.floor((RATE * (performance.now() - sentAt)) / 1000);
    return { results: prepared.map((p, i) => ({ prepared: p, reply: replies[i] })), mostAdmitted };
  };

  before(async function () {
    this.timeout(90_000);
    mesh = await startTestMesh({
      edge: startEdgeService,
      extraEnv: {
        AESE_ISSUER: T8_ISSUER,
        SIM_TICK_MS: '0',
        EDGE_RATE_LIMIT_PER_S: String(RATE),
        EDGE_RATE_LIMIT_BURST: String(BURST),
        NOTIFICATION_DESTINATION_ALLOWLIST: '127.0.0.1:9443',
      },
    });
    operator = operatorAuthClient(mesh);
    audit = await AuditReader.open(mesh);
    const grant = (rateLimitPerSecond?: number) => ({
      apis: { [MONITORING_EVENT]: { operations: ['create', 'read', 'delete'], categories: ['location'], targets: [`externalId:${UE1.externalId}`], anyTarget: false } },
      ...(rateLimitPerSecond ? { rateLimitPerSecond } : {}),
    });
    const [a, b, c] = await Promise.all(['as-rate-a', 'as-rate-b', 'as-rate-c'].map(id => onboardT8As(mesh, operator, id, { scopes: [MONITORING_EVENT] })));
    await grantAccess(mesh, { 'as-rate-a': grant(), 'as-rate-b': grant(), 'as-rate-c': grant(1) });
    ca = T8Client.forMesh(mesh, a);
    cb = T8Client.forMesh(mesh, b);
    cc = T8Client.forMesh(mesh, c);
    for (const client of [ca, cb, cc]) await client.token();
  });

  after(async function () {
    this.timeout(30_000);
    for (const c of [ca, cb, cc]) await c?.close();
    await audit?.close();
    operator?.close();
    await mesh?.stop();
  });

  it('8. over its bucket an AS gets 429 + Retry-After (audited, nothing called, nonce unused); another AS is unaffected; after Retry-After it is served again', async () => {
    await refill();
    const invoked = invokeCount(mesh, 'as-rate-a');
    const { results, mostAdmitted } = await flood(ca, 10);
    const served = results.filter(r => r.reply.status === 200);
    const limited = results.filter(r => r.reply.status === 429);
    expect(served.length + limited.length).to.equal(10);
    expect(served.length).to.be.within(BURST, mostAdmitted);
    expect(limited.length).to.be.greaterThan(0);
    expect(invokeCount(mesh, 'as-rate-a') - invoked, 'only served requests reach capability-exposure').to.equal(served.length);
    for (const r of limited) {
      await expectEdgeDenial(ca, audit, r, { status: 429, cause: 'RATE_LIMIT_EXCEEDED', reason: 'RATE_LIMITED' });
      expect(Number(r.reply.headers['retry-after'])).to.be.within(1, Math.ceil(1 / RATE) + 1);
    }
    // Another AS has its own bucket.
    const other = await cb.call(get(cb));
    expect(other.reply.status).to.equal(200);
    // Control: after Retry-After, a limited request itself (its nonce unused) is served.
    await sleep(Number(limited[0].reply.headers['retry-after']) * 1000);
    const again = await ca.send(retraced(limited[0].prepared));
    expect(again.status, again.text).to.equal(200);
  });

  it('53. a nonce flood from one AS is cut at its bucket: the replay guard sees only the admitted nonces, evicts nothing, and other ASes are served throughout', async () => {
    await refill();
    const accepted = await ca.call(get(ca));
    expect(accepted.reply.status).to.equal(200);
    const invoked = invokeCount(mesh, 'as-rate-a');
    const [{ results, mostAdmitted }, otherReply] = await Promise.all([flood(ca, 60), cb.call(get(cb))]);
    const served = results.filter(r => r.reply.status === 200).length;
    expect(served).to.be.at.most(mostAdmitted);
    expect(mostAdmitted, 'the flood was taken in quickly enough to show the cut').to.be.lessThan(30);
    expect(otherReply.reply.status, 'the other AS is unaffected').to.equal(200);
    expect(invokeCount(mesh, 'as-rate-a') - invoked).to.equal(served);
    const limitedEvents = await audit.waitFor(
      e => e.service === 'edge' && e.actor === 'as-rate-a' && e.reason === 'RATE_LIMITED' && results.some(r => r.prepared.traceId === e.traceId),
      60 - served,
    );
    expect(limitedEvents.length).to.equal(60 - served);
    // No eviction: the nonce accepted before the flood is still known to the guard.
    await refill();
    const replay = retraced(accepted.prepared);
    await expectEdgeDenial(ca, audit, { prepared: replay, reply: await ca.send(replay) }, { status: 401, cause: 'REPLAYED_REQUEST', reason: 'REPLAYED' });
  });

  it('a rate-limit obligation from policy (1/s for as-rate-c) lowers that AS to its limit after the first decision; other ASes keep the configured burst', async () => {
    await refill();
    const created = await cc.call({
      method: 'POST',
      path: `${ME}/as-rate-c/subscriptions`,
      body: { externalId: UE1.externalId, notificationDestination: 'https://127.0.0.1:9443/notify', monitoringType: 'LOCATION_REPORTING', maximumNumberOfReports: 3 },
    });
    expect(created.reply.status, created.reply.text).to.equal(201);
    // The configured bucket still held BURST - 1 tokens; at 1/s the bucket holds one at most.
    const { results: next } = await flood(cc, BURST - 1);
    const limited = next.filter(r => r.reply.status === 429);
    expect(limited.length, 'at most one more request is served').to.be.at.least(BURST - 2);
    for (const r of limited) await expectEdgeDenial(cc, audit, r, { status: 429, cause: 'RATE_LIMIT_EXCEEDED', reason: 'RATE_LIMITED' });
    // Control: a second AS still has its burst of the configured limit.
    await refill();
    const { results: burst } = await flood(cb, BURST);
    expect(burst.every(r => r.reply.status === 200)).to.equal(true);
  });
});
