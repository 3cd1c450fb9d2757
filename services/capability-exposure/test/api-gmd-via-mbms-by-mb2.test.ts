import { expect } from 'chai';
import { randomUUID } from 'node:crypto';
import { eventually } from '@aese/testing';
import { loadT8Schemas } from '@aese/t8-openapi';
import type { T8Schemas } from '@aese/t8-openapi';
import { startTestMesh } from '../../../test/support/mesh.ts';
import type { TestMesh } from '../../../test/support/mesh.ts';
import type { Decide } from '../src/domain/decision.ts';
import { Invoker } from '../src/domain/invoke.ts';
import { MemoryResourceStore } from '../src/domain/resource-store.ts';
import { createGmdViaMbmsByMb2Module, GMD_VIA_MBMS_BY_MB2_API } from '../src/modules/gmd-via-mbms-by-mb2/index.ts';
import { allocationId, tmgiOfAllocation } from '../src/modules/gmd-via-mbms-by-mb2/tmgi.ts';
import { BM_SC_PLMN, MAX_TMGI_DRAWS, SimulatedBmSc, TMGI_ALLOCATION_MS, tmgiString } from '../src/modules/mbms/bm-sc.ts';
import { GROUP_MESSAGE_CATEGORY } from '../src/modules/mbms/deliveries.ts';
import { ModuleRegistry } from '../src/modules/registry.ts';
import { simulatedGroupId, SimulatedCore } from '../src/network/simulated-core.ts';
import type { RunningCapabilityExposure } from '../src/server.ts';
import { base64, setGroupReachable, sleep, storedIds } from './mbms-support.ts';
import { API_ROOT, AS_DESTINATION, edgeClient, NotificationWatcher, startInstance, t8, testResolver, TestPolicy } from './support.ts';
import type { T8Answer, T8Call } from './support.ts';

const API = GMD_VIA_MBMS_BY_MB2_API;
const BASE = `/${API}/v1`;
const DELIVERIES = `${API}-deliveries`;
const GROUP1 = simulatedGroupId(1);
const GROUP2 = simulatedGroupId(2);
const GROUP3 = simulatedGroupId(3);
const UNKNOWN_GROUP = 'group99@scef.test';
const UUID_WITH_TMGI = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{6}00101f$/;

