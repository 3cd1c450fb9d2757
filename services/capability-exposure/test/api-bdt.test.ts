import { expect } from 'chai';
import { eventually } from '@aese/testing';
import { loadT8Schemas } from '@aese/t8-openapi';
import type { T8Schemas } from '@aese/t8-openapi';
import { startTestMesh } from '../../../test/support/mesh.ts';
import type { TestMesh } from '../../../test/support/mesh.ts';
import { Invoker } from '../src/domain/invoke.ts';
import type { InvokeOutput } from '../src/domain/invoke.ts';
import { MemoryResourceStore } from '../src/domain/resource-store.ts';
import { BDT_API, createBdtModule } from '../src/modules/bdt/index.ts';
import { bitrateOf, LoadProfile } from '../src/modules/bdt/load-profile.ts';
import type { Span, Transfer } from '../src/modules/bdt/load-profile.ts';
import { DEFAULT_BDT_CAPACITY_BPS, DEFAULT_BDT_RATING_GROUPS, DEFAULT_BDT_WARNING_SHARE, loadLevelAt, SimulatedPcrf } from '../src/modules/bdt/network.ts';
import type { LoadLevel, OfferedPolicy } from '../src/modules/bdt/network.ts';
import { ModuleRegistry } from '../src/modules/registry.ts';
import { simulatedGroupId, SimulatedCore } from '../src/network/simulated-core.ts';
import type { RunningCapabilityExposure } from '../src/server.ts';
import { API_ROOT, AS_DESTINATION, edgeClient, NotificationWatcher, startInstance, t8, testResolver, TestPolicy, t8Assertions } from './support.ts';
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
/** BDT_MAX_SUBSCRIPTIONS_PER_AS of the service under test. */
const QUOTA = 20;

interface TransferPolicy {
  bdtPolicyId: number;
  ratingGroup: number;
  timeWindow: { startTime: string; stopTime: string };
  maxDownlinkBandwidth?: number;
}
interface ExBody {
  bdtRefId: string;
  timeWindow: { startTime: string; stopTime: string };
  candPolicies?: TransferPolicy[];
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

/** `ues` UEs x 3 GB over two nights from midnight `day` on: 1,000 of them take two thirds of a night's off-peak capacity. */
function heavy(day: number, ues: number, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return request(day, {
    volumePerUE: { downlinkVolume: 2_500_000_000, uplinkVolume: 500_000_000 },
    numberOfUEs: ues,
    desiredTimeWindow: window(midnight(day), midnight(day + 1) + 8 * HOUR),
    notificationDestination: AS_DESTINATION,
    warnNotifEnabled: true,
    ...extra,
  });
}
/** The off-peak hours of the night that starts at midnight `day`. */
const night = (day: number) => window(midnight(day) + HOUR, midnight(day) + 6 * HOUR);
/** The bitrate that moves `bytes` evenly over a window: what an offer allows. */
const neededBps = (bytes: number, w: { startTime: string; stopTime: string }): number => Math.ceil((bytes * 8) / ((Date.parse(w.stopTime) - Date.parse(w.startTime)) / 1000));

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
  const { valid, problem } = t8Assertions(() => schemas, 'resource-management-of-bdt');
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
    policy.grants.set('as4', { targets: [], categories: ['bdt'] });
    svc = await startInstance(mesh, logs, policy.decide, { BDT_MAX_SUBSCRIPTIONS_PER_AS: String(QUOTA) });
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
    // The bitrate the volume needs in the window (100 GB in 5 hours), not the capacity left there.
    expect(b.transferPolicies[0]).to.include({ maxDownlinkBandwidth: 44_444_445, maxUplinkBandwidth: 44_444_445 });
    expect(b.transferPolicies.map(p => p.maxDownlinkBandwidth)).to.deep.equal(b.transferPolicies.map(p => neededBps(100_000_000_000, p.timeWindow)));
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

