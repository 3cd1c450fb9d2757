/**
 * SECURITY-TESTS.md "Replay" 47, 48, 50, 51, 52, 55: a signed request is executed once, whatever
 * edge replica it reaches and across a restart of the replay guard; stale and future signatures
 * are refused before the guard is asked; when the guard cannot decide (down, or too slow) the
 * edge answers 503 and executes nothing; nonces are namespaced per AS.
 */
import { createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import { Writable } from 'node:stream';
import { expect } from 'chai';
import { startEdgeService } from '@aese/edge-service';
import type { MeshClient } from '@aese/grpc-client';
import { createLogger } from '@aese/logger';
import type { AuthenticationServiceClient } from '@aese/protos/authentication/v1';
import { freePort } from '@aese/testing';
import { operatorAuthClient } from './support/as-client.ts';
import { startTestMesh } from './support/mesh.ts';
import type { TestMesh } from './support/mesh.ts';
import {
  AuditReader,
  expectEdgeDenial,
  grantAccess,
  invokeCount,
  locationSubscription,
  MONITORING_EVENT,
  monitoringCollection,
  monitoringSubscriptionCount,
  onboardT8As,
  retraced,
  simulatedUe,
  T8_ISSUER,
  T8Client,
} from './support/t8-client.ts';
import type { T8As } from './support/t8-client.ts';

const UE1 = simulatedUe(1);

describe('T8 security catalogue: replay (SECURITY-TESTS 47, 48, 50, 51, 52, 55)', function () {
  this.timeout(40_000);
  let mesh: TestMesh;
  let operator: MeshClient<AuthenticationServiceClient>;
  let audit: AuditReader;
  let a: T8As;
  let b: T8As;
  let ca: T8Client;
  let cb: T8Client;
  const edges: { port: number; stop(): Promise<void> }[] = [];
  let blackHole: Server | undefined;
  const held: Socket[] = [];

  const sub = (): Record<string, unknown> => locationSubscription(UE1.externalId);
  const collection = monitoringCollection;
  const count = monitoringSubscriptionCount;
  /** Another edge replica on the same mesh, logging into the mesh's log. */
  const startEdge = async (extra: Record<string, string> = {}): Promise<{ port: number; stop(): Promise<void> }> => {
    const logger = createLogger({
      service: 'edge',
      level: 'debug',
      destination: new Writable({
        write(chunk: Buffer, _enc, cb) {
          mesh.logs.push(
            ...chunk
              .toString('utf8')
              .split('\n')
              .filter(l => l.length > 0),
          );
          cb();
        },
      }),
    });
    const edge = await startEdgeService({ ...mesh.env, PORT: '0', ...extra }, logger);
    await edge.whenReady;
    edges.push(edge);
    return edge;
  };

  before(async function () {
    this.timeout(90_000);
    mesh = await startTestMesh({
      edge: startEdgeService,
      extraEnv: { AESE_ISSUER: T8_ISSUER, SIM_TICK_MS: '0', NOTIFICATION_DESTINATION_ALLOWLIST: '127.0.0.1:9443' },
    });
    operator = operatorAuthClient(mesh);
    audit = await AuditReader.open(mesh);
    a = await onboardT8As(mesh, operator, 'as-replay-a', { scopes: [MONITORING_EVENT] });
    b = await onboardT8As(mesh, operator, 'as-replay-b', { scopes: [MONITORING_EVENT] });
    const grant = {
      apis: { [MONITORING_EVENT]: { operations: ['create', 'read', 'delete'], categories: ['location'], targets: [`externalId:${UE1.externalId}`], anyTarget: false } },
    };
    await grantAccess(mesh, { 'as-replay-a': grant, 'as-replay-b': grant });
    ca = T8Client.forMesh(mesh, a);
    cb = T8Client.forMesh(mesh, b);
  });

  after(async function () {
    this.timeout(30_000);
    await ca?.close();
    await cb?.close();
    for (const e of edges) await e.stop();
    for (const s of held) s.destroy();
    blackHole?.close();
    await audit?.close();
    operator?.close();
    await mesh?.stop();
  });

  it('47. an exact replay of a signed POST is refused (401, audited) and the subscription exists once', async () => {
    const before = await count(ca);
    const first = await ca.call({ method: 'POST', path: collection(ca), body: sub() });
    expect(first.reply.status, first.reply.text).to.equal(201);
    const invoked = invokeCount(mesh, 'as-replay-a');
    const replay = retraced(first.prepared);
    await expectEdgeDenial(ca, audit, { prepared: replay, reply: await ca.send(replay) }, { status: 401, cause: 'REPLAYED_REQUEST', reason: 'REPLAYED' });
    expect(invokeCount(mesh, 'as-replay-a')).to.equal(invoked);
    expect(await count(ca)).to.equal(before + 1);
  });

  it('48. created older than the window or beyond the skew is refused before the replay guard (the nonce stays unused); inside both it succeeds', async () => {
    const now = Math.floor(Date.now() / 1000);
    for (const [created, reason] of [
      [now - 75, 'SIGNATURE_CREATED_TOO_OLD'],
      [now + 15, 'SIGNATURE_CREATED_IN_FUTURE'],
    ] as const) {
      const out = await ca.call({ method: 'GET', path: collection(ca), sign: { created } });
      await expectEdgeDenial(ca, audit, out, { status: 401, cause: 'STALE_REQUEST', reason });
      const again = await ca.call({ method: 'GET', path: collection(ca), sign: { nonce: out.prepared.nonce! } });
      expect(again.reply.status, 'the refused nonce was recorded').to.equal(200);
    }
    for (const created of [now - 50, now + 5]) {
      expect((await ca.call({ method: 'GET', path: collection(ca), sign: { created } })).reply.status).to.equal(200);
    }
  });

  it('50. a replay sent to a second edge replica is refused: the guard is shared; a fresh request there succeeds', async () => {
    const second = await startEdge();
    const other = T8Client.forMesh(mesh, a, second.port);
    try {
      const before = await count(ca);
      const first = await ca.call({ method: 'POST', path: collection(ca), body: sub() });
      expect(first.reply.status).to.equal(201);
      const replay = retraced(first.prepared);
      await expectEdgeDenial(other, audit, { prepared: replay, reply: await other.send(replay) }, { status: 401, cause: 'REPLAYED_REQUEST', reason: 'REPLAYED' });
      expect(await count(ca)).to.equal(before + 1);
      expect((await other.call({ method: 'GET', path: collection(other) })).reply.status).to.equal(200);
    } finally {
      await other.close();
    }
  });

  it('51. a replay after the replay guard restarts is still refused; fresh requests succeed after the restart', async function () {
    this.timeout(30_000);
    const before = await count(ca);
    const first = await ca.call({ method: 'POST', path: collection(ca), body: sub() });
    expect(first.reply.status).to.equal(201);
    await mesh.restart('replay-guard');
    const replay = retraced(first.prepared);
    await expectEdgeDenial(ca, audit, { prepared: replay, reply: await ca.send(replay) }, { status: 401, cause: 'REPLAYED_REQUEST', reason: 'REPLAYED' });
    expect(await count(ca)).to.equal(before + 1);
  });

  it('52. with the replay guard down (nothing listens) or hanging (no answer), the edge answers 503 and executes nothing; the same request then succeeds where the guard answers', async () => {
    const deadPort = await freePort();
    blackHole = createServer(s => held.push(s));
    await new Promise<void>(r => blackHole!.listen(0, '127.0.0.1', () => r()));
    const hangingPort = (blackHole.address() as { port: number }).port;
    for (const address of [`localhost:${deadPort}`, `localhost:${hangingPort}`]) {
      const edge = await startEdge({ REPLAY_GUARD_ADDR: address, EDGE_REPLAY_DEADLINE_MS: '500' });
      const blind = T8Client.forMesh(mesh, a, edge.port);
      try {
        const before = await count(ca);
        const invoked = invokeCount(mesh, 'as-replay-a');
        const t0 = Date.now();
        const out = await blind.call({ method: 'POST', path: collection(blind), body: sub() });
        expect(Date.now() - t0, 'bounded by the replay deadline').to.be.below(3_000);
        await expectEdgeDenial(blind, audit, out, { status: 503, cause: 'SERVICE_UNAVAILABLE', reason: 'REPLAY_GUARD_UNAVAILABLE' });
        expect(out.reply.headers['retry-after']).to.equal('1');
        expect(invokeCount(mesh, 'as-replay-a')).to.equal(invoked);
        expect(await count(ca)).to.equal(before);
        // Control: the very same signed request through an edge whose guard answers is executed once.
        const same = await ca.send(retraced(out.prepared));
        expect(same.status, same.text).to.equal(201);
        expect(await count(ca)).to.equal(before + 1);
      } finally {
        await blind.close();
      }
    }
  });

  it('55. the same nonce from two different ASes is accepted for both (nonces are namespaced per AS)', async () => {
    const nonce = 'c2FtZS1ub25jZS1mb3ItYm90aA';
    const fromA = await ca.call({ method: 'POST', path: collection(ca), body: sub(), sign: { nonce } });
    const fromB = await cb.call({ method: 'POST', path: collection(cb), body: sub(), sign: { nonce } });
    expect(fromA.reply.status, fromA.reply.text).to.equal(201);
    expect(fromB.reply.status, fromB.reply.text).to.equal(201);
    // ... and still once per AS.
    const again = await cb.call({ method: 'GET', path: collection(cb), sign: { nonce } });
    expect(again.reply.status).to.equal(401);
  });
});
