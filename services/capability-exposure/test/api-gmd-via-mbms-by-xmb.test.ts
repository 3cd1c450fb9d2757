import { expect } from 'chai';
import { eventually } from '@aese/testing';
import { loadT8Schemas } from '@aese/t8-openapi';
import type { T8Schemas } from '@aese/t8-openapi';
import { startTestMesh } from '../../../test/support/mesh.ts';
import type { TestMesh } from '../../../test/support/mesh.ts';
import { GMD_VIA_MBMS_BY_XMB_API } from '../src/modules/gmd-via-mbms-by-xmb/index.ts';
import { GROUP_MESSAGE_CATEGORY } from '../src/modules/mbms/deliveries.ts';
import { simulatedGroupId } from '../src/network/simulated-core.ts';
import type { RunningCapabilityExposure } from '../src/server.ts';
import { base64, setGroupReachable, sleep, storedIds } from './mbms-support.ts';
import { API_ROOT, AS_DESTINATION, edgeClient, NotificationWatcher, startInstance, t8, TestPolicy } from './support.ts';
import type { T8Answer, T8Call } from './support.ts';

const API = GMD_VIA_MBMS_BY_XMB_API;
const BASE = `/${API}/v1`;
const DELIVERIES = `${API}-deliveries`;
const GROUP1 = simulatedGroupId(1);
const GROUP2 = simulatedGroupId(2);
const GROUP3 = simulatedGroupId(3);
const UNKNOWN_GROUP = 'group99@scef.test';
const SERVICE_LIST = '#/paths/~1{scsAsId}~1services/get/responses/200/content/application~1json/schema';
const DELIVERY_LIST = '#/paths/~1{scsAsId}~1services~1{serviceId}~1delivery-via-mbms/get/responses/200/content/application~1json/schema';