  const select = (x: Bdt, selectedPolicy: number, scsAsId = 'as1') =>
    call({ scsAsId, method: 'PATCH', path: itemOf(x), contentType: 'application/merge-patch+json', body: { selectedPolicy } });
  const create = (body: Record<string, unknown>, scsAsId = 'as1'): Promise<T8Answer> => call({ scsAsId, method: 'POST', path: `${BDT}/${scsAsId}/subscriptions`, body });
  const read = async (x: Bdt, scsAsId = 'as1'): Promise<Bdt> => {
    const a = await call({ scsAsId, method: 'GET', path: itemOf(x) });
    expect(a.status, a.text).to.equal(200);
    valid('Bdt', a.json);
    return a.json as Bdt;
  };
  /** Lets any warning a write caused arrive. */
  const quiet = async (): Promise<void> => {
    await new Promise(r => setTimeout(r, 300));
    await watcher.settle();
  };
  const warningTo = async (x: Bdt): Promise<ExBody> => {
    const n = await watcher.waitFor(m => m.subscriptionId === x.self.split('/').pop(), noop, 600);
    expect(n).to.deep.include({ scsAsId: 'as1', api: '3gpp-bdt', destination: AS_DESTINATION });
    const body = JSON.parse(Buffer.from(n.body).toString('utf8')) as ExBody;
    valid('ExNotification', body);
    expect(body.bdtRefId).to.equal(x.referenceId);
    return body;
  };

  it('offers the bitrate the volume needs in a window, whatever others agreed there: an offer tells nothing of their load', async () => {
    // One night only: a single offer, agreed at once.
    const oneNight = (ues: number) => heavy(10, ues, { desiredTimeWindow: night(10), warnNotifEnabled: false });
    const theirs = created(await create(oneNight(400), 'as2'));
    expect(theirs.transferPolicies.map(p => [p.bdtPolicyId, p.timeWindow, p.maxDownlinkBandwidth])).to.deep.equal([[1, night(10), neededBps(400 * 3_000_000_000, night(10))]]);
    // as2's transfer takes a quarter of that night now; as1 is offered it all the same, with the same bitrate.
    const mine = created(await create(oneNight(400)));
    expect(mine.transferPolicies).to.deep.equal(theirs.transferPolicies);
    // The capacity is accounted all the same: half the night is agreed, two thirds more do not fit.
    problem(await create(oneNight(1000)), 400, 'NO_TRANSFER_POLICY');
  });

  it("weighs a selection against what others agreed since the offer: one made stale by another AS's agreement is refused and changes nothing", async () => {
    const mine = created(await create(heavy(8, 1000)));
    const theirs = created(await create(heavy(8, 1000), 'as2'));
    for (const x of [mine, theirs]) expect(x.transferPolicies.map(p => p.timeWindow)).to.deep.equal([night(8), night(9)]);
    expect((await select(theirs, 1, 'as2')).status).to.equal(200);
    // Both were offered the first night while it was free; it carries one of them.
    const refused = problem(await select(mine, 1), 400, 'NO_TRANSFER_POLICY');
    expect(refused['invalidParams']).to.deep.equal([{ param: '/selectedPolicy', reason: 'its window no longer carries the volume: select another policy or negotiate again' }]);
    expect(await read(mine)).to.deep.equal(mine);
    const second = await select(mine, 2);
    expect(second.status, second.text).to.equal(200);
    expect(second.json).to.deep.equal({ ...mine, selectedPolicy: 2 });
    await quiet();
    expect(notificationsFor(mine), 'two thirds of a night is no degradation').to.have.length(0);
  });

