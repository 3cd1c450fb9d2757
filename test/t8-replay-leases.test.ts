/**
 * The edge's own replay decisions (services/edge/src/replay-decisions.ts): an edge decides the
 * replay window of an AS only while it holds that AS's lease (KV bucket aese_replay_leases, one key
 * per AS), from the shared durable nonce stream; for any other AS it asks replay-guard, so a
 * non-owner never decides alone. A stopped holder gives its leases back and another edge takes
 * over after reading the AS's history.
 *
 * The test edges reach replay-guard through a TCP link the test can cut: cut, the service is
 * unreachable to them exactly as if it were stopped, while the rest of the mesh keeps running.
 */
import { Writable } from 'node:stream';
import { expect } from 'chai';
import type { KV, NatsConnection } from 'nats';
import { KV_BUCKETS } from '@aese/nats';
import { startEdgeService } from '@aese/edge-service';
import type { MeshClient } from '@aese/grpc-client';
import { createLogger } from '@aese/logger';
import type { AuthenticationServiceClient } from '@aese/protos/authentication/v1';
import { eventually, eventuallyValue, startTcpGate } from '@aese/testing';
import type { TcpGate } from '@aese/testing';
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
const LEASES_BUCKET = KV_BUCKETS.replayLeases;
/** Short leases so a takeover takes seconds; the mesh's own edge (which creates the bucket) uses it too. */
const LEASE_MS = '1500';
/** A '.' in the id: its lease key is the AS token, with '=' for '.'. */
const AS_ID = 'as.lease-a';
const AS_KEY = 'as=lease-a';
const OTHER_AS_ID = 'as-lease-b';

interface TestEdge {
  readonly port: number;
  /** This edge's own log lines. */
  readonly logs: string[];
  stop(): Promise<void>;
}