describe(`${API} through the mesh`, function () {
  this.timeout(60_000);
  let mesh: TestMesh;
  let schemas: T8Schemas;
  let svc: RunningCapabilityExposure;
  let client: ReturnType<typeof edgeClient>;
  let watcher: NotificationWatcher;
  const policy = new TestPolicy();
  const logs: string[] = [];
  const services = (scsAsId = 'as1'): string => `${BASE}/${scsAsId}/services`;
  const call = (c: T8Call): Promise<T8Answer> => t8(client, { scopes: [API], ...c });
  const pathOf = (a: T8Answer): string => a.headers['location'].slice(API_ROOT.length);
  const idOf = (a: T8Answer): string => a.headers['location'].split('/').pop()!;
  const valid = (schema: string, body: unknown, direction: 'request' | 'response' = 'response'): void => {
    const v = schemas.validator('gmd-via-mbms-by-xmb', schema, direction);
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
  const createService = async (externalGroupId = GROUP1, scsAsId = 'as1'): Promise<T8Answer> => {
    const a = await call({ scsAsId, method: 'POST', path: services(scsAsId), body: { externalGroupId } });
    expect(a.status, a.text).to.equal(201);
    return a;
  };
  const delivery = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({
    notificationDestination: AS_DESTINATION,
    groupMessagePayload: base64('hello group'),
    ...extra,
  });
  const deliver = async (service: T8Answer, extra: Record<string, unknown> = {}): Promise<T8Answer> => {
    const d = await call({ method: 'POST', path: `${pathOf(service)}/delivery-via-mbms`, body: delivery(extra) });
    expect(d.status, d.text).to.equal(201);
    return d;
  };
  const sent = (id: string) => watcher.for(id).map(n => JSON.parse(Buffer.from(n.body).toString('utf8')) as unknown);
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

  describe('service', () => {
    it('creates an MBMS user service for a group: the BM-SC describes it; read, listed, deleted; no PUT or PATCH', async () => {
      valid('ServiceCreation', { externalGroupId: GROUP1 }, 'request');
      const a = await createService();
      valid('ServiceCreation', a.json);
      const self = (a.json as { self: string }).self;
      expect(self).to.equal(a.headers['location']);
      expect(self).to.match(new RegExp(`^${API_ROOT}${services()}/[0-9a-f-]{36}$`));
      expect(a.json).to.deep.include({ externalGroupId: GROUP1, serviceLanguages: ['en'], receiveOnlyMode: false, serviceAnnouncementMode: 'SACH' });
      expect(a.json).to.include.keys('userServiceId', 'serviceClass', 'serviceNames');
      expect(policy.asked.filter(q => q.operation === 'create').at(-1)).to.deep.include({
        api: API,
        dataCategories: [GROUP_MESSAGE_CATEGORY],
        targets: [`externalGroupId:${GROUP1}`],
      });
      expect((await call({ method: 'GET', path: pathOf(a) })).json).to.deep.equal(a.json);
      const list = await call({ method: 'GET', path: services() });
      expect(list.status, list.text).to.equal(200);
      valid(SERVICE_LIST, list.json);
      expect(list.json).to.deep.include(a.json);
      for (const method of ['PUT', 'PATCH']) {
        const refused = await call({ method, path: pathOf(a) });
        problem(refused, 405, 'METHOD_NOT_ALLOWED');
        expect(refused.headers['allow']).to.equal('GET, DELETE');
      }
      const removed = await call({ method: 'DELETE', path: pathOf(a) });
      expect([removed.status, removed.text]).to.deep.equal([204, '']);
      problem(await call({ method: 'GET', path: pathOf(a) }), 404, 'RESOURCE_NOT_FOUND');
      expect(await storedIds(mesh, API, 'as1')).not.to.include(idOf(a));
    });

    it('refuses a service without a group, for an unknown group or naming what the BM-SC supplies (400, nothing stored)', async () => {
      const before = await storedIds(mesh, API, 'as1');
      problem(await call({ method: 'POST', path: services(), body: {} }), 400, 'UE_IDENTIFIER_REQUIRED', '/externalGroupId');
      problem(await call({ method: 'POST', path: services(), body: { externalGroupId: 'group1' } }), 400, 'INVALID_PARAMETER', '/externalGroupId');
      problem(await call({ method: 'POST', path: services(), body: { externalGroupId: GROUP1, serviceLanguages: ['fr'] } }), 400, 'INVALID_PARAMETER', '/serviceLanguages');
      problem(await call({ method: 'POST', path: services(), body: { externalGroupId: UNKNOWN_GROUP } }), 400, 'UNKNOWN_UE', '/externalGroupId');
      expect(await storedIds(mesh, API, 'as1')).to.deep.equal(before);
    });

    it('refuses a group the AS was not granted (403, nothing stored, the group not echoed)', async () => {
      const before = (await call({ method: 'GET', path: services() })).json;
      const a = await call({ method: 'POST', path: services(), body: { externalGroupId: GROUP2 } });
      problem(a, 403, 'TARGET_NOT_GRANTED');
      expect(a.headers['location']).to.equal(undefined);
      expect(a.text).not.to.include(GROUP2);
      expect((await call({ method: 'GET', path: services() })).json).to.deep.equal(before);
    });

    it('another AS gets exactly the 404 of an unknown id, for the service and its deliveries; it lists none of them', async () => {
      const a = await createService();
      const d = await deliver(a);
      const unknown = crypto.randomUUID();
      for (const method of ['GET', 'DELETE']) {
        const nobodys = await call({ scsAsId: 'as2', method, path: `${services('as2')}/${unknown}` });
        problem(nobodys, 404, 'RESOURCE_NOT_FOUND');
        const theirs = await call({ scsAsId: 'as2', method, path: `${services('as2')}/${idOf(a)}` });
        expect(theirs.text, method).to.equal(nobodys.text);
      }
      const item = `${services('as2')}/${idOf(a)}/delivery-via-mbms/${idOf(d)}`;
      const attempts: Omit<T8Call, 'path'>[] = [
        { method: 'GET' },
        { method: 'PUT', body: delivery() },
        { method: 'PATCH', contentType: 'application/merge-patch+json', body: { groupMessagePayload: base64('x') } },
        { method: 'DELETE' },
      ];
      for (const attempt of attempts) {
        const nobodys = await call({ ...attempt, scsAsId: 'as2', path: `${services('as2')}/${unknown}/delivery-via-mbms/${crypto.randomUUID()}` });
        const theirs = await call({ ...attempt, scsAsId: 'as2', path: item });
        expect([theirs.status, theirs.text], attempt.method).to.deep.equal([404, nobodys.text]);
      }
      problem(await call({ scsAsId: 'as2', method: 'GET', path: `${services('as2')}/${idOf(a)}/delivery-via-mbms` }), 404, 'RESOURCE_NOT_FOUND');
      problem(await call({ scsAsId: 'as2', method: 'POST', path: `${services('as2')}/${idOf(a)}/delivery-via-mbms`, body: delivery() }), 404, 'RESOURCE_NOT_FOUND');
      expect((await call({ scsAsId: 'as2', method: 'GET', path: services('as2') })).json).to.deep.equal([]);
      expect((await call({ method: 'GET', path: pathOf(d) })).json).to.deep.equal(d.json);
      expect(await storedIds(mesh, DELIVERIES, 'as2')).to.deep.equal([]);
      // Its broadcast goes out for its own AS as usual.
      await waitForNotification(idOf(d));
    });
  });

  describe('group message delivery', () => {
    it("broadcasts to the service's group and notifies the outcome (GMDByxMBNotification); read and listed under the service", async () => {
      await setGroupReachable(svc.simulator!, GROUP1, true);
      const a = await createService();
      const body = delivery({ messageDeliveryStartTime: new Date(Date.now() + 700).toISOString(), messageDeliveryStopTime: new Date(Date.now() + 60_000).toISOString() });
      valid('GMDViaMBMSByxMB', body, 'request');
      const askedBefore = policy.asked.length;
      const d = await deliver(a, body);
      valid('GMDViaMBMSByxMB', d.json);
      const self = (d.json as { self: string }).self;
      expect(self).to.match(new RegExp(`^${(a.json as { self: string }).self}/delivery-via-mbms/[0-9a-f-]{36}$`));
      expect(d.json).to.deep.include(body);
      // The body names no group: the service's is decided on; and once more as the broadcast goes out.
      const creates = () => policy.asked.slice(askedBefore).filter(q => q.operation === 'create');
      const onCreate = creates().length;
      expect(creates().map(q => q.targets)).to.deep.include([`externalGroupId:${GROUP1}`]);
      const n = await waitForNotification(idOf(d));
      expect(
        creates()
          .slice(onCreate)
          .map(q => q.targets),
      ).to.deep.equal([[`externalGroupId:${GROUP1}`]]);
      expect(n).to.deep.include({ scsAsId: 'as1', api: API, destination: AS_DESTINATION });
      valid('GMDByxMBNotification', sent(idOf(d))[0]);
      expect(sent(idOf(d))).to.deep.equal([{ transaction: self, deliveryTriggerStatus: true }]);
      expect((await call({ method: 'GET', path: pathOf(d) })).json).to.deep.equal(d.json);
      const list = await call({ method: 'GET', path: `${pathOf(a)}/delivery-via-mbms` });
      valid(DELIVERY_LIST, list.json);
      expect(list.json).to.deep.equal([d.json]);
    });

    it('reports a failed broadcast when the stop time passed before it went out, or nobody is reachable', async () => {
      await setGroupReachable(svc.simulator!, GROUP1, true);
      const a = await createService();
      const late = await deliver(a, { messageDeliveryStopTime: new Date(Date.now() + 80).toISOString() });
      await setGroupReachable(svc.simulator!, GROUP3, false);
      const nobody = await deliver(await createService(GROUP3));
      await waitForNotification(idOf(late));
      await waitForNotification(idOf(nobody));
      expect(sent(idOf(late))).to.deep.equal([{ transaction: (late.json as { self: string }).self, deliveryTriggerStatus: false }]);
      expect(sent(idOf(nobody))).to.deep.equal([{ transaction: (nobody.json as { self: string }).self, deliveryTriggerStatus: false }]);
    });

    it('PUT and PATCH of the message broadcast it again; deleting the service removes and cancels its deliveries', async () => {
      await setGroupReachable(svc.simulator!, GROUP1, true);
      const a = await createService();
      const d = await deliver(a);
      await waitForNotification(idOf(d));
      const put = await call({ method: 'PUT', path: pathOf(d), body: delivery({ groupMessagePayload: base64('second') }) });
      expect(put.status, put.text).to.equal(200);
      valid('GMDViaMBMSByxMB', put.json);
      await waitForNotification(idOf(d), 2);
      valid('GMDViaMBMSByxMBPatch', { groupMessagePayload: base64('third') }, 'request');
      const patched = await call({ method: 'PATCH', path: pathOf(d), contentType: 'application/merge-patch+json', body: { groupMessagePayload: base64('third') } });
      expect(patched.status, patched.text).to.equal(200);
      expect(patched.json).to.deep.include({ groupMessagePayload: base64('third') });
      await waitForNotification(idOf(d), 3);

      const pending = await deliver(a, { messageDeliveryStartTime: new Date(Date.now() + 700).toISOString() });
      expect(await storedIds(mesh, DELIVERIES, 'as1')).to.include.members([idOf(d), idOf(pending)]);
      expect((await call({ method: 'DELETE', path: pathOf(a) })).status).to.equal(204);
      problem(await call({ method: 'GET', path: pathOf(pending) }), 404, 'RESOURCE_NOT_FOUND');
      const left = await storedIds(mesh, DELIVERIES, 'as1');
      expect(left).not.to.include(idOf(d));
      expect(left).not.to.include(idOf(pending));
      await sleep(1200);
      expect(watcher.for(idOf(pending)), 'cancelled').to.have.length(0);
    });

    it('refuses a delivery without payload, with a stop time gone or before its start, or SCEF-only members (400, nothing stored)', async () => {
      const a = await createService();
      const path = `${pathOf(a)}/delivery-via-mbms`;
      const before = await storedIds(mesh, DELIVERIES, 'as1');
      const { groupMessagePayload: _p, ...noPayload } = delivery();
      problem(await call({ method: 'POST', path, body: noPayload }), 400, 'INVALID_PARAMETER', '/groupMessagePayload');
      const past = new Date(Date.now() - 1000).toISOString();
      problem(await call({ method: 'POST', path, body: delivery({ messageDeliveryStopTime: past }) }), 400, 'INVALID_PARAMETER', '/messageDeliveryStopTime');
      const start = new Date(Date.now() + 60_000).toISOString();
      const stop = new Date(Date.now() + 30_000).toISOString();
      problem(
        await call({ method: 'POST', path, body: delivery({ messageDeliveryStartTime: start, messageDeliveryStopTime: stop }) }),
        400,
        'INVALID_PARAMETER',
        '/messageDeliveryStopTime',
      );
      problem(await call({ method: 'POST', path, body: delivery({ scefMessageDeliveryIPv4: '192.0.2.1' }) }), 400, 'INVALID_PARAMETER', '/scefMessageDeliveryIPv4');
      problem(await call({ method: 'POST', path, body: delivery({ externalGroupId: GROUP1 }) }), 400, 'INVALID_PARAMETER', '/externalGroupId');
      expect(await storedIds(mesh, DELIVERIES, 'as1')).to.deep.equal(before);
    });

    it("decides a scheduled broadcast again as it goes out, on the service's group: withdrawn after the create, it is not sent and its outcome is dropped", async () => {
      await setGroupReachable(svc.simulator!, GROUP1, true);
      const a = await createService();
      const d = await deliver(a, { messageDeliveryStartTime: new Date(Date.now() + 700).toISOString() });
      const id = idOf(d);
      const askedBefore = policy.asked.length;
      const grant = policy.grants.get('as1')!;
      policy.grants.set('as1', { ...grant, categories: [] });
      try {
        await eventually(() => logs.some(l => l.includes('notification dropped') && l.includes(id)), 10_000, `the dropped outcome of ${id}`);
      } finally {
        policy.grants.set('as1', grant);
      }
      // The delivery names no group: the one decided again is its service's.
      expect(policy.asked.slice(askedBefore).find(q => q.operation === 'create')).to.deep.equal({
        scsAsId: 'as1',
        api: API,
        operation: 'create',
        dataCategories: [GROUP_MESSAGE_CATEGORY],
        targets: [`externalGroupId:${GROUP1}`],
        pathScsAsId: 'as1',
      });
      await sleep(300);
      expect(sent(id)).to.deep.equal([]);
    });

    it("refuses a delivery once the service's group is no longer granted (403, nothing stored)", async () => {
      const a = await createService(GROUP3);
      const before = await storedIds(mesh, DELIVERIES, 'as1');
      const grant = policy.grants.get('as1')!;
      policy.grants.set('as1', { ...grant, targets: grant.targets.filter(t => t !== `externalGroupId:${GROUP3}`) });
      try {
        const d = await call({ method: 'POST', path: `${pathOf(a)}/delivery-via-mbms`, body: delivery() });
        problem(d, 403, 'TARGET_NOT_GRANTED');
        expect(d.text).not.to.include(GROUP3);
      } finally {
        policy.grants.set('as1', grant);
      }
      expect(await storedIds(mesh, DELIVERIES, 'as1')).to.deep.equal(before);
    });
  });
});
