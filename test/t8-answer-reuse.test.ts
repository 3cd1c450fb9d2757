/**
 * Read answers given again by the edge without the hop to capability-exposure
 * (InvokeResponse.reusable, withdrawn on the Invoke stream): a repeated read still passes every
 * check of the T8 path (signature, replay, token scope, the path's AS) and is not decided or read
 * again by capability-exposure; and it is never given after the AS's own write, after a change
 * that reached capability-exposure through another edge, after a policy change, past its age
 * bound, or once the stream to capability-exposure is gone. Capability-exposure's decision count
 * tells whether a request reached it.
 */
import { expect } from 'chai';
import { startCapabilityExposureService } from '@aese/capability-exposure-service';
import type { RunningCapabilityExposure } from '@aese/capability-exposure-service';
import { startEdgeService } from '@aese/edge-service';
import type { RunningEdge } from '@aese/edge-service';
import type { MeshClient } from '@aese/grpc-client';
import { createLogger } from '@aese/logger';
import type { Logger } from '@aese/logger';
import type { HostResolver } from '@aese/net-guard';
import type { AuthenticationServiceClient } from '@aese/protos/authentication/v1';
import { simulatedUeIdentifiers } from '../services/capability-exposure/src/network/simulated-core.ts';
import { operatorAuthClient } from './support/as-client.ts';
import { startTestMesh } from './support/mesh.ts';
import type { TestMesh } from './support/mesh.ts';
import { AS_SESSION_WITH_QOS, grantAccess, MONITORING_EVENT, onboardT8As, T8_ISSUER, T8Client } from './support/t8-client.ts';
import type { RequestSpec, T8As, T8Reply } from './support/t8-client.ts';

const ME = '/3gpp-monitoring-event/v1';
const UE1 = simulatedUeIdentifiers(1);
const RECEIVER = 'https://as.example.com/notify';
/** Long enough for a test's few requests in a row, short enough to wait out once. */
const MAX_AGE_MS = 2_000;
const OPS = ['create', 'read', 'update', 'delete', 'notify'];
/** The test's DNS: the receiver's host is public. */
const resolver: HostResolver = async host => {
  if (host.endsWith('.example.com')) return [{ address: '203.0.114.10', family: 4 }];
  throw new Error('ENOTFOUND');
};