  it("warns an agreement once when others load its window past the operator's criterion, rewriting nothing of it; its AS may then select a candidate", async () => {
    const a = created(await create(heavy(5, 1000)));
    expect(a.transferPolicies.map(p => [p.bdtPolicyId, p.timeWindow])).to.deep.equal([
      [1, night(5)],
      [2, night(6)],
    ]);
    const agreed = await select(a, 1);
    expect(agreed.status, agreed.text).to.equal(200);
    await quiet();
    expect(notificationsFor(a), 'two thirds of a night is no degradation').to.have.length(0);

    // Another AS takes most of what is left of that night (it fits, to 90 % of the capacity).
    const b = created(await create(heavy(5, 350, { warnNotifEnabled: false }), 'as2'));
    expect(b.transferPolicies[0].timeWindow).to.deep.equal(night(5));
    expect((await select(b, 1, 'as2')).status).to.equal(200);
    const warned = await warningTo(a);
    expect(warned.timeWindow).to.deep.equal(night(5));
    expect(warned.candPolicies!.map(p => [p.bdtPolicyId, p.ratingGroup, p.timeWindow, p.maxDownlinkBandwidth])).to.deep.equal([
      [3, 101, night(6), a.transferPolicies[1].maxDownlinkBandwidth],
    ]);
    expect(policy.asked.filter(q => q.operation === 'notify').at(-1)).to.deep.include({ api: '3gpp-bdt', dataCategories: ['bdt'], targets: [] });
    // The warning is the SCEF's to give: a's agreement reads as its AS left it.
    expect(await read(a)).to.deep.equal(agreed.json);

    // A third agreement in the same night: it is warned, a not twice for the same degradation.
    const c = created(await create(heavy(5, 100)));
    expect((await select(c, 1)).status).to.equal(200);
    expect((await warningTo(c)).timeWindow).to.deep.equal(night(5));
    await quiet();
    expect(notificationsFor(a)).to.have.length(1);

    // a moves to its candidate, weighed like any selection: the second night is free.
    const moved = await select(a, 3);
    expect(moved.status, moved.text).to.equal(200);
    valid('Bdt', moved.json);
    expect(moved.json).to.deep.equal({ ...(agreed.json as Bdt), selectedPolicy: 3, transferPolicies: [...a.transferPolicies, warned.candPolicies![0]] });

    // A new request sees what is agreed: the first night has room for one more such transfer (agreed
    // at once, the only offer, and warned of without candidates: there is nowhere else), then none.
    const d = created(await create(heavy(5, 1000)));
    expect(d.transferPolicies.map(p => p.timeWindow)).to.deep.equal([night(5)]);
    expect(await warningTo(d)).to.not.have.property('candPolicies');
    problem(await create(heavy(5, 1000)), 400, 'NO_TRANSFER_POLICY');
    await quiet();
    expect([a, c].map(x => notificationsFor(x).length)).to.deep.equal([1, 1]);
  });

  it(`holds at most ${QUOTA} subscriptions per AS (BDT_MAX_SUBSCRIPTIONS_PER_AS): one more is refused with 403 BDT_QUOTA_EXCEEDED, nothing stored`, async () => {
    const small = request(12, { numberOfUEs: 1 });
    const held: string[] = [];
    for (let i = 0; i < QUOTA; i++) held.push(created(await create(small, 'as4')).self);
    problem(await create(small, 'as4'), 403, 'BDT_QUOTA_EXCEEDED');
    expect(await listed('as4')).to.have.members(held);
    expect(await listed('as4')).to.have.length(QUOTA);
    // Another AS is not held to as4's count; as4 makes room by deleting.
    created(await create(small, 'as2'));
    expect((await call({ scsAsId: 'as4', method: 'DELETE', path: new URL(held[0]).pathname })).status).to.equal(204);
    created(await create(small, 'as4'));
    problem(await create(small, 'as4'), 403, 'BDT_QUOTA_EXCEEDED');
  });
});

