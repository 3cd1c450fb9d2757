import { expect } from 'chai';
import { eventuallyValue } from '@aese/testing';
import { loadT8Schemas } from '@aese/t8-openapi';
import type { T8Schemas } from '@aese/t8-openapi';
import type { NotificationRequested } from '@aese/protos/events/v1';
import { startTestMesh } from '../../../test/support/mesh.ts';
import type { TestMesh } from '../../../test/support/mesh.ts';
import { DEVICE_TRIGGER_CATEGORY, DEVICE_TRIGGERING_API, MAX_TRIGGER_PAYLOAD_BYTES, MAX_VALIDITY_PERIOD_S } from '../src/modules/device-triggering/index.ts';
import { deliveryReportEvent } from '../src/modules/device-triggering/sms-centre.ts';
import type { FinalResult } from '../src/modules/device-triggering/sms-centre.ts';
import { simulatedImsi, simulatedUeIdentifiers } from '../src/network/simulated-core.ts';
import type { RunningCapabilityExposure } from '../src/server.ts';
import { API_ROOT, AS_DESTINATION, edgeClient, NotificationWatcher, seenBodies, startInstance, t8, TestPolicy } from './support.ts';
import type { T8Answer, T8Call } from './support.ts';

const BASE = `/${DEVICE_TRIGGERING_API}/v1`;
/** The simulated SMS-SC's delay before its first attempt, short for the tests. */
const DELAY_MS = 600;
const GHOST = 'ghost@scef.test';
type Ue = ReturnType<typeof simulatedUeIdentifiers>;
type Json = Record<string, unknown>;

