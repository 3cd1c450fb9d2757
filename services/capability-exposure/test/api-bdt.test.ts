import { expect } from 'chai';
import { loadT8Schemas } from '@aese/t8-openapi';
import type { T8Schemas } from '@aese/t8-openapi';
import { startTestMesh } from '../../../test/support/mesh.ts';
import type { TestMesh } from '../../../test/support/mesh.ts';
import { simulatedGroupId } from '../src/network/simulated-core.ts';
import type { RunningCapabilityExposure } from '../src/server.ts';
import { API_ROOT, AS_DESTINATION, edgeClient, NotificationWatcher, startInstance, t8, TestPolicy } from './support.ts';
import type { T8Answer, T8Call } from './support.ts';

const BDT = '/3gpp-bdt/v1';
const SCOPES = ['3gpp-bdt'];
const GROUP1 = simulatedGroupId(1);
const GROUP2 = simulatedGroupId(2);
const HOUR = 3_600_000;
const DAY = 24 * HOUR;
/** Midnight (UTC) `n` days ahead: every window of these tests lies in the future, on days of its own. */
const midnight = (n: number): number => Math.floor(Date.now() / DAY) * DAY + n * DAY;
const iso = (ms: number): string => new Date(ms).toISOString();
const window = (startMs: number, stopMs: number) => ({ startTime: iso(startMs), stopTime: iso(stopMs) });
const LIST = '#/paths/~1{scsAsId}~1subscriptions/get/responses/200/content/application~1json/schema';

interface TransferPolicy {
  bdtPolicyId: number;
  ratingGroup: number;
  timeWindow: { startTime: string; stopTime: string };
  maxDownlinkBandwidth?: number;
}
interface Bdt {
  self: string;
  referenceId: string;
  transferPolicies: TransferPolicy[];
  selectedPolicy?: number;
  [member: string]: unknown;
}

/** 100 UEs downloading 1 GB each within the day's first eight hours. */
function request(day: number, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { volumePerUE: { totalVolume: 1_000_000_000 }, numberOfUEs: 100, desiredTimeWindow: window(midnight(day), midnight(day) + 8 * HOUR), ...extra };
}