describe('T8 read answers given again without the hop: every check still made, withdrawn on every change', function () {
  this.timeout(30_000);
  let mesh: TestMesh;
  let operator: MeshClient<AuthenticationServiceClient>;
  let a: T8As;
  let b: T8As;
  let ca: T8Client;
  let ca2: T8Client;
  let cb: T8Client;
  let ce: RunningCapabilityExposure | undefined;
  let edge: RunningEdge | undefined;
  let edge2: RunningEdge | undefined;

  const grantA = (operations: readonly string[]): Promise<number> =>
    grantAccess(mesh, {
      'as-reuse-a': {
        apis: {
          [MONITORING_EVENT]: { operations: [...operations], categories: ['location'], targets: [`externalId:${UE1.externalId}`], anyTarget: false, locationGranularity: 'exact' },
        },
      },
      'as-reuse-b': {
        apis: {
          [MONITORING_EVENT]: { operations: OPS, categories: ['location'], targets: [`externalId:${UE1.externalId}`], anyTarget: false, locationGranularity: 'exact' },
        },
      },
    });
  const call = async (c: T8Client, spec: Omit<RequestSpec, 'token'>, scope = MONITORING_EVENT): Promise<T8Reply> => (await c.call({ ...spec, token: await c.token(scope) })).reply;
  /** Decisions capability-exposure made or took from its cache: one per item read it served. */
  const decisions = (): number => {
    const stats = ce!.decisionCacheStats()!;
    return stats.hits + stats.asked;
  };
  const create = async (c: T8Client, reports: number): Promise<string> => {
    const reply = await call(c, {
      method: 'POST',
      path: `${ME}/${c.as.scsAsId}/subscriptions`,
      body: { externalId: UE1.externalId, notificationDestination: RECEIVER, monitoringType: 'LOCATION_REPORTING', maximumNumberOfReports: reports },
    });
    expect(reply.status, reply.text).to.equal(201);
    return (reply.headers['location'] as string).split('/').pop()!;
  };
  const read = (c: T8Client, id: string): Promise<T8Reply> => call(c, { method: 'GET', path: `${ME}/${c.as.scsAsId}/subscriptions/${id}` });
  const reportsOf = (reply: T8Reply): unknown => {
    expect(reply.status, reply.text).to.equal(200);
    return reply.json<Record<string, unknown>>()['maximumNumberOfReports'];
  };
  /** Reads once through capability-exposure (the answer is kept), then expects the next read given again. */
  const warm = async (c: T8Client, id: string): Promise<T8Reply> => {
    const first = await read(c, id);
    expect(first.status, first.text).to.equal(200);
    const before = decisions();
    const hits = edge!.answerReuse().hits;
    const again = await read(c, id);
    expect(again.status, again.text).to.equal(200);
    expect(decisions(), 'the second read did not reach capability-exposure').to.equal(before);
    expect(edge!.answerReuse().hits).to.equal(hits + 1);
    return again;
  };

  before(async function () {
    this.timeout(120_000);
    const edges = async (env: Record<string, string>, logger: Logger) => {
      ce = await startCapabilityExposureService({ ...env, PORT: '0' }, logger, { resolveHost: resolver });
      await ce.whenReady;
      const meshEnv = { ...env, CAPABILITY_EXPOSURE_ADDR: `localhost:${ce.port}`, EDGE_ANSWER_REUSE_MAX_AGE_MS: String(MAX_AGE_MS) };
      edge = await startEdgeService(meshEnv, logger);
      // A second edge on the same capability-exposure: its writes reach the first edge only as withdrawals.
      edge2 = await startEdgeService({ ...meshEnv, PORT: '0' }, logger);
      await edge2.whenReady;
      return {
        port: edge.port,
        ...(edge.whenReady ? { whenReady: edge.whenReady } : {}),
        stop: async () => {
          await edge2?.stop();
          await edge?.stop();
          await ce?.stop();
        },
      };
    };
    mesh = await startTestMesh({ edge: edges, extraEnv: { AESE_ISSUER: T8_ISSUER, SIM_TICK_MS: '0', NOTIFICATION_DESTINATION_PORTS: '443' } });
    operator = operatorAuthClient(mesh);
    a = await onboardT8As(mesh, operator, 'as-reuse-a', { scopes: [MONITORING_EVENT, AS_SESSION_WITH_QOS] });
    b = await onboardT8As(mesh, operator, 'as-reuse-b', { scopes: [MONITORING_EVENT] });
    await grantA(OPS);
    ca = T8Client.forMesh(mesh, a);
    ca2 = T8Client.forMesh(mesh, a, edge2!.port);
    cb = T8Client.forMesh(mesh, b);
  });

  after(async function () {
    this.timeout(30_000);
    await ca?.close();
    await ca2?.close();
    await cb?.close();
    operator?.close();
    await mesh?.stop();
  });

  it('a repeated read is given again without capability-exposure, with a fresh response signature each time', async () => {
    const id = await create(ca, 5);
    const first = await read(ca, id);
    const again = await warm(ca, id);
    expect(again.text).to.equal(first.text);
    expect(again.headers['signature'], 'each answer is signed for its own request').to.not.equal(first.headers['signature']);
    expect(again.headers['cache-control']).to.equal('no-store');
  });

  it('every check of the T8 path still runs before a reused answer: replay, token scope, the path AS', async () => {
    const id = await create(ca, 5);
    await warm(ca, id);
    const before = decisions();
    const hits = edge!.answerReuse().hits;
    // The very same signed request again: the replay check still refuses it.
    const prepared = await ca.prepare({ method: 'GET', path: `${ME}/${a.scsAsId}/subscriptions/${id}`, token: await ca.token(MONITORING_EVENT) });
    expect((await ca.send(prepared)).status).to.equal(200);
    const replayed = await ca.send(prepared);
    expect(replayed.status, replayed.text).to.equal(401);
    expect(replayed.json<Record<string, unknown>>()['cause']).to.equal('REPLAYED_REQUEST');
    // A token without the API's scope.
    const noScope = await call(ca, { method: 'GET', path: `${ME}/${a.scsAsId}/subscriptions/${id}` }, AS_SESSION_WITH_QOS);
    expect(noScope.status, noScope.text).to.equal(403);
    // Another AS naming this AS's resource.
    const other = await call(cb, { method: 'GET', path: `${ME}/${a.scsAsId}/subscriptions/${id}` });
    expect(other.status, other.text).to.equal(403);
    expect(edge!.answerReuse().hits, 'only the first, genuine request was given the kept answer').to.equal(hits + 1);
    expect(decisions()).to.equal(before);
  });

  it("the AS's own write withdraws its kept answers at once", async () => {
    const id = await create(ca, 5);
    await warm(ca, id);
    const patched = await call(ca, {
      method: 'PATCH',
      path: `${ME}/${a.scsAsId}/subscriptions/${id}`,
      contentType: 'application/json-patch+json',
      body: [{ op: 'replace', path: '/maximumNumberOfReports', value: 7 }],
    });
    expect(patched.status, patched.text).to.equal(204);
    const before = decisions();
    expect(reportsOf(await read(ca, id))).to.equal(7);
    expect(decisions(), 'the read after the write went to capability-exposure').to.equal(before + 1);
  });

  it('a change that reached capability-exposure through another edge withdraws the answers kept here', async () => {
    const id = await create(ca, 5);
    await warm(ca, id);
    const patched = await call(ca2, {
      method: 'PATCH',
      path: `${ME}/${a.scsAsId}/subscriptions/${id}`,
      contentType: 'application/json-patch+json',
      body: [{ op: 'replace', path: '/maximumNumberOfReports', value: 9 }],
    });
    expect(patched.status, patched.text).to.equal(204);
    expect(reportsOf(await read(ca, id)), 'the first edge never saw the write, only the withdrawal').to.equal(9);
    const deleted = await call(ca2, { method: 'DELETE', path: `${ME}/${a.scsAsId}/subscriptions/${id}` });
    expect(deleted.status, deleted.text).to.equal(204);
    expect((await read(ca, id)).status).to.equal(404);
  });

  it("another AS's write leaves this AS's kept answers in place", async () => {
    const id = await create(ca, 5);
    await warm(ca, id);
    await create(cb, 3);
    const before = decisions();
    expect((await read(ca, id)).status).to.equal(200);
    expect(decisions()).to.equal(before);
  });

  it('a policy change withdraws every kept answer: a revoked read is refused at once', async () => {
    const id = await create(ca, 5);
    await warm(ca, id);
    await grantA(['create', 'update', 'delete', 'notify']);
    try {
      const refused = await read(ca, id);
      expect(refused.status, refused.text).to.equal(403);
    } finally {
      await grantA(OPS);
    }
    expect((await read(ca, id)).status).to.equal(200);
  });

  it('a kept answer is not given past its age bound', async () => {
    const id = await create(ca, 5);
    await warm(ca, id);
    await new Promise(resolve => setTimeout(resolve, MAX_AGE_MS + 200));
    const before = decisions();
    expect((await read(ca, id)).status).to.equal(200);
    expect(decisions(), 'the aged answer was asked for again').to.equal(before + 1);
  });

  it('an edge whose reuse bound exceeds the staleness bound refuses to start, naming both settings', async () => {
    const err = await startEdgeService(
      { ...mesh.env, PORT: '0', EDGE_ANSWER_REUSE_MAX_AGE_MS: '3000', STALENESS_BOUND_MS: '2000' },
      createLogger({ service: 'edge', level: 'silent' }),
    ).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(String(err)).to.match(/EDGE_ANSWER_REUSE_MAX_AGE_MS \(3000\) must not exceed STALENESS_BOUND_MS \(2000\)/);
  });

  it('nothing kept is given once capability-exposure is gone: 503, not the old answer', async () => {
    const id = await create(ca, 5);
    await warm(ca, id);
    const gone = ce!;
    ce = undefined;
    await gone.stop();
    const reply = await read(ca, id);
    expect(reply.status, reply.text).to.equal(503);
  });
});