describe(`${DEVICE_TRIGGERING_API} through the mesh`, function () {
  this.timeout(60_000);
  let mesh: TestMesh;
  let schemas: T8Schemas;
  let svc: RunningCapabilityExposure;
  let client: ReturnType<typeof edgeClient>;
  let watcher: NotificationWatcher;
  const policy = new TestPolicy();
  const logs: string[] = [];
  /** A UE the network can reach now, one it cannot, and one nobody was granted (the network stays still: no tick). */
  let reachable: Ue;
  let unreachable: Ue;
  let ungranted: Ue;

  const collection = (scsAsId = 'as1'): string => `${BASE}/${scsAsId}/transactions`;
  const call = (c: T8Call): Promise<T8Answer> => t8(client, { scopes: [DEVICE_TRIGGERING_API], ...c });
  const trigger = (ue: Ue, extra: Json = {}): Json => ({
    externalId: ue.externalId,
    validityPeriod: 3600,
    priority: 'NO_PRIORITY',
    applicationPortId: 9000,
    triggerPayload: Buffer.from('wake up').toString('base64'),
    notificationDestination: AS_DESTINATION,
    ...extra,
  });
  const valid = (schema: string, body: unknown, direction: 'request' | 'response' = 'response'): void => {
    const v = schemas.validator('device-triggering', schema, direction);
    expect(v(body), `${schema}: ${JSON.stringify(v.violations())}`).to.equal(true);
  };
  const problem = (a: T8Answer, status: number, cause: string): Json => {
    expect(a.status, a.text).to.equal(status);
    expect(a.headers['content-type']).to.equal('application/problem+json');
    expect(schemas.validator('common-data', 'ProblemDetails', 'response')(a.json), a.text).to.equal(true);
    expect((a.json as Json)['cause']).to.equal(cause);
    expect((a.json as Json)['status']).to.equal(status);
    return a.json as Json;
  };
  const create = async (body: Json): Promise<{ id: string; item: string; self: string; created: Json }> => {
    const a = await call({ method: 'POST', path: collection(), body });
    expect(a.status, a.text).to.equal(201);
    const self = a.headers['location'];
    return { id: self.split('/').pop()!, item: self.slice(API_ROOT.length), self, created: a.json as Json };
  };
  const read = async (item: string): Promise<Json> => {
    const a = await call({ method: 'GET', path: item });
    expect(a.status, a.text).to.equal(200);
    return a.json as Json;
  };
  const listed = async (): Promise<string[]> => {
    const a = await call({ method: 'GET', path: collection() });
    expect(a.status, a.text).to.equal(200);
    return (a.json as Json[]).map(t => t['self'] as string);
  };
  const reportOf = async (id: string, withinMs = 10_000): Promise<NotificationRequested> => eventuallyValue(() => watcher.for(id)[0], withinMs, `a delivery report of ${id}`);
  const report = (id: string, submission: number, result: FinalResult, scsAsId = 'as1') =>
    svc.network.emit(deliveryReportEvent({ scsAsId, transactionId: id, submission, result }));
  const isReachable = async (ue: Ue): Promise<boolean> => (await svc.network.reachability((await svc.network.findUe({ externalId: ue.externalId }))!)).reachable;
  /** Waits past the SMS-SC's delay and a few of its polls. */
  const pastTheDelay = () => new Promise(r => setTimeout(r, DELAY_MS + 800));

  before(async () => {
    schemas = await loadT8Schemas();
    mesh = await startTestMesh({ extraEnv: { SIM_TICK_MS: '0' } });
    svc = await startInstance(mesh, logs, policy.decide, { SIM_SMS_DELIVERY_DELAY_MS: String(DELAY_MS) });
    client = edgeClient(mesh, svc.port);
    watcher = await NotificationWatcher.open(mesh.nats.url, mesh.stateDir, 'as1');
    const ues = Array.from({ length: 40 }, (_, i) => simulatedUeIdentifiers(i + 1));
    const states = await Promise.all(ues.map(isReachable));
    reachable = ues[states.indexOf(true)];
    unreachable = ues[states.indexOf(false)];
    ungranted = ues.find(u => u !== reachable && u !== unreachable)!;
    const targets = [`externalId:${reachable.externalId}`, `externalId:${unreachable.externalId}`, `msisdn:${unreachable.msisdn}`, `externalId:${GHOST}`];
    policy.grants.set('as1', { targets, categories: [DEVICE_TRIGGER_CATEGORY] });
    policy.grants.set('as2', { targets, categories: [DEVICE_TRIGGER_CATEGORY] });
  });

  after(async () => {
    client?.close();
    await watcher?.close();
    await svc?.stop();
    await mesh?.stop();
  });

  it('creates, reads, lists, replaces (PUT) and modifies (PATCH, application/json) a pending trigger, then recalls it; bodies match the 3GPP schemas', async () => {
    const body = trigger(unreachable);
    valid('DeviceTriggering', body, 'request');
    const { id, item, self, created } = await create(body);
    valid('DeviceTriggering', created);
    expect(created).to.deep.equal({ ...body, self, deliveryResult: 'TRIGGERED' });
    expect(self).to.match(new RegExp(`^${API_ROOT}${collection()}/[0-9a-f-]{36}$`));
    expect(await read(item)).to.deep.equal(created);
    expect(await listed()).to.include(self);

    const replacement = { ...trigger(unreachable, { triggerPayload: Buffer.from('wake up now').toString('base64'), applicationPortId: 9001 }), self };
    const put = await call({ method: 'PUT', path: item, body: replacement });
    expect(put.status, put.text).to.equal(200);
    valid('DeviceTriggering', put.json);
    expect(put.json).to.deep.equal({ ...replacement, deliveryResult: 'REPLACED' });

    const change = { priority: 'PRIORITY', validityPeriod: 1800 };
    valid('DeviceTriggeringPatch', change, 'request');
    const patched = await call({ method: 'PATCH', path: item, body: change });
    expect(patched.status, patched.text).to.equal(200);
    valid('DeviceTriggering', patched.json);
    expect(patched.json).to.deep.equal({ ...replacement, ...change, deliveryResult: 'REPLACED' });
    expect(await read(item)).to.deep.equal(patched.json);
    // The API file's PATCH media type is application/json; a merge patch is another operation.
    problem(await call({ method: 'PATCH', path: item, body: change, contentType: 'application/merge-patch+json' }), 415, 'UNSUPPORTED_MEDIA_TYPE');
    problem(await call({ method: 'PATCH', path: item, body: { deliveryResult: 'SUCCESS' } }), 400, 'INVALID_PARAMETER');

    expect(watcher.for(id), 'no report while it is pending').to.have.length(0);
    const removed = await call({ method: 'DELETE', path: item });
    expect([removed.status, removed.text]).to.deep.equal([204, '']);
    problem(await call({ method: 'GET', path: item }), 404, 'RESOURCE_NOT_FOUND');
    problem(await call({ method: 'DELETE', path: item }), 404, 'RESOURCE_NOT_FOUND');
    expect(await listed()).not.to.include(self);
  });

  it('delivers to a reachable UE after the SMS-SC delay: the transaction ends SUCCESS and its AS is notified, authorized again', async () => {
    const before = Date.now();
    const { id, item, self, created } = await create(trigger(reachable));
    expect(created['deliveryResult']).to.equal('TRIGGERED');
    const n = await reportOf(id);
    expect(Number(n.createdAtMs)).to.be.at.least(before + DELAY_MS);
    expect(n).to.deep.include({ scsAsId: 'as1', api: DEVICE_TRIGGERING_API, destination: AS_DESTINATION });
    const body = JSON.parse(Buffer.from(n.body).toString('utf8')) as Json;
    valid('DeviceTriggeringDeliveryReportNotification', body);
    expect(body).to.deep.equal({ transaction: self, result: 'SUCCESS' });
    expect(await read(item)).to.deep.equal({ ...created, deliveryResult: 'SUCCESS' });
    expect(policy.asked).to.deep.include({
      scsAsId: 'as1',
      api: DEVICE_TRIGGERING_API,
      operation: 'notify',
      dataCategories: [DEVICE_TRIGGER_CATEGORY],
      targets: [`externalId:${reachable.externalId}`],
      pathScsAsId: 'as1',
    });
    await pastTheDelay();
    expect(watcher.for(id), 'one report only').to.have.length(1);

    // An ended trigger cannot be replaced; the transaction stays as it ended, and may be removed.
    problem(await call({ method: 'PUT', path: item, body: { ...trigger(reachable), self } }), 409, 'TRIGGER_NOT_PENDING');
    problem(await call({ method: 'PATCH', path: item, body: { priority: 'PRIORITY' } }), 409, 'TRIGGER_NOT_PENDING');
    expect(await read(item)).to.deep.equal({ ...created, deliveryResult: 'SUCCESS' });
    expect((await call({ method: 'DELETE', path: item })).status).to.equal(204);
  });

  it('keeps a trigger for an unreachable UE until its validity period runs out: EXPIRED', async () => {
    const before = Date.now();
    const { id, item, self } = await create(trigger(unreachable, { msisdn: unreachable.msisdn, externalId: undefined, validityPeriod: 1 }));
    const n = await reportOf(id);
    expect(Number(n.createdAtMs)).to.be.at.least(before + 1000);
    expect(JSON.parse(Buffer.from(n.body).toString('utf8'))).to.deep.equal({ transaction: self, result: 'EXPIRED' });
    expect((await read(item))['deliveryResult']).to.equal('EXPIRED');
    expect(policy.asked).to.deep.include({
      scsAsId: 'as1',
      api: DEVICE_TRIGGERING_API,
      operation: 'notify',
      dataCategories: [DEVICE_TRIGGER_CATEGORY],
      targets: [`msisdn:${unreachable.msisdn}`],
      pathScsAsId: 'as1',
    });
  });

  it('recalls a pending trigger on DELETE: no report comes for it, not even a late one', async () => {
    const { id, item } = await create(trigger(unreachable, { validityPeriod: 1 }));
    expect((await call({ method: 'DELETE', path: item })).status).to.equal(204);
    await report(id, 1, 'SUCCESS');
    await pastTheDelay();
    await watcher.settle();
    expect(watcher.for(id)).to.have.length(0);
    problem(await call({ method: 'GET', path: item }), 404, 'RESOURCE_NOT_FOUND');
  });

  it('ends a submission once: a report on a replaced submission, or naming another AS, changes nothing', async () => {
    const { id, item, self } = await create(trigger(unreachable));
    const put = await call({ method: 'PUT', path: item, body: { ...trigger(unreachable, { applicationPortId: 9002 }), self } });
    expect(put.status, put.text).to.equal(200);
    await report(id, 1, 'SUCCESS');
    await report(id, 2, 'SUCCESS', 'as2');
    await watcher.settle();
    expect(watcher.for(id)).to.have.length(0);
    expect((await read(item))['deliveryResult']).to.equal('REPLACED');

    await report(id, 2, 'SUCCESS');
    await report(id, 2, 'SUCCESS');
    await report(id, 2, 'EXPIRED');
    await watcher.settle();
    expect(watcher.for(id).map(n => JSON.parse(Buffer.from(n.body).toString('utf8')) as Json)).to.deep.equal([{ transaction: self, result: 'SUCCESS' }]);
    expect((await read(item))['deliveryResult']).to.equal('SUCCESS');
  });

  it('notifies again a report handled again (a replica died mid-way), so its notification keeps its id; another report does not', async () => {
    const { id, self } = await create(trigger(unreachable));
    const module = svc.registry.list().find(m => m.name === DEVICE_TRIGGERING_API)!;
    const event = { ...deliveryReportEvent({ scsAsId: 'as1', transactionId: id, submission: 1, result: 'SUCCESS' }), kind: 'capability' as const, atMs: Date.now() };
    const first = await module.onNetworkEvent!({ ...event, id: 'event-1' });
    const again = await module.onNetworkEvent!({ ...event, id: 'event-1' });
    const other = await module.onNetworkEvent!({ ...event, id: 'event-2' });
    expect(first.map(p => p.body)).to.deep.equal([{ transaction: self, result: 'SUCCESS' }]);
    expect(again.map(p => [p.record.id, p.body])).to.deep.equal([[id, { transaction: self, result: 'SUCCESS' }]]);
    expect(other).to.deep.equal([]);
  });

  it('sends no report the AS is no longer granted: the notification is authorized again and dropped', async () => {
    const { id } = await create(trigger(unreachable));
    const grant = policy.grants.get('as1')!;
    policy.grants.set('as1', { ...grant, categories: [] });
    try {
      await report(id, 1, 'SUCCESS');
      await watcher.settle();
    } finally {
      policy.grants.set('as1', grant);
    }
    expect(watcher.for(id)).to.have.length(0);
    expect(logs.some(l => l.includes('notification dropped') && l.includes('denied by policy') && l.includes(id))).to.equal(true);
  });

  it('decides a pending trigger again when it would be delivered: with the grant withdrawn it ends FAILURE, and its report is decided again (dropped)', async () => {
    const target = `externalId:${reachable.externalId}`;
    const { id, item, created } = await create(trigger(reachable));
    const askedBefore = policy.asked.length;
    const grant = policy.grants.get('as1')!;
    policy.grants.set('as1', { ...grant, targets: grant.targets.filter(t => t !== target) });
    try {
      await eventuallyValue(() => logs.find(l => l.includes('notification dropped') && l.includes(id)), 10_000, `the dropped report of ${id}`);
    } finally {
      policy.grants.set('as1', grant);
    }
    expect(await isReachable(reachable), 'the UE could have been reached').to.equal(true);
    // Not delivered: the trigger failed for good, and no report reached the AS.
    expect(await read(item)).to.deep.equal({ ...created, deliveryResult: 'FAILURE' });
    const asked = policy.asked.slice(askedBefore).filter(q => q.targets.includes(target));
    expect(asked.map(q => q.operation)).to.include.members(['create', 'notify']);
    expect(asked.find(q => q.operation === 'create')).to.deep.equal({
      scsAsId: 'as1',
      api: DEVICE_TRIGGERING_API,
      operation: 'create',
      dataCategories: [DEVICE_TRIGGER_CATEGORY],
      targets: [target],
      pathScsAsId: 'as1',
    });
    await pastTheDelay();
    await watcher.settle();
    expect(watcher.for(id)).to.have.length(0);
  });

  it('a trigger refused at delivery is reported FAILURE when the notification itself is allowed', async () => {
    const target = `externalId:${reachable.externalId}`;
    const { id, item, self, created } = await create(trigger(reachable));
    const evaluate = policy.evaluate.bind(policy);
    // The AS may no longer have triggers sent to this UE, yet may still hear how they ended.
    policy.evaluate = q =>
      q.operation !== 'notify' && q.targets.includes(target) ? { allowed: false, obligations: [], policyVersion: 8, denyCause: 'TARGET_NOT_GRANTED' } : evaluate(q);
    let n: NotificationRequested;
    try {
      n = await reportOf(id);
    } finally {
      policy.evaluate = evaluate;
    }
    expect(JSON.parse(Buffer.from(n.body).toString('utf8'))).to.deep.equal({ transaction: self, result: 'FAILURE' });
    expect(await read(item)).to.deep.equal({ ...created, deliveryResult: 'FAILURE' });
  });

  it('a trigger due while authorization does not answer waits (still TRIGGERED), and is delivered once it answers again', async () => {
    const target = `externalId:${reachable.externalId}`;
    const { id, item, created } = await create(trigger(reachable));
    const evaluate = policy.evaluate.bind(policy);
    // Only the decision taken again at delivery fails: the outage is the decision point's, not the grant's.
    policy.evaluate = q => {
      if (q.operation === 'create' && q.targets.includes(target)) throw new Error('authorization unreachable');
      return evaluate(q);
    };
    try {
      await pastTheDelay();
      expect(await isReachable(reachable), 'the UE could have been reached').to.equal(true);
      expect(await read(item), 'not failed for an outage').to.deep.equal(created);
      expect(watcher.for(id)).to.have.length(0);
    } finally {
      policy.evaluate = evaluate;
    }
    const n = await reportOf(id);
    expect(JSON.parse(Buffer.from(n.body).toString('utf8'))).to.deep.include({ result: 'SUCCESS' });
    expect(await read(item)).to.deep.equal({ ...created, deliveryResult: 'SUCCESS' });
  });

  it('another AS gets exactly the 404 of an unknown id, for every method, and the transaction is unchanged', async () => {
    const { id, item, created } = await create(trigger(unreachable));
    const attempts: Omit<T8Call, 'path'>[] = [
      { method: 'GET' },
      { method: 'PUT', body: trigger(unreachable) },
      { method: 'PATCH', body: { priority: 'PRIORITY' } },
      { method: 'DELETE' },
    ];
    for (const attempt of attempts) {
      const theirs = await call({ ...attempt, scsAsId: 'as2', path: `${collection('as2')}/${id}` });
      const nobodys = await call({ ...attempt, scsAsId: 'as2', path: `${collection('as2')}/${crypto.randomUUID()}` });
      problem(theirs, 404, 'RESOURCE_NOT_FOUND');
      expect(theirs.text, attempt.method).to.equal(nobodys.text);
    }
    problem(await call({ scsAsId: 'as2', method: 'GET', path: item }), 403, 'SCS_AS_ID_MISMATCH');
    expect(await read(item)).to.deep.equal(created);
  });

  it('refuses a UE the AS was not granted with 403, storing nothing and echoing no identifier', async () => {
    const before = await listed();
    const refused = await call({ method: 'POST', path: collection(), body: trigger(ungranted) });
    problem(refused, 403, 'TARGET_NOT_GRANTED');
    expect(refused.headers['location']).to.equal(undefined);
    expect(refused.text).not.to.include(ungranted.externalId);
    expect(await listed()).to.deep.equal(before);
    problem(await call({ method: 'POST', path: collection(), body: trigger(reachable), scopes: ['3gpp-monitoring-event'] }), 403, 'insufficient_scope');
  });

  it("refuses with 400 and a cause what breaks the API's rules, storing nothing", async () => {
    const before = await listed();
    const cases: { body: Json; cause: string; param?: string }[] = [
      { body: trigger(reachable, { priority: 'URGENT' }), cause: 'INVALID_PARAMETER', param: '/priority' },
      { body: trigger(reachable, { triggerPayload: 'not base64!' }), cause: 'INVALID_PARAMETER', param: '/triggerPayload' },
      { body: trigger(reachable, { triggerPayload: '' }), cause: 'INVALID_PARAMETER', param: '/triggerPayload' },
      { body: trigger(reachable, { triggerPayload: Buffer.alloc(MAX_TRIGGER_PAYLOAD_BYTES + 1).toString('base64') }), cause: 'INVALID_PARAMETER', param: '/triggerPayload' },
      { body: trigger(reachable, { validityPeriod: MAX_VALIDITY_PERIOD_S + 1 }), cause: 'INVALID_PARAMETER', param: '/validityPeriod' },
      { body: trigger(reachable, { deliveryResult: 'SUCCESS' }), cause: 'INVALID_PARAMETER', param: '/deliveryResult' },
      { body: trigger(reachable, { externalId: 'no-domain' }), cause: 'INVALID_PARAMETER', param: '/externalId' },
      { body: trigger(reachable, { msisdn: reachable.msisdn }), cause: 'INVALID_PARAMETER' },
      { body: trigger(reachable, { notificationDestination: 'http://as1.example.com/notify' }), cause: 'INVALID_NOTIFICATION_DESTINATION', param: '/notificationDestination' },
      { body: trigger(reachable, { externalId: GHOST }), cause: 'UNKNOWN_UE', param: '/externalId' },
    ];
    for (const c of cases) {
      const p = problem(await call({ method: 'POST', path: collection(), body: c.body }), 400, c.cause);
      if (c.param)
        expect(
          (p['invalidParams'] as Json[]).map(x => x['param']),
          JSON.stringify(c.body),
        ).to.deep.equal([c.param]);
    }
    expect(await listed()).to.deep.equal(before);

    // One SMS of payload is fine; the UE of a transaction is fixed once it exists.
    const { item, self, created } = await create(trigger(unreachable, { triggerPayload: Buffer.alloc(MAX_TRIGGER_PAYLOAD_BYTES, 7).toString('base64') }));
    const moved = { ...trigger(unreachable, { externalId: undefined, msisdn: unreachable.msisdn }), self };
    problem(await call({ method: 'PUT', path: item, body: moved }), 400, 'UE_IDENTIFIER_IMMUTABLE');
    expect(await read(item)).to.deep.equal(created);
  });

  it('sends the test notification an AS asks for', async () => {
    const { id, self } = await create(trigger(unreachable, { requestTestNotification: true }));
    const n = await reportOf(id);
    expect(JSON.parse(Buffer.from(n.body).toString('utf8'))).to.deep.equal({ subscription: self });
  });

  it('delivers a waiting trigger as soon as its UE becomes reachable', async () => {
    const { id, self } = await create(trigger(unreachable));
    await pastTheDelay();
    expect(watcher.for(id)).to.have.length(0);
    for (let i = 0; i < 500 && !(await isReachable(unreachable)); i++) await svc.simulator!.advance();
    expect(await isReachable(unreachable), 'the UE became reachable').to.equal(true);
    const n = await reportOf(id);
    expect(JSON.parse(Buffer.from(n.body).toString('utf8'))).to.deep.equal({ transaction: self, result: 'SUCCESS' });
  });

  it('never tells an IMSI, in answers or notifications', () => {
    const all = seenBodies.join('\n');
    for (let i = 1; i <= 40; i++) expect(all).not.to.include(simulatedImsi(i));
  });
});