describe(`${API} through the mesh`, function () {
  this.timeout(60_000);
  let mesh: TestMesh;
  let schemas: T8Schemas;
  let svc: RunningCapabilityExposure;
  let client: ReturnType<typeof edgeClient>;
  let watcher: NotificationWatcher;
  const policy = new TestPolicy();
  const logs: string[] = [];
  const allocations = (scsAsId = 'as1'): string => `${BASE}/${scsAsId}/tmgi-allocation`;
  const call = (c: T8Call): Promise<T8Answer> => t8(client, { scopes: [API], ...c });
  const pathOf = (a: T8Answer): string => a.headers['location'].slice(API_ROOT.length);
  const valid = (schema: string, body: unknown, direction: 'request' | 'response' = 'response'): void => {
    const v = schemas.validator('gmd-via-mbms-by-mb2', schema, direction);
    expect(v(body), `${schema}: ${JSON.stringify(v.violations())}`).to.equal(true);
  };
  const problem = (a: T8Answer, status: number, cause: string, param?: string): void => {
    expect(a.status, a.text).to.equal(status);
    expect(a.headers['content-type']).to.equal('application/problem+json');
    const v = schemas.validator('common-data', 'ProblemDetails', 'response');
    expect(v(a.json), JSON.stringify(v.violations())).to.equal(true);
    expect(a.json).to.include({ status, cause });
    if (param) expect((a.json as { invalidParams: { param: string }[] }).invalidParams.map(p => p.param)).to.deep.equal([param]);
  };
  const allocate = async (externalGroupId = GROUP1, scsAsId = 'as1'): Promise<T8Answer> => {
    const a = await call({ scsAsId, method: 'POST', path: allocations(scsAsId), body: { externalGroupId } });
    expect(a.status, a.text).to.equal(201);
    return a;
  };
  const delivery = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({
    notificationDestination: AS_DESTINATION,
    externalGroupId: GROUP1,
    groupMessagePayload: base64('hello group'),
    ...extra,
  });
  const notificationsOf = (id: string) => watcher.for(id).map(n => JSON.parse(Buffer.from(n.body).toString('utf8')) as { transaction: string; deliveryTriggerStatus: boolean });
  const waitForNotification = (id: string, count = 1) =>
    watcher.waitFor(
      n => n.subscriptionId === id && watcher.for(id).length >= count,
      () => sleep(50),
    );

  before(async () => {
    schemas = await loadT8Schemas();
    mesh = await startTestMesh({ extraEnv: { SIM_TICK_MS: '0' } });
    const targets = [GROUP1, GROUP3, UNKNOWN_GROUP].map(g => `externalGroupId:${g}`);
    policy.grants.set('as1', { targets, categories: [GROUP_MESSAGE_CATEGORY] });
    policy.grants.set('as2', { targets, categories: [GROUP_MESSAGE_CATEGORY] });
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

  describe('TMGI allocation', () => {
    it('allocates a TMGI for a group: 201, Location = self ending with the TMGI, an expiry an hour ahead, decided on the group', async () => {
      valid('TMGIAllocation', { externalGroupId: GROUP1 }, 'request');
      const before = Date.now();
      const a = await allocate();
      valid('TMGIAllocation', a.json);
      const body = a.json as { self: string; externalGroupId: string; tmgiExpiration: string };
      expect(body.self).to.equal(a.headers['location']);
      const id = body.self.split('/').pop()!;
      expect(body.self).to.equal(`${API_ROOT}${allocations()}/${id}`);
      expect(id).to.match(UUID_WITH_TMGI);
      expect(body.externalGroupId).to.equal(GROUP1);
      const expiry = Date.parse(body.tmgiExpiration);
      expect(expiry).to.be.within(before + TMGI_ALLOCATION_MS - 1000, Date.now() + TMGI_ALLOCATION_MS + 1000);
      expect(a.res.dataCategories).to.deep.equal([GROUP_MESSAGE_CATEGORY]);
      expect(policy.asked.filter(q => q.operation === 'create').at(-1)).to.deep.equal({
        scsAsId: 'as1',
        api: API,
        operation: 'create',
        dataCategories: [GROUP_MESSAGE_CATEGORY],
        targets: [`externalGroupId:${GROUP1}`],
        pathScsAsId: 'as1',
      });
      expect(await storedIds(mesh, API, 'as1')).to.include(id);
    });

    it('gives every allocation its own TMGI', async () => {
      const ids = await Promise.all(
        [1, 2, 3, 4].map(async () =>
          pathOf(await allocate())
            .split('/')
            .pop()!,
        ),
      );
      expect(new Set(ids.map(tmgiOfAllocation)).size).to.equal(4);
    });

    it('reads it; PUT and PATCH renew the expiry and keep the TMGI; DELETE deallocates it', async () => {
      const a = await allocate();
      const path = pathOf(a);
      const got = await call({ method: 'GET', path });
      expect(got.status, got.text).to.equal(200);
      expect(got.json).to.deep.equal(a.json);
      await sleep(20);
      // The resource as read, sent back (tmgiExpiration included) with a location area.
      const put = await call({ method: 'PUT', path, body: { ...(a.json as object), mbmsLocArea: { mbmsServiceAreaId: ['0001'] } } });
      expect(put.status, put.text).to.equal(200);
      valid('TMGIAllocation', put.json);
      const renewed = put.json as { self: string; tmgiExpiration: string; mbmsLocArea: unknown };
      expect(renewed.self).to.equal((a.json as { self: string }).self);
      expect(renewed.mbmsLocArea).to.deep.equal({ mbmsServiceAreaId: ['0001'] });
      expect(Date.parse(renewed.tmgiExpiration)).to.be.above(Date.parse((a.json as { tmgiExpiration: string }).tmgiExpiration));
      await sleep(20);
      valid('TMGIAllocationPatch', { mbmsLocArea: { cellId: ['00101000001'] } }, 'request');
      const patched = await call({ method: 'PATCH', path, contentType: 'application/merge-patch+json', body: { mbmsLocArea: { cellId: ['00101000001'] } } });
      expect(patched.status, patched.text).to.equal(200);
      valid('TMGIAllocation', patched.json);
      // A merge patch merges the area: the service area of the PUT stays.
      expect(patched.json).to.deep.include({ mbmsLocArea: { mbmsServiceAreaId: ['0001'], cellId: ['00101000001'] }, externalGroupId: GROUP1 });
      expect(Date.parse((patched.json as { tmgiExpiration: string }).tmgiExpiration)).to.be.above(Date.parse(renewed.tmgiExpiration));
      expect((await call({ method: 'GET', path })).json).to.deep.equal(patched.json);
      const removed = await call({ method: 'DELETE', path });
      expect([removed.status, removed.text]).to.deep.equal([204, '']);
      problem(await call({ method: 'GET', path }), 404, 'RESOURCE_NOT_FOUND');
      expect(await storedIds(mesh, API, 'as1')).not.to.include(path.split('/').pop());
    });

    it('does not serve the collection GETs, whose official answer is one resource, not a list (405 with Allow)', async () => {
      const a = await call({ method: 'GET', path: allocations() });
      problem(a, 405, 'METHOD_NOT_ALLOWED');
      expect(a.headers['allow']).to.equal('POST');
      const d = await call({ method: 'GET', path: `${pathOf(await allocate())}/delivery-via-mbms` });
      problem(d, 405, 'METHOD_NOT_ALLOWED');
      expect(d.headers['allow']).to.equal('POST');
    });

    it('refuses an allocation without a group, with a malformed or unknown one, or setting its expiry (400, nothing stored)', async () => {
      const before = await storedIds(mesh, API, 'as1');
      problem(await call({ method: 'POST', path: allocations(), body: {} }), 400, 'UE_IDENTIFIER_REQUIRED', '/externalGroupId');
      problem(await call({ method: 'POST', path: allocations(), body: { externalGroupId: 'no-domain' } }), 400, 'INVALID_PARAMETER', '/externalGroupId');
      problem(await call({ method: 'POST', path: allocations(), body: { externalGroupId: UNKNOWN_GROUP } }), 400, 'UNKNOWN_UE', '/externalGroupId');
      const expiry = new Date(Date.now() + 10 * TMGI_ALLOCATION_MS).toISOString();
      problem(await call({ method: 'POST', path: allocations(), body: { externalGroupId: GROUP1, tmgiExpiration: expiry } }), 400, 'INVALID_PARAMETER', '/tmgiExpiration');
      const path = pathOf(await allocate());
      const held = (await call({ method: 'GET', path })).json as Record<string, unknown>;
      problem(await call({ method: 'PUT', path, body: { ...held, tmgiExpiration: expiry } }), 400, 'INVALID_PARAMETER', '/tmgiExpiration');
      problem(await call({ method: 'POST', path: allocations(), body: { externalGroupId: GROUP1, self: `${API_ROOT}${path}` } }), 400, 'RESOURCE_ID_MISMATCH', '/self');
      expect((await call({ method: 'GET', path })).json).to.deep.equal(held);
      expect(await storedIds(mesh, API, 'as1')).to.deep.equal([...before, path.split('/').pop()!].sort());
    });

    it('keeps the group of an allocation: PUT or PATCH naming another is refused (400 UE_IDENTIFIER_IMMUTABLE), nothing changes', async () => {
      const a = await allocate();
      const path = pathOf(a);
      problem(await call({ method: 'PUT', path, body: { ...(a.json as object), externalGroupId: GROUP3 } }), 400, 'UE_IDENTIFIER_IMMUTABLE', '/externalGroupId');
      valid('TMGIAllocationPatch', { externalGroupId: GROUP3 }, 'request');
      problem(
        await call({ method: 'PATCH', path, contentType: 'application/merge-patch+json', body: { externalGroupId: GROUP3 } }),
        400,
        'UE_IDENTIFIER_IMMUTABLE',
        '/externalGroupId',
      );
      expect((await call({ method: 'GET', path })).json).to.deep.equal(a.json);
    });

    it('refuses a group the AS was not granted (403, nothing stored, the group not echoed)', async () => {
      const before = await storedIds(mesh, API, 'as1');
      const a = await call({ method: 'POST', path: allocations(), body: { externalGroupId: GROUP2 } });
      problem(a, 403, 'TARGET_NOT_GRANTED');
      expect(a.headers['location']).to.equal(undefined);
      expect(a.text).not.to.include(GROUP2);
      expect(await storedIds(mesh, API, 'as1')).to.deep.equal(before);
    });

    it('another AS gets exactly the 404 of an unknown TMGI, for the allocation and its deliveries; nothing changes', async () => {
      const a = await allocate();
      const id = pathOf(a).split('/').pop()!;
      const d = await call({ method: 'POST', path: `${pathOf(a)}/delivery-via-mbms`, body: delivery() });
      expect(d.status, d.text).to.equal(201);
      const deliveryId = pathOf(d).split('/').pop()!;
      const unknownId = allocationId(crypto.randomUUID(), tmgiString(0xabcdef, { mcc: '001', mnc: '01' }));
      const attempts: Omit<T8Call, 'path'>[] = [
        { method: 'GET' },
        { method: 'PUT', body: { externalGroupId: GROUP1 } },
        { method: 'PATCH', contentType: 'application/merge-patch+json', body: { externalGroupId: GROUP3 } },
        { method: 'DELETE' },
      ];
      for (const attempt of attempts) {
        const nobodys = await call({ ...attempt, scsAsId: 'as2', path: `${allocations('as2')}/${unknownId}` });
        problem(nobodys, 404, 'RESOURCE_NOT_FOUND');
        for (const path of [`${allocations('as2')}/${id}`, `${allocations('as2')}/${tmgiOfAllocation(id)}`]) {
          const theirs = await call({ ...attempt, scsAsId: 'as2', path });
          expect(theirs.text, `${attempt.method} ${path}`).to.equal(nobodys.text);
        }
        const item = `${allocations('as2')}/${id}/delivery-via-mbms/${deliveryId}`;
        const theirs = await call({ ...attempt, scsAsId: 'as2', path: item, ...(attempt.body ? { body: delivery() } : {}) });
        expect([theirs.status, theirs.text], `${attempt.method} ${item}`).to.deep.equal([404, nobodys.text]);
      }
      const post = await call({ scsAsId: 'as2', method: 'POST', path: `${allocations('as2')}/${id}/delivery-via-mbms`, body: delivery() });
      problem(post, 404, 'RESOURCE_NOT_FOUND');
      // Alpha's own path with another identity is refused before anything is looked up.
      problem(await call({ scsAsId: 'as2', method: 'GET', path: pathOf(a) }), 403, 'SCS_AS_ID_MISMATCH');
      expect((await call({ method: 'GET', path: pathOf(a) })).json).to.deep.equal(a.json);
      expect((await call({ method: 'GET', path: pathOf(d) })).json).to.deep.equal(d.json);
      expect(await storedIds(mesh, DELIVERIES, 'as2')).to.deep.equal([]);
    });
  });

  describe('group message delivery', () => {
    it('broadcasts a delivery to the group and notifies its outcome (GMDByMb2Notification, delivered)', async () => {
      await setGroupReachable(svc.simulator!, GROUP1, true);
      const a = await allocate();
      const body = delivery({ requestTestNotification: false });
      valid('GMDViaMBMSByMb2', body, 'request');
      const d = await call({ method: 'POST', path: `${pathOf(a)}/delivery-via-mbms`, body });
      expect(d.status, d.text).to.equal(201);
      valid('GMDViaMBMSByMb2', d.json);
      const self = (d.json as { self: string }).self;
      expect(self).to.equal(d.headers['location']);
      expect(self).to.match(new RegExp(`^${(a.json as { self: string }).self}/delivery-via-mbms/[0-9a-f-]{36}$`));
      expect(d.json).to.deep.include(body);
      const id = self.split('/').pop()!;
      expect(watcher.for(id), 'not before the session starts').to.have.length(0);
      const n = await waitForNotification(id);
      expect(n).to.deep.include({ scsAsId: 'as1', api: API, destination: AS_DESTINATION });
      const sent = JSON.parse(Buffer.from(n.body).toString('utf8')) as unknown;
      valid('GMDByMb2Notification', sent);
      expect(sent).to.deep.equal({ transaction: self, deliveryTriggerStatus: true });
      const notify = policy.asked.filter(q => q.operation === 'notify').at(-1);
      expect(notify).to.deep.include({ api: API, dataCategories: [GROUP_MESSAGE_CATEGORY], targets: [`externalGroupId:${GROUP1}`] });
      const got = await call({ method: 'GET', path: pathOf(d) });
      expect(got.json).to.deep.equal(d.json);
    });

    it('reports a failed broadcast when nobody of the group is reachable', async () => {
      await setGroupReachable(svc.simulator!, GROUP3, false);
      const a = await allocate(GROUP3);
      const d = await call({ method: 'POST', path: `${pathOf(a)}/delivery-via-mbms`, body: delivery({ externalGroupId: GROUP3 }) });
      expect(d.status, d.text).to.equal(201);
      const id = pathOf(d).split('/').pop()!;
      await waitForNotification(id);
      expect(notificationsOf(id)).to.deep.equal([{ transaction: (d.json as { self: string }).self, deliveryTriggerStatus: false }]);
    });

    it('a new message (PUT or PATCH) is broadcast again; a new destination alone is not; DELETE before the start cancels it', async () => {
      await setGroupReachable(svc.simulator!, GROUP1, true);
      const a = await allocate();
      const d = await call({ method: 'POST', path: `${pathOf(a)}/delivery-via-mbms`, body: delivery() });
      const id = pathOf(d).split('/').pop()!;
      await waitForNotification(id);
      const put = await call({ method: 'PUT', path: pathOf(d), body: delivery({ groupMessagePayload: base64('second') }) });
      expect(put.status, put.text).to.equal(200);
      valid('GMDViaMBMSByMb2', put.json);
      await waitForNotification(id, 2);
      valid('GMDViaMBMSByMb2Patch', { notificationDestination: 'https://as1.example.com/other' }, 'request');
      const moved = await call({
        method: 'PATCH',
        path: pathOf(d),
        contentType: 'application/merge-patch+json',
        body: { notificationDestination: 'https://as1.example.com/other' },
      });
      expect(moved.status, moved.text).to.equal(200);
      expect(moved.json).to.deep.include({ notificationDestination: 'https://as1.example.com/other', groupMessagePayload: base64('second') });
      await sleep(800);
      expect(watcher.for(id), 'no broadcast for a new destination').to.have.length(2);
      const patched = await call({ method: 'PATCH', path: pathOf(d), contentType: 'application/merge-patch+json', body: { groupMessagePayload: base64('third') } });
      expect(patched.status, patched.text).to.equal(200);
      await waitForNotification(id, 3);
      expect(watcher.for(id).at(-1)!.destination).to.equal('https://as1.example.com/other');

      const later = await call({ method: 'POST', path: `${pathOf(a)}/delivery-via-mbms`, body: delivery({ messageDeliveryStartTime: new Date(Date.now() + 700).toISOString() }) });
      const laterId = pathOf(later).split('/').pop()!;
      expect((await call({ method: 'DELETE', path: pathOf(later) })).status).to.equal(204);
      problem(await call({ method: 'GET', path: pathOf(later) }), 404, 'RESOURCE_NOT_FOUND');
      await sleep(1200);
      expect(watcher.for(laterId), 'cancelled').to.have.length(0);
    });

    it('refuses a delivery without payload or group, for another group, with SCEF-only members or too far ahead (400, nothing stored)', async () => {
      const a = await allocate();
      const path = `${pathOf(a)}/delivery-via-mbms`;
      const before = await storedIds(mesh, DELIVERIES, 'as1');
      const { groupMessagePayload: _p, ...noPayload } = delivery();
      problem(await call({ method: 'POST', path, body: noPayload }), 400, 'INVALID_PARAMETER', '/groupMessagePayload');
      problem(await call({ method: 'POST', path, body: delivery({ groupMessagePayload: 'not base64!' }) }), 400, 'INVALID_PARAMETER', '/groupMessagePayload');
      const { externalGroupId: _g, ...noGroup } = delivery();
      problem(await call({ method: 'POST', path, body: noGroup }), 400, 'UE_IDENTIFIER_REQUIRED', '/externalGroupId');
      problem(await call({ method: 'POST', path, body: delivery({ externalGroupId: GROUP3 }) }), 400, 'INVALID_PARAMETER', '/externalGroupId');
      problem(await call({ method: 'POST', path, body: delivery({ scefMessageDeliveryPort: 4000 }) }), 400, 'INVALID_PARAMETER', '/scefMessageDeliveryPort');
      const farAhead = new Date(Date.now() + 30 * 24 * 3600_000).toISOString();
      problem(await call({ method: 'POST', path, body: delivery({ messageDeliveryStartTime: farAhead }) }), 400, 'INVALID_PARAMETER', '/messageDeliveryStartTime');
      problem(
        await call({ method: 'POST', path, body: delivery({ notificationDestination: 'https://10.0.0.1/notify' }) }),
        400,
        'INVALID_NOTIFICATION_DESTINATION',
        '/notificationDestination',
      );
      problem(await call({ method: 'POST', path, body: delivery({ externalGroupId: GROUP2 }) }), 403, 'TARGET_NOT_GRANTED');
      expect(await storedIds(mesh, DELIVERIES, 'as1')).to.deep.equal(before);
    });

    it('decides a scheduled broadcast again as it goes out: with the grant withdrawn after the create, its outcome is decided again (dropped)', async () => {
      await setGroupReachable(svc.simulator!, GROUP1, true);
      const target = `externalGroupId:${GROUP1}`;
      const a = await allocate();
      const d = await call({ method: 'POST', path: `${pathOf(a)}/delivery-via-mbms`, body: delivery({ messageDeliveryStartTime: new Date(Date.now() + 700).toISOString() }) });
      expect(d.status, d.text).to.equal(201);
      const id = pathOf(d).split('/').pop()!;
      const askedBefore = policy.asked.length;
      const grant = policy.grants.get('as1')!;
      policy.grants.set('as1', { ...grant, targets: grant.targets.filter(t => t !== target) });
      try {
        await eventually(() => logs.some(l => l.includes('notification dropped') && l.includes(id)), 10_000, `the dropped outcome of ${id}`);
      } finally {
        policy.grants.set('as1', grant);
      }
      const asked = policy.asked.slice(askedBefore).filter(q => q.targets.includes(target));
      expect(
        asked.find(q => q.operation === 'create'),
        'decided again before the broadcast',
      ).to.deep.equal({
        scsAsId: 'as1',
        api: API,
        operation: 'create',
        dataCategories: [GROUP_MESSAGE_CATEGORY],
        targets: [target],
        pathScsAsId: 'as1',
      });
      expect(asked.map(q => q.operation)).to.include('notify');
      await sleep(300);
      expect(watcher.for(id)).to.have.length(0);
    });

    it('does not broadcast what its AS may no longer send: the outcome is a failed delivery, notified when the notification is allowed', async () => {
      await setGroupReachable(svc.simulator!, GROUP1, true);
      const target = `externalGroupId:${GROUP1}`;
      const a = await allocate();
      const d = await call({ method: 'POST', path: `${pathOf(a)}/delivery-via-mbms`, body: delivery({ messageDeliveryStartTime: new Date(Date.now() + 700).toISOString() }) });
      expect(d.status, d.text).to.equal(201);
      const id = pathOf(d).split('/').pop()!;
      const evaluate = policy.evaluate.bind(policy);
      // The AS may no longer send to the group, yet may still hear how its deliveries ended.
      policy.evaluate = q =>
        q.operation !== 'notify' && q.targets.includes(target) ? { allowed: false, obligations: [], policyVersion: 8, denyCause: 'TARGET_NOT_GRANTED' } : evaluate(q);
      try {
        await waitForNotification(id);
      } finally {
        policy.evaluate = evaluate;
      }
      // The group was reachable: a broadcast would have reached it.
      expect(notificationsOf(id)).to.deep.equal([{ transaction: (d.json as { self: string }).self, deliveryTriggerStatus: false }]);
    });

    it('deallocating the TMGI removes its deliveries and cancels their broadcasts', async () => {
      const a = await allocate();
      const d = await call({ method: 'POST', path: `${pathOf(a)}/delivery-via-mbms`, body: delivery({ messageDeliveryStartTime: new Date(Date.now() + 700).toISOString() }) });
      const id = pathOf(d).split('/').pop()!;
      expect(await storedIds(mesh, DELIVERIES, 'as1')).to.include(id);
      expect((await call({ method: 'DELETE', path: pathOf(a) })).status).to.equal(204);
      problem(await call({ method: 'GET', path: pathOf(d) }), 404, 'RESOURCE_NOT_FOUND');
      expect(await storedIds(mesh, DELIVERIES, 'as1')).not.to.include(id);
      await sleep(1200);
      expect(watcher.for(id)).to.have.length(0);
    });
  });

  // A describe of its own so that it runs after the others (mocha runs a describe's own tests first).
  describe('afterwards', () => {
    it('logs no group or payload', () => {
      const text = logs.join('\n');
      for (const secret of [GROUP1, GROUP3, base64('hello group')]) expect(text).not.to.include(secret);
    });
  });
});

describe(`${API} TMGI space and expiry (simulated BM-SC with a small range)`, function () {
  this.timeout(20_000);
  let schemas: T8Schemas;
  const allow: Decide = async () => ({ allowed: true, obligations: [], policyVersion: 1, denyCause: '' });
  /** Two MBMS Service IDs, and TMGIs that last 400 ms. */
  const RANGE = { first: 0x10, count: 2 };
  const LIFETIME_MS = 400;

  before(async () => {
    schemas = await loadT8Schemas();
  });

  async function setup(sweepMs: number | undefined) {
    const network = new SimulatedCore({ seed: 1, ueCount: 8, groupCount: 2, tickMs: 0 });
    const store = new MemoryResourceStore();
    const module = createGmdViaMbmsByMb2Module(
      {
        network,
        store,
        schemas,
        decide: allow,
        destinations: { allow: [], meshEndpoints: [], resolve: testResolver },
        now: Date.now,
        newId: randomUUID,
        sendTestNotification: async () => {},
      },
      { bmsc: { serviceIds: RANGE, tmgiAllocationMs: LIFETIME_MS }, expirySweepMs: sweepMs ?? 3_600_000 },
    );
    const registry = new ModuleRegistry();
    registry.register(module);
    const invoker = new Invoker({ registry, schemas, store, decide: allow, onError: err => expect.fail(String(err)) });
    if (sweepMs !== undefined) await module.start!();
    const call = async (method: string, path: string, body?: unknown, contentType = 'application/json') => {
      const out = await invoker.invoke({
        scsAsId: 'as1',
        method,
        path,
        contentType: body === undefined ? '' : contentType,
        body: Buffer.from(body === undefined ? '' : JSON.stringify(body)),
        scopes: [API],
        apiRoot: API_ROOT,
      });
      const text = Buffer.from(out.body).toString('utf8');
      return { status: out.status, body: (text === '' ? undefined : JSON.parse(text)) as Record<string, unknown>, text };
    };
    const allocate = () => call('POST', `${BASE}/as1/tmgi-allocation`, { externalGroupId: GROUP1 });
    const deliverLater = (allocation: Record<string, unknown>) =>
      call('POST', `${new URL(allocation['self'] as string).pathname}/delivery-via-mbms`, {
        notificationDestination: AS_DESTINATION,
        externalGroupId: GROUP1,
        groupMessagePayload: base64('later'),
        messageDeliveryStartTime: new Date(Date.now() + 60_000).toISOString(),
      });
    const stop = async () => {
      await module.stop!();
      await network.stop();
    };
    return { store, call, allocate, deliverLater, stop, allocations: () => store.all(API), deliveries: () => store.all(DELIVERIES) };
  }

  it('gives up after a bounded number of draws when every TMGI is taken', async () => {
    const network = new SimulatedCore({ seed: 1, ueCount: 1, groupCount: 1, tickMs: 0 });
    try {
      const bmsc = new SimulatedBmSc(network, Date.now, { serviceIds: RANGE });
      let draws = 0;
      const allTaken = (): boolean => {
        draws++;
        return true;
      };
      expect(bmsc.allocateTmgi(allTaken)).to.equal(undefined);
      expect(draws).to.equal(MAX_TMGI_DRAWS);
      const range = [tmgiString(0x10, BM_SC_PLMN), tmgiString(0x11, BM_SC_PLMN)];
      expect(bmsc.allocateTmgi(t => t === range[0])).to.equal(range[1]);
      expect(() => new SimulatedBmSc(network, Date.now, { serviceIds: { first: 0xffffff, count: 2 } })).to.throw(RangeError);
    } finally {
      await network.stop();
    }
  });

  it('answers 503 NETWORK_UNAVAILABLE when the range is full, storing nothing; the sweep releases expired allocations and their deliveries, freeing their TMGIs', async () => {
    const { allocate, deliverLater, allocations, deliveries, stop } = await setup(50);
    try {
      const first = await allocate();
      const second = await allocate();
      expect([first.status, second.status], first.text + second.text).to.deep.equal([201, 201]);
      const tmgis = [first, second].map(a => tmgiOfAllocation((a.body['self'] as string).split('/').pop()!)).sort();
      expect(tmgis).to.deep.equal([tmgiString(0x10, BM_SC_PLMN), tmgiString(0x11, BM_SC_PLMN)]);
      expect((await deliverLater(first.body)).status).to.equal(201);

      const full = await allocate();
      expect(full.status, full.text).to.equal(503);
      expect(full.body).to.deep.include({ status: 503, cause: 'NETWORK_UNAVAILABLE' });
      expect(schemas.validator('common-data', 'ProblemDetails', 'response')(full.body)).to.equal(true);
      expect(allocations()).to.have.length(2);

      await eventually(() => allocations().length === 0 && deliveries().length === 0, 5_000, 'the expired allocations and their delivery released');
      const again = await allocate();
      expect(again.status, again.text).to.equal(201);
      expect(tmgis).to.include(tmgiOfAllocation((again.body['self'] as string).split('/').pop()!));
    } finally {
      await stop();
    }
  });

  it('treats an expired allocation met before the sweep as released: its TMGI is free, a renewal or a new delivery finds it gone (404)', async () => {
    const { allocate, deliverLater, call, allocations, deliveries, stop } = await setup(undefined);
    try {
      const old = await allocate();
      const kept = await allocate();
      expect((await deliverLater(old.body)).status).to.equal(201);
      await sleep(LIFETIME_MS + 50);
      // The sweep has not run: both allocations are stored, expired, yet their TMGIs are the BM-SC's again.
      expect(allocations()).to.have.length(2);
      const fresh = await allocate();
      expect(fresh.status, fresh.text).to.equal(201);

      const oldPath = new URL(old.body['self'] as string).pathname;
      const renewal = await call('PUT', oldPath, { externalGroupId: GROUP1 });
      expect(renewal.status, renewal.text).to.equal(404);
      expect(renewal.body).to.include({ cause: 'RESOURCE_NOT_FOUND' });
      expect((await call('GET', oldPath)).status).to.equal(404);
      expect(deliveries(), 'its delivery went with it').to.have.length(0);
      const late = await deliverLater(kept.body);
      expect(late.status, late.text).to.equal(404);
      expect(allocations().map(r => r.id)).to.include((fresh.body['self'] as string).split('/').pop());
    } finally {
      await stop();
    }
  });
});