describe('ResourceManagementOfBdt: a subscription whose time window ended is over', function () {
  this.timeout(30_000);
  /** A midnight (UTC): 01:00-06:00 are off-peak. */
  const T0 = Date.UTC(2031, 0, 6);
  let clock = T0;
  const policy = new TestPolicy();
  const store = new MemoryResourceStore();
  const network = new SimulatedCore({ ueCount: 4, groupCount: 1, tickMs: 0, now: () => clock });
  let module: ReturnType<typeof createBdtModule>;
  let invoker: Invoker;

  const call = (method: string, path: string, body?: unknown): Promise<InvokeOutput> =>
    invoker.invoke({
      scsAsId: 'as1',
      method,
      path: `${BDT}/as1/subscriptions${path}`,
      contentType: body === undefined ? '' : 'application/json',
      body: Buffer.from(body === undefined ? '' : JSON.stringify(body)),
      scopes: SCOPES,
      apiRoot: API_ROOT,
    });
  const json = (out: InvokeOutput): Record<string, unknown> => JSON.parse(Buffer.from(out.body).toString('utf8')) as Record<string, unknown>;
  const created = async (body: unknown): Promise<string> => {
    const out = await call('POST', '', body);
    expect(out.status, JSON.stringify(json(out))).to.equal(201);
    return String(json(out)['self']).split('/').pop()!;
  };
  /** 1 MB for one UE in `hours` of the night from 01:00 on. */
  const small = (hours: number) => ({ volumePerUE: { totalVolume: 1_000_000 }, numberOfUEs: 1, desiredTimeWindow: window(T0 + HOUR, T0 + (1 + hours) * HOUR) });
  const stored = (): string[] => store.all(BDT_API).map(r => r.id);

  before(async () => {
    const schemas = await loadT8Schemas();
    policy.grants.set('as1', { targets: [], categories: ['bdt'] });
    module = createBdtModule(
      {
        network,
        store,
        schemas,
        destinations: { allow: [], meshEndpoints: [], resolve: testResolver },
        now: () => clock,
        newId: () => crypto.randomUUID(),
        sendTestNotification: async () => {},
        decide: policy.decide,
        settings: { bdtMaxSubscriptionsPerAs: 2 },
      },
      { sweepMs: 20 },
    );
    const registry = new ModuleRegistry();
    registry.register(module);
    invoker = new Invoker({ registry, schemas, store, decide: policy.decide, onError: () => {} });
  });

  after(async () => {
    await module?.stop?.();
    await network.stop();
  });

  it('no longer counts toward the quota, is neither listed nor answered, and is removed when met or swept', async () => {
    const ending = await created(small(1));
    const lasting = await created(small(5));
    const refused = await call('POST', '', small(5));
    expect([refused.status, json(refused)['cause']]).to.deep.equal([403, 'BDT_QUOTA_EXCEEDED']);
    expect(stored()).to.have.members([ending, lasting]);

    // 02:00: the first one's time window has ended.
    clock = T0 + 2 * HOUR;
    const renewed = await created(small(5));
    expect(stored(), 'removed when the quota met it').to.have.members([lasting, renewed]);
    const gone = await call('GET', `/${ending}`);
    const unknown = await call('GET', `/${crypto.randomUUID()}`);
    expect(gone.status).to.equal(404);
    expect(Buffer.from(gone.body).equals(Buffer.from(unknown.body))).to.equal(true);
    const listed = await call('GET', '');
    expect((json(listed) as unknown as { self: string }[]).map(b => b.self.split('/').pop())).to.have.members([lasting, renewed]);
    // Both left are active: the quota holds.
    expect((await call('POST', '', small(5))).status).to.equal(403);

    // 07:00: every window has ended; nobody meets them, the sweep removes them.
    clock = T0 + 7 * HOUR;
    await module.start!();
    await eventually(() => stored().length === 0, 5_000, 'the sweep to remove the ended subscriptions');
    expect((await call('POST', '', small(5))).status, 'ended, so refused as a new request').to.equal(400);
  });

  it('a read of a subscription is never marked reusable: its answer depends on the clock (an ended one is 404, and removed)', async () => {
    clock = T0 + 2 * HOUR;
    const id = await created(small(2));
    const registry = new ModuleRegistry();
    registry.register(module);
    const gated = new Invoker({ registry, schemas: await loadT8Schemas(), store, decide: policy.decide, onError: () => {}, reuse: { permits: () => true } });
    const read = await gated.invoke({
      scsAsId: 'as1',
      method: 'GET',
      path: `${BDT}/as1/subscriptions/${id}`,
      contentType: '',
      body: Buffer.from(''),
      scopes: SCOPES,
      apiRoot: API_ROOT,
    });
    expect([read.status, read.reusable]).to.deep.equal([200, false]);
    expect((await call('DELETE', `/${id}`)).status).to.equal(204);
  });

  it('an ended subscription is not met by an update either: 404, and removed', async () => {
    clock = T0 + 2 * HOUR;
    const id = await created(small(2));
    clock = T0 + 3 * HOUR;
    const patched = await invoker.invoke({
      scsAsId: 'as1',
      method: 'PATCH',
      path: `${BDT}/as1/subscriptions/${id}`,
      contentType: 'application/merge-patch+json',
      body: Buffer.from(JSON.stringify({ selectedPolicy: 1 })),
      scopes: SCOPES,
      apiRoot: API_ROOT,
    });
    expect([patched.status, json(patched)['cause']]).to.deep.equal([404, 'RESOURCE_NOT_FOUND']);
    expect(stored()).to.not.include(id);
  });
});