describe('T8 replay decisions in the edge: per-AS leases, takeover, a non-owner never decides alone', function () {
  this.timeout(30_000);
  let mesh: TestMesh;
  let operator: MeshClient<AuthenticationServiceClient>;
  let audit: AuditReader;
  let admin: NatsConnection;
  let leases: KV;
  let link: TcpGate;
  let as: T8As;
  let other: T8As;
  const edges: TestEdge[] = [];
  const clients: T8Client[] = [];
  /** Edges A and B, their clients for the AS and A's lease holder id, shared by the cases (they run in order). */
  let edgeA: TestEdge;
  let edgeB: TestEdge;
  let ca: T8Client;
  let cb: T8Client;
  let holderA: string;

  const sub = (): Record<string, unknown> => locationSubscription(UE1.externalId);
  const collection = monitoringCollection;
  const count = monitoringSubscriptionCount;
  const client = (t8As: T8As, edge: TestEdge): T8Client => {
    const c = T8Client.forMesh(mesh, t8As, edge.port);
    clients.push(c);
    return c;
  };
  /** Sends fresh reads until one is served: a gRPC channel that saw replay-guard down reconnects with backoff. */
  const servedAgain = async (c: T8Client): Promise<number> =>
    eventuallyValue(
      async () => {
        const { reply } = await c.call({ method: 'GET', path: collection(c) });
        expect(reply.status, reply.text).to.be.oneOf([200, 503]);
        return reply.status === 200 ? reply.json<unknown[]>().length : undefined;
      },
      8_000,
      'a read served through replay-guard',
    );
  /** The lease key's holder now, undefined when no one holds it. */
  const holderOf = async (key: string): Promise<string | undefined> => {
    const entry = await leases.get(key);
    if (!entry || entry.operation !== 'PUT') return undefined;
    return (JSON.parse(entry.string()) as { holder: string }).holder;
  };
  const tookOver = (edge: TestEdge, scsAsId: string): boolean =>
    edge.logs.some(l => l.includes('"replay window of the AS taken over by this edge"') && l.includes(`"scsAsId":"${scsAsId}"`));
  /** An edge replica whose replay-guard is reached through the link, logging to its own lines and the mesh's. */
  const startEdge = async (extra: Record<string, string> = {}): Promise<TestEdge> => {
    const own: string[] = [];
    const logger = createLogger({
      service: 'edge',
      level: 'debug',
      destination: new Writable({
        write(chunk: Buffer, _enc, cb) {
          const lines = chunk
            .toString('utf8')
            .split('\n')
            .filter(l => l.length > 0);
          own.push(...lines);
          mesh.logs.push(...lines);
          cb();
        },
      }),
    });
    const edge = await startEdgeService({ ...mesh.env, PORT: '0', REPLAY_GUARD_ADDR: link.address, EDGE_REPLAY_DEADLINE_MS: '1000', ...extra }, logger);
    await edge.whenReady;
    const started = { port: edge.port, logs: own, stop: () => edge.stop() };
    edges.push(started);
    return started;
  };

  before(async function () {
    this.timeout(90_000);
    mesh = await startTestMesh({
      edge: startEdgeService,
      extraEnv: { AESE_ISSUER: T8_ISSUER, SIM_TICK_MS: '0', NOTIFICATION_DESTINATION_ALLOWLIST: '127.0.0.1:9443', EDGE_REPLAY_LEASE_MS: LEASE_MS },
    });
    operator = operatorAuthClient(mesh);
    audit = await AuditReader.open(mesh);
    admin = await mesh.natsConnect('nats-admin');
    // The mesh's edge created the bucket at start; bind to it, never create it.
    leases = await admin.jetstream().views.kv(LEASES_BUCKET, { bindOnly: true });
    expect((await leases.status()).ttl, 'a lease key lives the lease time').to.equal(Number(LEASE_MS));
    link = await startTcpGate(mesh.ports['replay-guard']);
    as = await onboardT8As(mesh, operator, AS_ID, { scopes: [MONITORING_EVENT] });
    other = await onboardT8As(mesh, operator, OTHER_AS_ID, { scopes: [MONITORING_EVENT] });
    const grant = {
      apis: { [MONITORING_EVENT]: { operations: ['create', 'read', 'delete'], categories: ['location'], targets: [`externalId:${UE1.externalId}`], anyTarget: false } },
    };
    await grantAccess(mesh, { [AS_ID]: grant, [OTHER_AS_ID]: grant });
  });

  after(async function () {
    this.timeout(30_000);
    for (const c of clients) await c.close();
    for (const e of edges) await e.stop();
    await link?.dispose();
    await admin?.close();
    await audit?.close();
    operator?.close();
    await mesh?.stop();
  });

  afterEach(() => link?.open());

  it('the edge that holds an AS lease decides alone while replay-guard is down; another edge refuses with 503 and executes nothing', async () => {
    edgeA = await startEdge();
    edgeB = await startEdge();
    ca = client(as, edgeA);
    cb = client(as, edgeB);
    expect(await holderOf(AS_KEY), 'no one holds the lease before a request').to.equal(undefined);

    // The first requests go to replay-guard and make edge A take the lease in the background.
    const before = await count(ca);
    holderA = await eventuallyValue(
      async () => {
        await count(ca);
        return tookOver(edgeA, AS_ID) ? holderOf(AS_KEY) : undefined;
      },
      5_000,
      'edge A holding the lease',
    );
    expect(holderA).to.match(/^edge-[0-9a-f-]{36}$/);
    expect(tookOver(edgeB, AS_ID)).to.equal(false);

    link.shut();
    // Edge A: fresh requests are served, their exact replays refused, from the shared stream alone.
    const invoked = invokeCount(mesh, AS_ID);
    const first = await ca.call({ method: 'POST', path: collection(ca), body: sub() });
    expect(first.reply.status, first.reply.text).to.equal(201);
    expect(invokeCount(mesh, AS_ID)).to.equal(invoked + 1);
    const replay = retraced(first.prepared);
    await expectEdgeDenial(ca, audit, { prepared: replay, reply: await ca.send(replay) }, { status: 401, cause: 'REPLAYED_REQUEST', reason: 'REPLAYED' });
    const read = await ca.call({ method: 'GET', path: collection(ca) });
    expect(read.reply.status, read.reply.text).to.equal(200);
    expect(read.reply.json<unknown[]>().length).to.equal(before + 1);
    const readAgain = retraced(read.prepared);
    await expectEdgeDenial(ca, audit, { prepared: readAgain, reply: await ca.send(readAgain) }, { status: 401, cause: 'REPLAYED_REQUEST', reason: 'REPLAYED' });
    expect(invokeCount(mesh, AS_ID), 'refused replays executed nothing').to.equal(invoked + 2);

    // Edge B does not hold the lease: it must ask replay-guard, which does not answer.
    const invokedBefore = invokeCount(mesh, AS_ID);
    const refused = await cb.call({ method: 'POST', path: collection(cb), body: sub() });
    await expectEdgeDenial(cb, audit, refused, { status: 503, cause: 'SERVICE_UNAVAILABLE', reason: 'REPLAY_GUARD_UNAVAILABLE' });
    const refusedRead = await cb.call({ method: 'GET', path: collection(cb) });
    await expectEdgeDenial(cb, audit, refusedRead, { status: 503, cause: 'SERVICE_UNAVAILABLE', reason: 'REPLAY_GUARD_UNAVAILABLE' });
    expect(invokeCount(mesh, AS_ID), 'edge B executed nothing').to.equal(invokedBefore);
    expect(await holderOf(AS_KEY), 'edge B did not take a held lease').to.equal(holderA);
    expect(tookOver(edgeB, AS_ID)).to.equal(false);

    // Control: edge B recorded nothing, so the very request it refused is fresh to the owner.
    const same = await ca.send(retraced(refused.prepared));
    expect(same.status, same.text).to.equal(201);
    expect(invokeCount(mesh, AS_ID)).to.equal(invokedBefore + 1);
    expect(await count(ca)).to.equal(before + 2);

    // With replay-guard back, edge B answers through it (and the lease stays with A).
    link.open();
    expect(await servedAgain(cb)).to.equal(before + 2);
    expect(await holderOf(AS_KEY)).to.equal(holderA);
  });

  it('a stopped holder gives its lease back; the edge that takes over reads the history first: a replay of what the old holder accepted is refused', async () => {
    const before = await count(ca);
    const invoked = invokeCount(mesh, AS_ID);
    const r = await ca.call({ method: 'POST', path: collection(ca), body: sub() });
    expect(r.reply.status, r.reply.text).to.equal(201);
    expect(invokeCount(mesh, AS_ID)).to.equal(invoked + 1);
    // A holds the lease (or took it again if it had gone idle: the same holder id).
    await eventually(async () => (await holderOf(AS_KEY)) === holderA, 3_000, 'edge A holding the lease');

    clients.splice(clients.indexOf(ca), 1);
    await ca.close();
    await edgeA.stop();
    expect(await holderOf(AS_KEY), 'the lease was given back on stop').to.equal(undefined);

    // Fresh requests through B (each asks replay-guard, and B tries to take the lease) until B holds it.
    const holderB = await eventuallyValue(
      async () => {
        await servedAgain(cb);
        return tookOver(edgeB, AS_ID) ? holderOf(AS_KEY) : undefined;
      },
      5_000,
      'edge B holding the lease',
    );
    expect(holderB).to.match(/^edge-[0-9a-f-]{36}$/);
    expect(holderB).to.not.equal(holderA);

    // B now decides alone: with replay-guard down, R's replay is refused from the history it read.
    link.shut();
    const atReplay = invokeCount(mesh, AS_ID);
    const replay = retraced(r.prepared);
    await expectEdgeDenial(cb, audit, { prepared: replay, reply: await cb.send(replay) }, { status: 401, cause: 'REPLAYED_REQUEST', reason: 'REPLAYED' });
    expect(invokeCount(mesh, AS_ID), 'the replay executed nothing').to.equal(atReplay);
    expect(await count(cb), 'R was executed once').to.equal(before + 1);
    const fresh = await cb.call({ method: 'POST', path: collection(cb), body: sub() });
    expect(fresh.reply.status, fresh.reply.text).to.equal(201);
    const freshAgain = retraced(fresh.prepared);
    await expectEdgeDenial(cb, audit, { prepared: freshAgain, reply: await cb.send(freshAgain) }, { status: 401, cause: 'REPLAYED_REQUEST', reason: 'REPLAYED' });
    // The read above and the fresh POST: two invocations, none for the two replays.
    expect(invokeCount(mesh, AS_ID)).to.equal(atReplay + 2);
    expect(await count(cb)).to.equal(before + 2);
    expect(await holderOf(AS_KEY)).to.equal(holderB);
  });

  it('EDGE_REPLAY_DECISIONS=replay-guard: the edge takes no lease and, with replay-guard down, decides nothing', async () => {
    const edgeC = await startEdge({ EDGE_REPLAY_DECISIONS: 'replay-guard' });
    const cc = client(other, edgeC);
    const before = await count(cc);
    for (let i = 0; i < 3; i++) expect(await count(cc)).to.equal(before);
    const served = await cc.call({ method: 'POST', path: collection(cc), body: sub() });
    expect(served.reply.status, served.reply.text).to.equal(201);
    const replay = retraced(served.prepared);
    await expectEdgeDenial(cc, audit, { prepared: replay, reply: await cc.send(replay) }, { status: 401, cause: 'REPLAYED_REQUEST', reason: 'REPLAYED' });
    // A lease taken in the background would have shown up within a few hundred ms.
    await new Promise(r => setTimeout(r, 500));
    expect(await holderOf(OTHER_AS_ID)).to.equal(undefined);
    expect(tookOver(edgeC, OTHER_AS_ID)).to.equal(false);

    link.shut();
    const invoked = invokeCount(mesh, OTHER_AS_ID);
    const refused = await cc.call({ method: 'POST', path: collection(cc), body: sub() });
    await expectEdgeDenial(cc, audit, refused, { status: 503, cause: 'SERVICE_UNAVAILABLE', reason: 'REPLAY_GUARD_UNAVAILABLE' });
    expect(invokeCount(mesh, OTHER_AS_ID)).to.equal(invoked);
    link.open();
    // The very request refused while replay-guard was down is fresh once it is back.
    await eventually(
      async () => {
        const reply = await cc.send(retraced(refused.prepared));
        expect(reply.status, reply.text).to.be.oneOf([201, 503]);
        return reply.status === 201;
      },
      8_000,
      'the refused request served once replay-guard is back',
    );
    expect(invokeCount(mesh, OTHER_AS_ID)).to.equal(invoked + 1);
    expect(await count(cc)).to.equal(before + 2);
  });
});