describe('ResourceManagementOfBdt (3gpp-bdt) through the Invoke pipeline', function () {
  this.timeout(60_000);
  let mesh: TestMesh;
  let schemas: T8Schemas;
  let svc: RunningCapabilityExposure;
  let client: ReturnType<typeof edgeClient>;
  let watcher: NotificationWatcher;
  const policy = new TestPolicy();
  const logs: string[] = [];

  const call = (c: T8Call): Promise<T8Answer> => t8(client, { scopes: SCOPES, ...c });
  const valid = (schema: string, body: unknown, direction: 'request' | 'response' = 'response'): void => {
    const v = schemas.validator(schema === 'ProblemDetails' ? 'common-data' : 'resource-management-of-bdt', schema, direction);
    expect(v(body), `${schema}: ${JSON.stringify(v.violations())}`).to.equal(true);
  };
  const problem = (a: T8Answer, status: number, cause: string): Record<string, unknown> => {
    expect(a.status, a.text).to.equal(status);
    expect(a.headers['content-type']).to.equal('application/problem+json');
    valid('ProblemDetails', a.json);
    expect(a.json).to.include({ status, cause });
    return a.json as Record<string, unknown>;
  };
  const created = (a: T8Answer): Bdt => {
    expect(a.status, a.text).to.equal(201);
    valid('Bdt', a.json);
    const b = a.json as Bdt;
    expect(a.headers['location']).to.equal(b.self);
    return b;
  };
  const itemOf = (b: Bdt): string => new URL(b.self).pathname;
  const listed = async (scsAsId = 'as1'): Promise<string[]> => {
    const a = await call({ scsAsId, method: 'GET', path: `${BDT}/${scsAsId}/subscriptions` });
    expect(a.status, a.text).to.equal(200);
    valid(LIST, a.json);
    return (a.json as Bdt[]).map(b => b.self);
  };
  const notificationsFor = (b: Bdt) => watcher.received.filter(n => n.subscriptionId === b.self.split('/').pop());
  const noop = async (): Promise<void> => {};

  before(async () => {
    schemas = await loadT8Schemas();
    mesh = await startTestMesh({ extraEnv: { SIM_TICK_MS: '0' } });
    policy.grants.set('as1', { targets: [`externalGroupId:${GROUP1}`, 'externalGroupId:nogroup@scef.test'], categories: ['bdt'] });
    // Granted the category and no UE at all: enough for requests that name none.
    policy.grants.set('as2', { targets: [], categories: ['bdt'] });
    policy.grants.set('as3', { targets: [], categories: ['qos'] });
    svc = await startInstance(mesh, logs, policy.decide);
    client = edgeClient(mesh, svc.port);
    watcher = await NotificationWatcher.open(mesh.nats.url, mesh.stateDir, 'as1');
  });

  after(async () => {
    client?.close();
    await watcher?.close();
    await svc?.stop();
    await mesh?.stop();
  });

  it('offers transfer policies in the off-peak and shoulder hours, off-peak first; the request names no UE', async () => {
    const body = request(2, { aspId: 'as1', notificationDestination: AS_DESTINATION });
    valid('Bdt', body, 'request');
    const b = created(await call({ method: 'POST', path: `${BDT}/as1/subscriptions`, body }));
    expect(b.self).to.match(new RegExp(`^${API_ROOT}${BDT}/as1/subscriptions/[0-9a-f-]{36}$`));
    expect(b).to.deep.include(body);
    expect(b.referenceId).to.be.a('string').that.is.not.empty;
    const day = midnight(2);
    expect(b.transferPolicies.map(p => [p.bdtPolicyId, p.ratingGroup, p.timeWindow])).to.deep.equal([
      [1, 101, window(day + HOUR, day + 6 * HOUR)],
      [2, 102, window(day, day + HOUR)],
      [3, 102, window(day + 6 * HOUR, day + 8 * HOUR)],
    ]);
    expect(b.transferPolicies[0].maxDownlinkBandwidth).to.equal(2_000_000_000);
    expect(b).not.to.have.property('selectedPolicy');
    expect(policy.asked.at(-1)).to.deep.equal({ scsAsId: 'as1', api: '3gpp-bdt', operation: 'create', dataCategories: ['bdt'], targets: [], pathScsAsId: 'as1' });

    const read = await call({ method: 'GET', path: itemOf(b) });
    expect(read.status).to.equal(200);
    expect(read.json).to.deep.equal(b);
    expect(await listed()).to.include(b.self);
  });

  it('the AS selects a policy (merge-patch) and renegotiates (PUT); refused selections change nothing', async () => {
    const b = created(await call({ method: 'POST', path: `${BDT}/as1/subscriptions`, body: request(3) }));
    const item = itemOf(b);
    const patch = { selectedPolicy: 2 };
    valid('BdtPatch', patch, 'request');
    const selected = await call({ method: 'PATCH', path: item, contentType: 'application/merge-patch+json', body: patch });
    expect(selected.status, selected.text).to.equal(200);
    valid('Bdt', selected.json);
    expect(selected.json).to.deep.equal({ ...b, selectedPolicy: 2 });

    let asked = policy.asked.length;
    problem(await call({ method: 'PATCH', path: item, contentType: 'application/merge-patch+json', body: { selectedPolicy: 9 } }), 400, 'INVALID_PARAMETER');
    problem(await call({ method: 'PATCH', path: item, contentType: 'application/merge-patch+json', body: { selectedPolicy: 1, transferPolicies: [] } }), 400, 'INVALID_PARAMETER');
    problem(await call({ method: 'PUT', path: item, body: { ...request(3), transferPolicies: [{ ...b.transferPolicies[0], ratingGroup: 0 }] } }), 400, 'INVALID_PARAMETER');
    problem(await call({ method: 'PUT', path: item, body: { ...request(3), referenceId: 'mine' } }), 400, 'INVALID_PARAMETER');
    // A new negotiation cannot select at once: the AS has not seen its offers yet.
    problem(await call({ method: 'PUT', path: item, body: { ...request(3), numberOfUEs: 50, selectedPolicy: 1 } }), 400, 'INVALID_PARAMETER');
    expect(policy.asked.length, 'refused before authorization').to.equal(asked);
    expect((await call({ method: 'GET', path: item })).json).to.deep.equal(selected.json);

    // A GET-modify-PUT round trip that keeps the request keeps the offers and the selection.
    const same = await call({ method: 'PUT', path: item, body: { ...(selected.json as Bdt), self: undefined, warnNotifEnabled: false } });
    expect(same.status, same.text).to.equal(200);
    expect(same.json).to.deep.equal({ ...(selected.json as Bdt), warnNotifEnabled: false });

    // Another window: new offers, the same reference, and nothing selected.
    const day = midnight(3);
    const again = await call({ method: 'PUT', path: item, body: request(3, { desiredTimeWindow: window(day + 22 * HOUR, day + 30 * HOUR) }) });
    expect(again.status, again.text).to.equal(200);
    valid('Bdt', again.json);
    const renegotiated = again.json as Bdt;
    expect(renegotiated).to.include({ self: b.self, referenceId: b.referenceId }).and.not.have.property('selectedPolicy');
    expect(renegotiated.transferPolicies.map(p => p.timeWindow)).to.deep.equal([window(day + 25 * HOUR, day + 30 * HOUR), window(day + 22 * HOUR, day + 25 * HOUR)]);
    asked = policy.asked.length;
    expect((await call({ method: 'DELETE', path: item })).status).to.equal(204);
    expect(policy.asked.length).to.equal(asked + 1);
    problem(await call({ method: 'GET', path: item }), 404, 'RESOURCE_NOT_FOUND');
    problem(await call({ method: 'DELETE', path: item }), 404, 'RESOURCE_NOT_FOUND');
  });

  it("refuses what breaks the API's rules with a 400 before authorization, and stores nothing", async () => {
    const before = await listed();
    const asked = policy.asked.length;
    const day = midnight(2);
    const refusals: [Record<string, unknown>, string][] = [
      [request(2, { selectedPolicy: 1 }), '/selectedPolicy'],
      [request(2, { transferPolicies: [{ bdtPolicyId: 1, ratingGroup: 1, timeWindow: window(day, day + HOUR) }] }), '/transferPolicies'],
      [request(2, { referenceId: 'ref-1' }), '/referenceId'],
      [request(2, { desiredTimeWindow: window(day + HOUR, day) }), '/desiredTimeWindow/stopTime'],
      [request(2, { desiredTimeWindow: window(Date.now() - 2 * HOUR, Date.now() - HOUR) }), '/desiredTimeWindow/stopTime'],
      [request(2, { desiredTimeWindow: window(day, day + 8 * DAY) }), '/desiredTimeWindow'],
      [request(2, { volumePerUE: { duration: 600 } }), '/volumePerUE'],
      [request(2, { warnNotifEnabled: true }), '/notificationDestination'],
    ];
    for (const [body, param] of refusals) {
      const p = problem(await call({ method: 'POST', path: `${BDT}/as1/subscriptions`, body }), 400, 'INVALID_PARAMETER');
      const params = p['invalidParams'] as { param: string }[];
      expect(params.map(x => x.param)).to.deep.equal([param]);
    }
    problem(await call({ method: 'POST', path: `${BDT}/as1/subscriptions`, body: request(2, { numberOfUEs: 0 }) }), 400, 'INVALID_PARAMETER');
    problem(await call({ method: 'POST', path: `${BDT}/as1/subscriptions`, body: request(2, { externalGroupId: 'not-a-group' }) }), 400, 'INVALID_PARAMETER');
    // The SCEF maps the AS to its ASP: another ASP's id is refused.
    problem(await call({ method: 'POST', path: `${BDT}/as1/subscriptions`, body: request(2, { aspId: 'as2' }) }), 403, 'SCS_AS_ID_MISMATCH');
    expect(policy.asked.length).to.equal(asked);
    expect(await listed()).to.deep.equal(before);
  });

  it('answers NO_TRANSFER_POLICY when no window carries the volume, and rejects unknown groups and internal destinations (all after authorization)', async () => {
    const before = await listed();
    const day = midnight(2);
    // Busy hours only: nothing is left for background transfers.
    const p = problem(
      await call({ method: 'POST', path: `${BDT}/as1/subscriptions`, body: request(2, { desiredTimeWindow: window(day + 9 * HOUR, day + 17 * HOUR) }) }),
      400,
      'NO_TRANSFER_POLICY',
    );
    expect(p['invalidParams']).to.deep.equal([{ param: '/desiredTimeWindow', reason: 'no window in it carries the volume' }]);
    // Off-peak hours, but more than the network carries in them.
    problem(await call({ method: 'POST', path: `${BDT}/as1/subscriptions`, body: request(2, { numberOfUEs: 1_000_000 }) }), 400, 'NO_TRANSFER_POLICY');
    expect(policy.asked.at(-1)).to.include({ operation: 'create' });
    problem(await call({ method: 'POST', path: `${BDT}/as1/subscriptions`, body: request(2, { externalGroupId: 'nogroup@scef.test' }) }), 400, 'UNKNOWN_UE');
    problem(
      await call({ method: 'POST', path: `${BDT}/as1/subscriptions`, body: request(2, { notificationDestination: 'https://169.254.169.254/latest' }) }),
      400,
      'INVALID_NOTIFICATION_DESTINATION',
    );
    expect(await listed()).to.deep.equal(before);
  });

  it('authorizes a group by its target, a request naming none by operation and category only', async () => {
    const g = created(await call({ method: 'POST', path: `${BDT}/as1/subscriptions`, body: request(4, { externalGroupId: GROUP1 }) }));
    expect(policy.asked.at(-1)).to.deep.include({ operation: 'create', targets: [`externalGroupId:${GROUP1}`] });
    const before = await listed();
    problem(await call({ method: 'POST', path: `${BDT}/as1/subscriptions`, body: request(4, { externalGroupId: GROUP2 }) }), 403, 'TARGET_NOT_GRANTED');
    problem(await call({ scsAsId: 'as2', method: 'POST', path: `${BDT}/as2/subscriptions`, body: request(4, { externalGroupId: GROUP1 }) }), 403, 'TARGET_NOT_GRANTED');
    problem(await call({ scsAsId: 'as3', method: 'POST', path: `${BDT}/as3/subscriptions`, body: request(4) }), 403, 'CATEGORY_NOT_GRANTED');
    problem(await call({ method: 'POST', path: `${BDT}/as1/subscriptions`, body: request(4), scopes: ['3gpp-as-session-with-qos'] }), 403, 'insufficient_scope');
    expect(await listed()).to.deep.equal(before);
    // No UE and no group: the grant's category is enough.
    const plain = created(await call({ scsAsId: 'as2', method: 'POST', path: `${BDT}/as2/subscriptions`, body: request(4) }));
    expect(await listed('as2')).to.deep.equal([plain.self]);

    // Another AS's resource is exactly as absent as an id nobody made.
    const foreign = `${BDT}/as2/subscriptions/${g.self.split('/').pop()!}`;
    const unknown = `${BDT}/as2/subscriptions/${crypto.randomUUID()}`;
    for (const [method, body, contentType] of [
      ['GET', undefined, undefined],
      ['PUT', request(4), undefined],
      ['PATCH', { selectedPolicy: 1 }, 'application/merge-patch+json'],
      ['DELETE', undefined, undefined],
    ] as const) {
      const theirs = await call({ scsAsId: 'as2', method, path: foreign, body, contentType });
      const nobodys = await call({ scsAsId: 'as2', method, path: unknown, body, contentType });
      problem(theirs, 404, 'RESOURCE_NOT_FOUND');
      expect(theirs.text, method).to.equal(nobodys.text);
    }
    problem(await call({ scsAsId: 'as2', method: 'GET', path: itemOf(g) }), 403, 'SCS_AS_ID_MISMATCH');
    expect((await call({ method: 'GET', path: itemOf(g) })).json).to.deep.equal(g);
  });

  it('warns both agreements once when their transfers come to exceed the off-peak capacity; the candidate policy can then be selected', async () => {
    // 1,000 UEs x 3 GB over two nights: one night's off-peak hours carry one such transfer, not two.
    const heavy = request(5, {
      volumePerUE: { downlinkVolume: 2_500_000_000, uplinkVolume: 500_000_000 },
      numberOfUEs: 1000,
      desiredTimeWindow: window(midnight(5), midnight(6) + 8 * HOUR),
      notificationDestination: AS_DESTINATION,
      warnNotifEnabled: true,
    });
    const night1 = window(midnight(5) + HOUR, midnight(5) + 6 * HOUR);
    const night2 = window(midnight(6) + HOUR, midnight(6) + 6 * HOUR);
    const a = created(await call({ method: 'POST', path: `${BDT}/as1/subscriptions`, body: heavy }));
    const b = created(await call({ method: 'POST', path: `${BDT}/as1/subscriptions`, body: heavy }));
    for (const x of [a, b])
      expect(x.transferPolicies.map(p => [p.bdtPolicyId, p.timeWindow])).to.deep.equal([
        [1, night1],
        [2, night2],
      ]);
    const select = (x: Bdt, selectedPolicy: number, extra: Record<string, unknown> = {}) =>
      call({ method: 'PATCH', path: itemOf(x), contentType: 'application/merge-patch+json', body: { selectedPolicy, ...extra } });
    expect((await select(a, 1)).status).to.equal(200);
    await new Promise(r => setTimeout(r, 300));
    await watcher.settle();
    expect(notificationsFor(a), 'one agreement fits').to.have.length(0);

    expect((await select(b, 1)).status).to.equal(200);
    for (const x of [a, b]) {
      const n = await watcher.waitFor(m => m.subscriptionId === x.self.split('/').pop(), noop, 600);
      expect(n).to.deep.include({ scsAsId: 'as1', api: '3gpp-bdt', destination: AS_DESTINATION });
      const body = JSON.parse(Buffer.from(n.body).toString('utf8')) as { bdtRefId: string; timeWindow: unknown; candPolicies: TransferPolicy[] };
      valid('ExNotification', body);
      expect(body.bdtRefId).to.equal(x.referenceId);
      expect(body.timeWindow).to.deep.equal(night1);
      expect(body.candPolicies.map(p => [p.bdtPolicyId, p.ratingGroup, p.timeWindow])).to.deep.equal([[3, 101, night2]]);
    }
    expect(policy.asked.filter(q => q.operation === 'notify').at(-1)).to.deep.include({ api: '3gpp-bdt', dataCategories: ['bdt'], targets: [] });
    // The candidate is on offer now, beside the agreed policy, which stays selected.
    const offered = (await call({ method: 'GET', path: itemOf(a) })).json as Bdt;
    valid('Bdt', offered);
    expect(offered.selectedPolicy).to.equal(1);
    expect(offered.transferPolicies.map(p => p.bdtPolicyId)).to.deep.equal([1, 3]);

    // The same congestion is not warned of twice, whatever else changes.
    expect((await select(b, 1, { warnNotifEnabled: true })).status).to.equal(200);
    await new Promise(r => setTimeout(r, 300));
    await watcher.settle();
    expect(notificationsFor(a)).to.have.length(1);
    expect(notificationsFor(b)).to.have.length(1);

    // A moves to the second night: both fit again, nobody is warned.
    const moved = await select(a, 3);
    expect(moved.status, moved.text).to.equal(200);
    expect(moved.json).to.deep.include({ selectedPolicy: 3 });
    await new Promise(r => setTimeout(r, 300));
    await watcher.settle();
    expect(notificationsFor(a)).to.have.length(1);
    expect(notificationsFor(b)).to.have.length(1);
    // A new request sees what is agreed: the first night is full, the second has room for one.
    const c = created(await call({ method: 'POST', path: `${BDT}/as1/subscriptions`, body: { ...heavy, numberOfUEs: 400 } }));
    expect(c.transferPolicies.map(p => p.timeWindow)).to.deep.equal([night1, night2]);
    const d = await call({ method: 'POST', path: `${BDT}/as1/subscriptions`, body: { ...heavy, numberOfUEs: 1000 } });
    problem(d, 400, 'NO_TRANSFER_POLICY');
  });
});