describe('ResourceManagementOfBdt: the load sweep agrees with a brute-force count over generated agreements', () => {
  const START = Date.UTC(2031, 2, 1);
  const HORIZON = 4 * DAY;
  const CAPACITY = { low: 600_000_000, medium: 300_000_000 } as const;
  const SHARE = 0.5;
  const pcrf = new SimulatedPcrf({ capacityBps: CAPACITY, warningShare: SHARE });
  const capacityOf = (level: LoadLevel): number => (level === 'busy' ? 0 : CAPACITY[level]);
  const fitsUnder = (bps: number, used: number, limit: number): boolean => bps + used <= limit * (1 + 1e-9);

  /** A small deterministic generator (mulberry32): the same agreements on every run. */
  function random(seed: number): () => number {
    let a = seed;
    return () => {
      a = (a + 0x6d2b79f5) | 0;
      let t = Math.imul(a ^ (a >>> 15), 1 | a);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
  }
  /** Half start and stop on whole hours (shared breakpoints, level changes), half anywhere. */
  function agreements(next: () => number, n: number): Transfer[] {
    return Array.from({ length: n }, () => {
      const onHours = next() < 0.5;
      const startMs = onHours ? START + Math.floor(next() * (HORIZON / HOUR)) * HOUR : START + Math.floor(next() * HORIZON);
      const durationMs = onHours ? (1 + Math.floor(next() * 12)) * HOUR : 60_000 + Math.floor(next() * 12 * HOUR);
      return { startMs, stopMs: startMs + durationMs, bits: next() * 100_000_000 * (durationMs / 1000) };
    });
  }
  function spanIn(next: () => number, maxMs: number): Span {
    const startMs = START - HOUR + Math.floor(next() * (HORIZON + 2 * HOUR));
    return { startMs, stopMs: startMs + 1 + Math.floor(next() * maxMs) };
  }

  /** The old way: cut the span at every hour and every start and stop, and add up the agreements covering each piece. */
  function brutePieces(span: Span, all: readonly Transfer[], without?: Transfer): { startMs: number; stopMs: number; level: LoadLevel; bps: number }[] {
    const cuts = new Set<number>([span.startMs, span.stopMs]);
    for (let h = Math.ceil(span.startMs / HOUR) * HOUR; h < span.stopMs; h += HOUR) cuts.add(h);
    for (const t of all) for (const at of [t.startMs, t.stopMs]) if (at > span.startMs && at < span.stopMs) cuts.add(at);
    const sorted = [...cuts].sort((x, y) => x - y);
    return sorted.slice(0, -1).map((startMs, i) => {
      const stopMs = sorted[i + 1];
      const bps = all.filter(t => t !== without && t.startMs <= startMs && t.stopMs >= stopMs).reduce((sum, t) => sum + bitrateOf(t), 0);
      return { startMs, stopMs, level: loadLevelAt(startMs), bps };
    });
  }
  const brutePeak = (span: Span, all: readonly Transfer[], without?: Transfer): number => Math.max(0, ...brutePieces(span, all, without).map(p => p.bps));
  function bruteOffers(request: Transfer, all: readonly Transfer[], nowMs: number, own?: Transfer, avoid?: Span): OfferedPolicy[] {
    const span = { startMs: Math.max(request.startMs, nowMs), stopMs: request.stopMs };
    if (span.stopMs <= span.startMs) return [];
    const runs: ReturnType<typeof brutePieces>[] = [];
    for (const p of brutePieces(span, all, own)) {
      const run = runs.at(-1);
      if (run && run[0].level === p.level) run.push(p);
      else runs.push([p]);
    }
    const offers: OfferedPolicy[] = [];
    for (const run of runs) {
      const level = run[0].level;
      const w = { startMs: run[0].startMs, stopMs: run[run.length - 1].stopMs };
      if (level === 'busy' || (avoid && w.startMs < avoid.stopMs && avoid.startMs < w.stopMs)) continue;
      const needed = bitrateOf({ ...w, bits: request.bits });
      if (fitsUnder(needed, Math.max(...run.map(p => p.bps)), capacityOf(level))) {
        offers.push({ ...w, level, ratingGroup: DEFAULT_BDT_RATING_GROUPS[level], maxBitrate: Math.ceil(needed) });
      }
    }
    return offers.sort((x, y) => (x.level === y.level ? 0 : x.level === 'low' ? -1 : 1) || x.startMs - y.startMs).slice(0, 3);
  }
  function bruteDegraded(all: readonly Transfer[], nowMs: number, within: Span): Span[] {
    const out: Span[] = [];
    const span = { startMs: Math.max(nowMs, within.startMs), stopMs: within.stopMs };
    if (span.stopMs <= span.startMs) return out;
    for (const p of brutePieces(span, all)) {
      if (p.bps === 0 || fitsUnder(p.bps, 0, capacityOf(p.level) * SHARE)) continue;
      const last = out.at(-1);
      if (last && last.stopMs === p.startMs) out[out.length - 1] = { startMs: last.startMs, stopMs: p.stopMs };
      else out.push({ startMs: p.startMs, stopMs: p.stopMs });
    }
    return out;
  }

  for (const seed of [1, 2, 3]) {
    const next = random(seed);
    const all = agreements(next, 150);
    const load = LoadProfile.of(all);

    it(`seed ${seed}: the highest load of any span, with or without one of the agreements`, () => {
      for (let i = 0; i < 300; i++) {
        const span = spanIn(next, 2 * DAY);
        const without = next() < 0.5 ? all[Math.floor(next() * all.length)] : undefined;
        const expected = brutePeak(span, all, without);
        expect(load.peakOver(span, without), `${JSON.stringify(span)} without ${JSON.stringify(without)}`).to.be.closeTo(expected, 1e-6 * Math.max(1, expected));
      }
    });

    it(`seed ${seed}: the loaded pieces of any span`, () => {
      for (let i = 0; i < 100; i++) {
        const span = spanIn(next, DAY);
        // Hour cuts aside, the brute force cuts where the profile does.
        const brute = brutePieces(span, all).filter(p => p.bps > 0);
        const merged: { startMs: number; stopMs: number; bps: number }[] = [];
        for (const p of brute) {
          const last = merged.at(-1);
          if (last && last.stopMs === p.startMs && all.every(t => t.startMs !== p.startMs && t.stopMs !== p.startMs)) last.stopMs = p.stopMs;
          else merged.push({ startMs: p.startMs, stopMs: p.stopMs, bps: p.bps });
        }
        const swept = [...load.busyPieces(span)];
        expect(swept.map(p => [p.startMs, p.stopMs])).to.deep.equal(merged.map(p => [p.startMs, p.stopMs]));
        swept.forEach((p, k) => expect(p.bps).to.be.closeTo(merged[k].bps, 1e-6 * merged[k].bps));
      }
    });

    it(`seed ${seed}: offers, selections and degraded spans as the brute force finds them`, () => {
      let offered = 0;
      let refused = 0;
      let degraded = 0;
      for (let i = 0; i < 150; i++) {
        const nowMs = START + Math.floor(next() * HORIZON);
        const desired = spanIn(next, 7 * DAY);
        const request = { ...desired, bits: next() * 400_000_000 * 5 * 3600 };
        const own = next() < 0.3 ? all[Math.floor(next() * all.length)] : undefined;
        const avoid = next() < 0.3 ? spanIn(next, 12 * HOUR) : undefined;
        const offers = pcrf.offer(request, load, nowMs, { ...(own ? { own } : {}), ...(avoid ? { avoid } : {}) });
        expect(offers).to.deep.equal(bruteOffers(request, all, nowMs, own, avoid));
        if (offers.length > 0) offered++;
        else refused++;

        const transfer = { ...spanIn(next, 8 * HOUR), bits: next() * 300_000_000 * 3600 };
        const span = { startMs: Math.max(transfer.startMs, nowMs), stopMs: transfer.stopMs };
        const bruteFits = span.stopMs > span.startMs && brutePieces(span, all, own).every(p => fitsUnder(bitrateOf(transfer), p.bps, capacityOf(p.level)));
        expect(pcrf.fits(transfer, load, nowMs, own)).to.equal(bruteFits);

        const spans = pcrf.degraded(load, nowMs, desired);
        expect(spans).to.deep.equal(bruteDegraded(all, nowMs, desired));
        if (spans.length > 0) degraded++;
      }
      // The generated load makes every answer come up, so each comparison can fail.
      expect(
        [offered, refused, degraded].every(n => n > 0),
        JSON.stringify({ offered, refused, degraded }),
      ).to.equal(true);
    });
  }

  it('the defaults of the simulated PCRF warn past four fifths of the capacity', () => {
    expect(DEFAULT_BDT_WARNING_SHARE).to.equal(0.8);
    const nightStart = Date.UTC(2031, 2, 2, 1);
    const fiveHours = (share: number): Transfer => ({ startMs: nightStart, stopMs: nightStart + 5 * HOUR, bits: share * DEFAULT_BDT_CAPACITY_BPS.low * 5 * 3600 });
    const defaults = new SimulatedPcrf();
    const within = { startMs: nightStart, stopMs: nightStart + 5 * HOUR };
    expect(defaults.degraded(LoadProfile.of([fiveHours(0.5), fiveHours(0.29)]), START, within)).to.deep.equal([]);
    expect(defaults.degraded(LoadProfile.of([fiveHours(0.5), fiveHours(0.31)]), START, within)).to.deep.equal([within]);
  });
});
