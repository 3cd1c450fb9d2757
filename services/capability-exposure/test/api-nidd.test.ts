import { expect } from 'chai';
import { loadT8Schemas } from '@aese/t8-openapi';
import type { T8Schemas } from '@aese/t8-openapi';
import type { NotificationRequested } from '@aese/protos/events/v1';
import { startTestMesh } from '../../../test/support/mesh.ts';
import type { TestMesh } from '../../../test/support/mesh.ts';
import { NIDD_API, NIDD_CATEGORY, uplinkEvent } from '../src/modules/nidd/index.ts';
import { DEFAULT_MAXIMUM_PACKET_BYTES } from '../src/modules/nidd/network.ts';
import { DEFAULT_NIDD_MAX_BUFFERING_SECONDS } from '../src/modules/nidd/settings.ts';
import { simulatedGroupId, simulatedUeIdentifiers } from '../src/network/simulated-core.ts';
import type { RunningCapabilityExposure } from '../src/server.ts';
import { API_ROOT, AS_DESTINATION, edgeClient, NotificationWatcher, startInstance, t8, TestPolicy } from './support.ts';
import type { T8Answer, T8Call } from './support.ts';

const BASE = `/${NIDD_API}/v1`;
const SCOPES = [NIDD_API];
/** UE 2 and UE 4 by externalId, UE 3 by msisdn and group 1 (UEs 1, 5, 9, ...) are granted to as1; UE 6 to as2. */
const UE2 = simulatedUeIdentifiers(2);
const UE3 = simulatedUeIdentifiers(3);
const UE4 = simulatedUeIdentifiers(4);
const UE6 = simulatedUeIdentifiers(6);
const UE7 = simulatedUeIdentifiers(7);
const GROUP1 = simulatedGroupId(1);
const DATA = Buffer.from('hello, device').toString('base64');
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const CONFIGURATIONS_LIST = '#/paths/~1{scsAsId}~1configurations/get/responses/200/content/application~1json/schema';
const DELIVERIES_LIST = '#/paths/~1{scsAsId}~1configurations~1{configurationId}~1downlink-data-deliveries/get/responses/200/content/application~1json/schema';

type Json = Record<string, unknown>;

describe(`${NIDD_API} through the mesh`, function () {
  this.timeout(60_000);
  let mesh: TestMesh;
  let schemas: T8Schemas;
  let svc: RunningCapabilityExposure;
  let client: ReturnType<typeof edgeClient>;
  let watcher: NotificationWatcher;
  const policy = new TestPolicy();
  const logs: string[] = [];

  const call = (c: T8Call): Promise<T8Answer> => t8(client, { scopes: SCOPES, ...c });
  const configurations = (scsAsId = 'as1'): string => `${BASE}/${scsAsId}/configurations`;
  const deliveriesOf = (configuration: string): string => `${configuration}/downlink-data-deliveries`;
  const pathOf = (a: T8Answer): string => a.headers['location'].slice(API_ROOT.length);
  const idOf = (a: T8Answer): string => a.headers['location'].split('/').pop()!;
  const valid = (schema: string, body: unknown, direction: 'request' | 'response' = 'response', file: 'nidd' | 'common-data' = 'nidd'): void => {
    const v = schemas.validator(file, schema, direction);
    expect(v(body), `${schema}: ${JSON.stringify(v.violations())}`).to.equal(true);
  };
  const problem = (a: T8Answer, status: number, cause: string, param?: string): Json => {
    expect(a.status, a.text).to.equal(status);
    expect(a.headers['content-type']).to.equal('application/problem+json');
    valid('ProblemDetails', a.json, 'response', 'common-data');
    const p = a.json as Json;
    expect(p['cause']).to.equal(cause);
    if (param !== undefined) expect((p['invalidParams'] as { param: string }[])[0].param).to.equal(param);
    expect(a.text).to.not.include(UE2.externalId).and.not.include(UE3.msisdn).and.not.include(UE7.externalId);
    return p;
  };
  const bodyOf = (n: NotificationRequested): Json => JSON.parse(Buffer.from(n.body).toString('utf8')) as Json;
  const advance = () => svc.simulator!.advance();
  /** Puts a UE in or out of reach, as the network would tell it. */
  const setReachable = async (externalId: string, reachable: boolean): Promise<void> => {
    const ue = await svc.network.findUe({ externalId });
    svc.simulator!.mirror({ kind: 'reachability', ue: ue!, reachable, atMs: Date.now() });
  };
  const isReachable = async (externalId: string): Promise<boolean> => (await svc.network.reachability((await svc.network.findUe({ externalId }))!)).reachable;
  const configuration = (extra: Json = {}): Json => ({ externalId: UE2.externalId, notificationDestination: AS_DESTINATION, ...extra });
  const transfer = (extra: Json = {}): Json => ({ externalId: UE2.externalId, data: DATA, ...extra });
  const create = async (body: Json = configuration()): Promise<T8Answer> => {
    const a = await call({ method: 'POST', path: configurations(), body });
    expect(a.status, a.text).to.equal(201);
    return a;
  };
  const ids = async (path: string, scsAsId = 'as1'): Promise<string[]> => {
    const a = await t8(client, { scsAsId, scopes: SCOPES, method: 'GET', path });
    expect(a.status, a.text).to.equal(200);
    return (a.json as { self: string }[]).map(r => r.self.split('/').pop()!);
  };
  /** Notifications of a configuration whose body has a member. */
  const notified = (configurationId: string, member: string): Json[] =>
    watcher
      .for(configurationId)
      .map(bodyOf)
      .filter(b => member in b);

  before(async () => {
    schemas = await loadT8Schemas();
    mesh = await startTestMesh({ extraEnv: { SIM_TICK_MS: '0' } });
    policy.grants.set('as1', {
      targets: [`externalId:${UE2.externalId}`, `externalId:${UE4.externalId}`, `msisdn:${UE3.msisdn}`, `externalGroupId:${GROUP1}`],
      categories: [NIDD_CATEGORY],
    });
    policy.grants.set('as2', { targets: [`externalId:${UE6.externalId}`], categories: [NIDD_CATEGORY] });
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

  describe('configurations', () => {
    it('creates (201, ACTIVE, the network maximumPacketSize), reads, lists, merge-patches and deletes; bodies match the schemas', async () => {
      const body = configuration({ pdnEstablishmentOption: 'WAIT_FOR_UE', duration: '2099-01-01T00:00:00Z' });
      valid('NiddConfiguration', body, 'request');
      const created = await create(body);
      valid('NiddConfiguration', created.json);
      const id = idOf(created);
      expect(id).to.match(UUID);
      expect(created.headers['location']).to.equal(`${API_ROOT}${configurations()}/${id}`);
      expect(created.json).to.deep.equal({ ...body, self: created.headers['location'], status: 'ACTIVE', maximumPacketSize: DEFAULT_MAXIMUM_PACKET_BYTES * 8 });
      expect(policy.asked.at(-1)).to.deep.equal({
        scsAsId: 'as1',
        api: NIDD_API,
        operation: 'create',
        dataCategories: [NIDD_CATEGORY],
        targets: [`externalId:${UE2.externalId}`],
        pathScsAsId: 'as1',
      });
      const item = pathOf(created);
      const read = await call({ method: 'GET', path: item });
      expect(read.status).to.equal(200);
      expect(read.json).to.deep.equal(created.json);
      const list = await call({ method: 'GET', path: configurations() });
      valid(CONFIGURATIONS_LIST, list.json);
      expect(await ids(configurations())).to.include(id);

      const patch = { pdnEstablishmentOption: 'SEND_TRIGGER', reliableDataService: true, duration: null };
      valid('NiddConfigurationPatch', patch, 'request');
      const patched = await call({ method: 'PATCH', path: item, contentType: 'application/merge-patch+json', body: patch });
      expect(patched.status, patched.text).to.equal(200);
      valid('NiddConfiguration', patched.json);
      expect(patched.json).to.include({ pdnEstablishmentOption: 'SEND_TRIGGER', reliableDataService: true, status: 'ACTIVE' }).and.not.have.property('duration');
      expect((await call({ method: 'GET', path: item })).json).to.deep.equal(patched.json);
      // What the patch schema does not name (the UE, the SCEF's members) cannot be patched.
      problem(
        await call({ method: 'PATCH', path: item, contentType: 'application/merge-patch+json', body: { externalId: UE4.externalId } }),
        400,
        'INVALID_PARAMETER',
        '/externalId',
      );
      problem(await call({ method: 'PATCH', path: item, contentType: 'application/merge-patch+json', body: { status: 'TERMINATED' } }), 400, 'INVALID_PARAMETER', '/status');
      problem(
        await call({ method: 'PATCH', path: item, contentType: 'application/merge-patch+json', body: { notificationDestination: 'https://10.0.0.1/n' } }),
        400,
        'INVALID_NOTIFICATION_DESTINATION',
      );
      problem(await call({ method: 'PUT', path: item, body }), 405, 'METHOD_NOT_ALLOWED');
      expect((await call({ method: 'GET', path: item })).json).to.deep.equal(patched.json);

      expect((await call({ method: 'DELETE', path: item })).status).to.equal(204);
      problem(await call({ method: 'GET', path: item }), 404, 'RESOURCE_NOT_FOUND');
      expect(await ids(configurations())).to.not.include(id);
    });

    it('refuses what breaks the rules with a 400 naming the member, before authorization, and stores nothing', async () => {
      const before = await ids(configurations());
      const asked = policy.asked.length;
      const cases: [string, Json, string, string][] = [
        ['two identifiers', configuration({ msisdn: UE3.msisdn }), 'INVALID_PARAMETER', '/'],
        ['no identifier', { notificationDestination: AS_DESTINATION }, 'INVALID_PARAMETER', '/'],
        ['malformed externalId', configuration({ externalId: 'no-domain' }), 'INVALID_PARAMETER', '/externalId'],
        ['SCEF-only status', configuration({ status: 'ACTIVE' }), 'INVALID_PARAMETER', '/status'],
        ['SCEF-only maximumPacketSize', configuration({ maximumPacketSize: 99999 }), 'INVALID_PARAMETER', '/maximumPacketSize'],
        ['foreign self', configuration({ self: `${API_ROOT}${configurations('as2')}/${crypto.randomUUID()}` }), 'RESOURCE_ID_MISMATCH', '/self'],
        ['unknown option', configuration({ pdnEstablishmentOption: 'SEND_PIGEON' }), 'INVALID_PARAMETER', '/pdnEstablishmentOption'],
        ['past duration', configuration({ duration: '2001-01-01T00:00:00Z' }), 'INVALID_PARAMETER', '/duration'],
        ['two transfers', configuration({ niddDownlinkDataTransfers: [transfer(), transfer()] }), 'INVALID_PARAMETER', '/niddDownlinkDataTransfers'],
        [
          'transfer for another UE',
          configuration({ niddDownlinkDataTransfers: [transfer({ externalId: UE4.externalId })] }),
          'INVALID_PARAMETER',
          '/niddDownlinkDataTransfers/0/externalId',
        ],
        ['transfer not base64', configuration({ niddDownlinkDataTransfers: [transfer({ data: 'not base64!' })] }), 'INVALID_PARAMETER', '/niddDownlinkDataTransfers/0/data'],
        [
          'transfer with a status',
          configuration({ niddDownlinkDataTransfers: [transfer({ deliveryStatus: 'SUCCESS' })] }),
          'INVALID_PARAMETER',
          '/niddDownlinkDataTransfers/0/deliveryStatus',
        ],
        ['unknown member', configuration({ sneaky: true }), 'INVALID_PARAMETER', '/sneaky'],
      ];
      for (const [name, body, cause, param] of cases) {
        const p = problem(await call({ method: 'POST', path: configurations(), body }), 400, cause);
        if (param !== '/') expect((p['invalidParams'] as { param: string }[])[0].param, name).to.equal(param);
      }
      expect(policy.asked.length, 'invalid requests never reach authorization').to.equal(asked);
      expect(await ids(configurations())).to.deep.equal(before);
    });

    it('a UE the AS was not granted is a 403, a UE the network does not know a 400; nothing is stored', async () => {
      const before = await ids(configurations());
      problem(await call({ method: 'POST', path: configurations(), body: configuration({ externalId: UE7.externalId }) }), 403, 'TARGET_NOT_GRANTED');
      policy.grants.set('as3', { targets: ['externalId:nobody@scef.test'], categories: [NIDD_CATEGORY] });
      problem(
        await t8(client, { scsAsId: 'as3', scopes: SCOPES, method: 'POST', path: configurations('as3'), body: configuration({ externalId: 'nobody@scef.test' }) }),
        400,
        'UNKNOWN_UE',
        '/externalId',
      );
      expect(await ids(configurations())).to.deep.equal(before);
      expect(await ids(configurations('as3'), 'as3')).to.deep.equal([]);
      problem(await call({ method: 'POST', path: configurations(), body: configuration(), scopes: ['3gpp-monitoring-event'] }), 403, 'insufficient_scope');
    });

    it('another AS gets, for a configuration and its transfers, exactly the 404 of an unknown id', async () => {
      await setReachable(UE2.externalId, false);
      const created = await create();
      const id = idOf(created);
      const buffered = await call({ method: 'POST', path: deliveriesOf(pathOf(created)), body: transfer() });
      expect(buffered.status, buffered.text).to.equal(201);
      const deliveryId = idOf(buffered);
      const unknown = await t8(client, { scsAsId: 'as2', scopes: SCOPES, method: 'GET', path: `${configurations('as2')}/${crypto.randomUUID()}` });
      problem(unknown, 404, 'RESOURCE_NOT_FOUND');
      const asAs2 = (c: Omit<T8Call, 'scsAsId' | 'scopes'>) => t8(client, { scsAsId: 'as2', scopes: SCOPES, ...c });
      const foreign = `${configurations('as2')}/${id}`;
      for (const c of [
        { method: 'GET', path: foreign },
        { method: 'DELETE', path: foreign },
        { method: 'PATCH', path: foreign, contentType: 'application/merge-patch+json', body: { reliableDataService: true } },
        { method: 'GET', path: deliveriesOf(foreign) },
        { method: 'GET', path: `${deliveriesOf(foreign)}/${deliveryId}` },
        { method: 'DELETE', path: `${deliveriesOf(foreign)}/${deliveryId}` },
        { method: 'PUT', path: `${deliveriesOf(foreign)}/${deliveryId}`, body: transfer({ externalId: UE6.externalId }) },
        { method: 'POST', path: deliveriesOf(foreign), body: transfer({ externalId: UE6.externalId }) },
      ]) {
        const a = await asAs2(c);
        expect(a.status, `${c.method} ${c.path}`).to.equal(404);
        expect(a.text, `${c.method} ${c.path}`).to.equal(unknown.text);
        expect(a.headers).to.deep.equal(unknown.headers);
      }
      problem(await asAs2({ method: 'GET', path: pathOf(created) }), 403, 'SCS_AS_ID_MISMATCH');
      expect((await call({ method: 'GET', path: pathOf(created) })).json).to.deep.equal(created.json);
      expect(await ids(deliveriesOf(pathOf(created)))).to.deep.equal([deliveryId]);
    });
  });

  describe('downlink data deliveries', () => {
    let configurationPath: string;
    let configurationId: string;

    before(async () => {
      const created = await create(configuration({ rdsPorts: [{ portUE: 5, portSCEF: 6 }] }));
      configurationPath = pathOf(created);
      configurationId = idOf(created);
    });

    it('a UE in reach gets the data at once: 200 with its delivery status, nothing stored', async () => {
      await setReachable(UE2.externalId, true);
      const body = transfer({ priority: 3 });
      valid('NiddDownlinkDataTransfer', body, 'request');
      const a = await call({ method: 'POST', path: deliveriesOf(configurationPath), body });
      expect(a.status, a.text).to.equal(200);
      expect(a.headers['location']).to.equal(undefined);
      valid('NiddDownlinkDataTransfer', a.json);
      expect(a.json).to.deep.equal({ ...body, deliveryStatus: 'SUCCESS_NEXT_HOP_ACKNOWLEDGED' });
      expect(policy.asked.at(-1)).to.deep.include({ operation: 'create', dataCategories: [NIDD_CATEGORY], targets: [`externalId:${UE2.externalId}`] });
      const reliable = await call({ method: 'POST', path: deliveriesOf(configurationPath), body: transfer({ reliableDataService: true, rdsPort: { portUE: 5, portSCEF: 6 } }) });
      expect(reliable.status, reliable.text).to.equal(200);
      expect(reliable.json).to.include({ deliveryStatus: 'SUCCESS_ACKNOWLEDGED' });
      expect(await ids(deliveriesOf(configurationPath))).to.deep.equal([]);
    });

    it('a UE out of reach: buffered (201), read, listed, replaced (PUT) and patched; delivered once it can be reached, with a notification', async () => {
      await setReachable(UE2.externalId, false);
      const created = await call({ method: 'POST', path: deliveriesOf(configurationPath), body: transfer({ maximumLatency: 600 }) });
      expect(created.status, created.text).to.equal(201);
      valid('NiddDownlinkDataTransfer', created.json);
      const id = idOf(created);
      expect(created.headers['location']).to.equal(`${API_ROOT}${deliveriesOf(configurationPath)}/${id}`);
      expect(created.json).to.deep.equal({ ...transfer({ maximumLatency: 600 }), self: created.headers['location'], deliveryStatus: 'BUFFERING' });
      const item = pathOf(created);
      expect((await call({ method: 'GET', path: item })).json).to.deep.equal(created.json);
      const list = await call({ method: 'GET', path: deliveriesOf(configurationPath) });
      valid(DELIVERIES_LIST, list.json);
      expect(list.json).to.deep.equal([created.json]);

      const replacement = transfer({ data: Buffer.from('second thoughts').toString('base64'), pdnEstablishmentOption: 'SEND_TRIGGER' });
      const put = await call({ method: 'PUT', path: item, body: replacement });
      expect(put.status, put.text).to.equal(200);
      valid('NiddDownlinkDataTransfer', put.json);
      expect(put.json).to.deep.equal({ ...replacement, self: created.headers['location'], deliveryStatus: 'TRIGGERED' });
      problem(await call({ method: 'PUT', path: item, body: transfer({ externalId: UE4.externalId }) }), 400, 'INVALID_PARAMETER', '/externalId');

      const patch = { priority: 1, pdnEstablishmentOption: 'WAIT_FOR_UE' };
      valid('NiddDownlinkDataTransferPatch', patch, 'request');
      const patched = await call({ method: 'PATCH', path: item, body: patch });
      expect(patched.status, patched.text).to.equal(200);
      valid('NiddDownlinkDataTransfer', patched.json);
      expect(patched.json).to.deep.equal({ ...replacement, ...patch, self: created.headers['location'], deliveryStatus: 'BUFFERING' });
      problem(await call({ method: 'PATCH', path: item, body: { deliveryStatus: 'SUCCESS' } }), 400, 'INVALID_PARAMETER', '/deliveryStatus');
      problem(await call({ method: 'PATCH', path: item, contentType: 'application/merge-patch+json', body: patch }), 415, 'UNSUPPORTED_MEDIA_TYPE');
      expect((await call({ method: 'GET', path: item })).json).to.deep.equal(patched.json);
      expect(notified(configurationId, 'deliveryStatus')).to.deep.equal([]);

      await setReachable(UE2.externalId, true);
      const n = await watcher.waitFor(x => x.subscriptionId === configurationId && bodyOf(x)['niddDownlinkDataTransfer'] === created.headers['location'], advance);
      expect(n).to.deep.include({ scsAsId: 'as1', api: NIDD_API, destination: AS_DESTINATION });
      valid('NiddDownlinkDataDeliveryStatusNotification', bodyOf(n));
      expect(bodyOf(n)).to.deep.equal({ niddDownlinkDataTransfer: created.headers['location'], deliveryStatus: 'SUCCESS_NEXT_HOP_ACKNOWLEDGED' });
      expect(policy.asked.filter(q => q.operation === 'notify').at(-1)).to.deep.include({
        api: NIDD_API,
        dataCategories: [NIDD_CATEGORY],
        targets: [`externalId:${UE2.externalId}`],
      });
      // Delivered: no longer pending.
      problem(await call({ method: 'GET', path: item }), 404, 'RESOURCE_NOT_FOUND');
      expect(await ids(deliveriesOf(configurationPath))).to.deep.equal([]);
      await watcher.settle();
      expect(notified(configurationId, 'niddDownlinkDataTransfer')).to.have.length(1);
    });

    it('SEND_TRIGGER buffers as TRIGGERED; a buffered transfer can be cancelled (DELETE) and is never delivered then', async () => {
      await setReachable(UE2.externalId, false);
      const created = await call({ method: 'POST', path: deliveriesOf(configurationPath), body: transfer({ pdnEstablishmentOption: 'SEND_TRIGGER' }) });
      expect(created.status, created.text).to.equal(201);
      expect(created.json).to.include({ deliveryStatus: 'TRIGGERED' });
      expect((await call({ method: 'DELETE', path: pathOf(created) })).status).to.equal(204);
      problem(await call({ method: 'GET', path: pathOf(created) }), 404, 'RESOURCE_NOT_FOUND');
      await setReachable(UE2.externalId, true);
      for (let i = 0; i < 10; i++) await advance();
      await watcher.settle();
      expect(watcher.received.map(bodyOf).filter(b => b['niddDownlinkDataTransfer'] === created.headers['location'])).to.deep.equal([]);
    });

    it('INDICATE_ERROR (or a maximumLatency of 0) for a UE out of reach answers 500 NiddDownlinkDataDeliveryFailure and buffers nothing', async () => {
      await setReachable(UE2.externalId, false);
      for (const extra of [{ pdnEstablishmentOption: 'INDICATE_ERROR' }, { maximumLatency: 0 }]) {
        const a = await call({ method: 'POST', path: deliveriesOf(configurationPath), body: transfer(extra) });
        expect(a.status, a.text).to.equal(500);
        expect(a.headers['content-type']).to.equal('application/json');
        valid('NiddDownlinkDataDeliveryFailure', a.json);
        expect(a.json).to.deep.equal({
          problemDetail: {
            status: 500,
            title: 'Internal Server Error',
            cause: 'TEMPORARILY_NOT_REACHABLE',
            detail: 'the UE cannot be reached now and the request asked for no buffering',
          },
        });
      }
      expect(await ids(deliveriesOf(configurationPath))).to.deep.equal([]);
    });

    it('data still buffered when its maximumLatency is over ends with FAILURE_TIMEOUT', async () => {
      await setReachable(UE2.externalId, false);
      const created = await call({ method: 'POST', path: deliveriesOf(configurationPath), body: transfer({ maximumLatency: 1 }) });
      expect(created.status, created.text).to.equal(201);
      await new Promise(r => setTimeout(r, 1_100));
      await setReachable(UE2.externalId, false);
      await advance();
      await watcher.settle();
      const reports = watcher.received.map(bodyOf).filter(b => b['niddDownlinkDataTransfer'] === created.headers['location']);
      expect(reports).to.deep.equal([{ niddDownlinkDataTransfer: created.headers['location'], deliveryStatus: 'FAILURE_TIMEOUT' }]);
      problem(await call({ method: 'GET', path: pathOf(created) }), 404, 'RESOURCE_NOT_FOUND');
    });

    it('refuses transfers the configuration does not allow: another UE (400), oversized data (403 DATA_TOO_LARGE), an unknown RDS port (403 RDS_PORT_UNKNOWN)', async () => {
      const asked = policy.asked.length;
      problem(await call({ method: 'POST', path: deliveriesOf(configurationPath), body: transfer({ data: '***' }) }), 400, 'INVALID_PARAMETER', '/data');
      problem(await call({ method: 'POST', path: deliveriesOf(configurationPath), body: transfer({ msisdn: UE3.msisdn }) }), 400, 'INVALID_PARAMETER');
      problem(await call({ method: 'POST', path: deliveriesOf(configurationPath), body: transfer({ deliveryStatus: 'SUCCESS' }) }), 400, 'INVALID_PARAMETER', '/deliveryStatus');
      problem(await call({ method: 'POST', path: deliveriesOf(configurationPath), body: transfer({ self: `${API_ROOT}/x` }) }), 400, 'RESOURCE_ID_MISMATCH', '/self');
      expect(policy.asked.length, 'refused before authorization').to.equal(asked);
      problem(await call({ method: 'POST', path: deliveriesOf(configurationPath), body: transfer({ externalId: UE4.externalId }) }), 400, 'INVALID_PARAMETER', '/externalId');
      const big = Buffer.alloc(DEFAULT_MAXIMUM_PACKET_BYTES + 1, 7).toString('base64');
      problem(await call({ method: 'POST', path: deliveriesOf(configurationPath), body: transfer({ data: big }) }), 403, 'DATA_TOO_LARGE');
      problem(await call({ method: 'POST', path: deliveriesOf(configurationPath), body: transfer({ rdsPort: { portUE: 1, portSCEF: 2 } }) }), 403, 'RDS_PORT_UNKNOWN');
      problem(await call({ method: 'POST', path: deliveriesOf(configurationPath), body: transfer({ externalId: UE7.externalId }) }), 403, 'TARGET_NOT_GRANTED');
      problem(await call({ method: 'POST', path: deliveriesOf(`${configurations()}/${crypto.randomUUID()}`), body: transfer() }), 404, 'RESOURCE_NOT_FOUND');
      expect(await ids(deliveriesOf(configurationPath))).to.deep.equal([]);
      // Positive control: exactly the largest packet passes.
      await setReachable(UE2.externalId, true);
      const largest = Buffer.alloc(DEFAULT_MAXIMUM_PACKET_BYTES, 7).toString('base64');
      expect((await call({ method: 'POST', path: deliveriesOf(configurationPath), body: transfer({ data: largest }) })).status).to.equal(200);
    });

    it('a group transfer serves the members in reach at once and reports every member once the others are served or timed out', async () => {
      const group = await create({ externalGroupId: GROUP1, notificationDestination: AS_DESTINATION });
      const members = (await svc.network.groupMembers(GROUP1))!;
      await setReachable(members[0].externalId, true);
      await setReachable(members[1].externalId, false);
      const inReach = new Set<string>();
      for (const m of members) if (await isReachable(m.externalId)) inReach.add(m.externalId);
      const created = await call({ method: 'POST', path: deliveriesOf(pathOf(group)), body: { externalGroupId: GROUP1, data: DATA, maximumLatency: 1 } });
      expect(created.status, created.text).to.equal(201);
      expect(created.json).to.include({ deliveryStatus: 'BUFFERING', externalGroupId: GROUP1 });
      await new Promise(r => setTimeout(r, 1_100));
      await setReachable(members[1].externalId, false);
      await advance();
      await watcher.settle();
      const reports = watcher.received.map(bodyOf).filter(b => b['niddDownlinkDataTransfer'] === created.headers['location']);
      expect(reports).to.have.length(1);
      valid('GmdNiddDownlinkDataDeliveryNotification', reports[0]);
      const results = reports[0]['gmdResults'] as { externalId: string; deliveryStatus: string }[];
      expect(results.map(r => r.externalId)).to.have.members(members.map(m => m.externalId));
      for (const r of results) expect(r.deliveryStatus, r.externalId).to.equal(inReach.has(r.externalId) ? 'SUCCESS_NEXT_HOP_ACKNOWLEDGED' : 'FAILURE_TIMEOUT');
      expect(results.find(r => r.externalId === members[1].externalId)!.deliveryStatus).to.equal('FAILURE_TIMEOUT');
      expect(results.find(r => r.externalId === members[0].externalId)!.deliveryStatus).to.equal('SUCCESS_NEXT_HOP_ACKNOWLEDGED');
      expect((await call({ method: 'DELETE', path: pathOf(group) })).status).to.equal(204);
    });

    it('a maximumLatency beyond the operator limit (NIDD_MAX_BUFFERING_S, a day by default) is lowered to it, and the transfer shows the value that holds', async () => {
      await setReachable(UE2.externalId, false);
      const beyond = DEFAULT_NIDD_MAX_BUFFERING_SECONDS + 1;
      const created = await call({ method: 'POST', path: deliveriesOf(configurationPath), body: transfer({ maximumLatency: beyond }) });
      expect(created.status, created.text).to.equal(201);
      valid('NiddDownlinkDataTransfer', created.json);
      expect(created.json).to.include({ maximumLatency: DEFAULT_NIDD_MAX_BUFFERING_SECONDS, deliveryStatus: 'BUFFERING' });
      const item = pathOf(created);
      expect((await call({ method: 'GET', path: item })).json).to.include({ maximumLatency: DEFAULT_NIDD_MAX_BUFFERING_SECONDS });
      const put = await call({ method: 'PUT', path: item, body: transfer({ maximumLatency: 10 * beyond }) });
      expect(put.status, put.text).to.equal(200);
      expect(put.json).to.include({ maximumLatency: DEFAULT_NIDD_MAX_BUFFERING_SECONDS });
      const patched = await call({ method: 'PATCH', path: item, body: { maximumLatency: 10 * beyond } });
      expect(patched.status, patched.text).to.equal(200);
      expect(patched.json).to.include({ maximumLatency: DEFAULT_NIDD_MAX_BUFFERING_SECONDS });
      // Within the limit, the AS's own value holds; without one, none is shown.
      expect((await call({ method: 'PATCH', path: item, body: { maximumLatency: 60 } })).json).to.include({ maximumLatency: 60 });
      const unsaid = await call({ method: 'POST', path: deliveriesOf(configurationPath), body: transfer() });
      expect(unsaid.status, unsaid.text).to.equal(201);
      expect(unsaid.json).to.not.have.property('maximumLatency');
      for (const a of [created, unsaid]) expect((await call({ method: 'DELETE', path: pathOf(a) })).status).to.equal(204);
    });

    it('a grant withdrawn while data is buffered: nothing is sent when the UE wakes, the transfers end with FAILURE, and their reports are dropped with the grant', async () => {
      const granted = policy.grants.get('as1')!;
      const ue4 = `externalId:${UE4.externalId}`;
      await setReachable(UE4.externalId, false);
      const created = await create(configuration({ externalId: UE4.externalId, niddDownlinkDataTransfers: [transfer({ externalId: UE4.externalId })] }));
      const entry = (created.json as { niddDownlinkDataTransfers: Json[] }).niddDownlinkDataTransfers[0];
      expect(entry).to.include({ deliveryStatus: 'BUFFERING' });
      const later = await call({ method: 'POST', path: deliveriesOf(pathOf(created)), body: transfer({ externalId: UE4.externalId }) });
      expect(later.status, later.text).to.equal(201);
      const asked = policy.asked.length;
      policy.grants.set('as1', { ...granted, targets: granted.targets.filter(t => t !== ue4) });
      try {
        await setReachable(UE4.externalId, true);
        const decided = () => policy.asked.slice(asked).filter(q => q.targets.includes(ue4));
        // The network tells of the UE on one of its next changes.
        for (let i = 0; i < 60 && decided().length === 0; i++) await advance();
        for (let i = 0; i < 5; i++) await advance();
        await watcher.settle();
        // Each transfer is decided again before it would be sent; the reports (and the UE's readings) are decided as notifications.
        expect(decided().filter(q => q.operation === 'create')).to.have.length(2);
        expect(decided().filter(q => q.operation === 'notify')).to.not.have.length(0);
        for (const q of decided()) expect(policy.evaluate(q).allowed).to.equal(false);
        expect(watcher.for(idOf(created)), 'no report, no reading').to.deep.equal([]);
      } finally {
        policy.grants.set('as1', granted);
      }
      // With the grant back, the AS finds the outcome: FAILURE, the data was never delivered.
      const read = await call({ method: 'GET', path: pathOf(created) });
      valid('NiddConfiguration', read.json);
      expect((read.json as { niddDownlinkDataTransfers: Json[] }).niddDownlinkDataTransfers).to.deep.equal([{ externalId: UE4.externalId, data: DATA, deliveryStatus: 'FAILURE' }]);
      problem(await call({ method: 'GET', path: pathOf(later) }), 404, 'RESOURCE_NOT_FOUND');
      expect(await ids(deliveriesOf(pathOf(created)))).to.deep.equal([]);
      expect((await call({ method: 'DELETE', path: pathOf(created) })).status).to.equal(204);
    });

    it('data buffered while authorization does not answer stays buffered when the UE wakes, and is delivered once it answers', async () => {
      const ue4 = `externalId:${UE4.externalId}`;
      await setReachable(UE4.externalId, false);
      const created = await create(configuration({ externalId: UE4.externalId }));
      const later = await call({ method: 'POST', path: deliveriesOf(pathOf(created)), body: transfer({ externalId: UE4.externalId }) });
      expect(later.status, later.text).to.equal(201);
      const asked = policy.asked.length;
      const evaluate = policy.evaluate.bind(policy);
      // Only the decision taken again before sending fails: an outage, not a withdrawn grant.
      policy.evaluate = q => {
        if (q.operation === 'create' && q.targets.includes(ue4)) throw new Error('authorization unreachable');
        return evaluate(q);
      };
      try {
        await setReachable(UE4.externalId, true);
        const tried = () => policy.asked.slice(asked).filter(q => q.operation === 'create' && q.targets.includes(ue4));
        for (let i = 0; i < 60 && tried().length === 0; i++) await advance();
        expect(tried(), 'decided again before sending').to.not.have.length(0);
        expect((await call({ method: 'GET', path: pathOf(later) })).json, 'still buffered, not failed for an outage').to.deep.include({ deliveryStatus: 'BUFFERING' });
      } finally {
        policy.evaluate = evaluate;
      }
      // Answered again: the UE's next change sends it.
      for (let i = 0; i < 60 && (await call({ method: 'GET', path: pathOf(later) })).status === 200; i++) await advance();
      problem(await call({ method: 'GET', path: pathOf(later) }), 404, 'RESOURCE_NOT_FOUND');
      const n = await watcher.waitFor(x => x.subscriptionId === idOf(created) && Buffer.from(x.body).toString('utf8').includes('"deliveryStatus"'), advance);
      expect(JSON.parse(Buffer.from(n.body).toString('utf8'))).to.deep.include({ deliveryStatus: 'SUCCESS_NEXT_HOP_ACKNOWLEDGED' });
      expect((await call({ method: 'DELETE', path: pathOf(created) })).status).to.equal(204);
    });
  });

  describe('configuration lifetime and transfers carried by a create', () => {
    it('a create carrying a transfer for a UE out of reach lists it buffered, and shows its outcome once delivered', async () => {
      await setReachable(UE4.externalId, false);
      const body = configuration({ externalId: UE4.externalId, niddDownlinkDataTransfers: [transfer({ externalId: UE4.externalId })] });
      const created = await create(body);
      valid('NiddConfiguration', created.json);
      const entry = (created.json as { niddDownlinkDataTransfers: Json[] }).niddDownlinkDataTransfers[0];
      expect(entry).to.include({ deliveryStatus: 'BUFFERING', data: DATA });
      expect(entry['self']).to.match(new RegExp(`^${API_ROOT}${deliveriesOf(pathOf(created))}/`));
      expect(await ids(deliveriesOf(pathOf(created)))).to.deep.equal([(entry['self'] as string).split('/').pop()]);
      await setReachable(UE4.externalId, true);
      await watcher.waitFor(x => bodyOf(x)['niddDownlinkDataTransfer'] === entry['self'], advance);
      const read = await call({ method: 'GET', path: pathOf(created) });
      valid('NiddConfiguration', read.json);
      expect((read.json as { niddDownlinkDataTransfers: Json[] }).niddDownlinkDataTransfers).to.deep.equal([
        { externalId: UE4.externalId, data: DATA, deliveryStatus: 'SUCCESS_NEXT_HOP_ACKNOWLEDGED' },
      ]);
      await setReachable(UE4.externalId, true);
      // The configuration's reliableDataService holds for its transfers that do not say.
      const atOnce = await create(configuration({ externalId: UE4.externalId, reliableDataService: true, niddDownlinkDataTransfers: [transfer({ externalId: UE4.externalId })] }));
      expect((atOnce.json as { niddDownlinkDataTransfers: Json[] }).niddDownlinkDataTransfers).to.deep.equal([
        { externalId: UE4.externalId, data: DATA, deliveryStatus: 'SUCCESS_ACKNOWLEDGED' },
      ]);
      expect(await ids(deliveriesOf(pathOf(atOnce)))).to.deep.equal([]);
    });

    it('ends at its duration: TERMINATED is notified, the configuration and its buffered data are gone', async () => {
      await setReachable(UE2.externalId, false);
      const created = await create(configuration({ duration: new Date(Date.now() + 1_500).toISOString() }));
      const id = idOf(created);
      const buffered = await call({ method: 'POST', path: deliveriesOf(pathOf(created)), body: transfer() });
      expect(buffered.status, buffered.text).to.equal(201);
      await new Promise(r => setTimeout(r, 1_600));
      await advance();
      await watcher.settle();
      const status = notified(id, 'status');
      expect(status).to.deep.equal([{ niddConfiguration: created.headers['location'], externalId: UE2.externalId, status: 'TERMINATED' }]);
      valid('NiddConfigurationStatusNotification', status[0]);
      problem(await call({ method: 'GET', path: pathOf(created) }), 404, 'RESOURCE_NOT_FOUND');
      problem(await call({ method: 'GET', path: pathOf(buffered) }), 404, 'RESOURCE_NOT_FOUND');
    });

    it('deleting a configuration drops the data buffered under it', async () => {
      await setReachable(UE2.externalId, false);
      const created = await create();
      const buffered = await call({ method: 'POST', path: deliveriesOf(pathOf(created)), body: transfer() });
      expect(buffered.status, buffered.text).to.equal(201);
      expect((await call({ method: 'DELETE', path: pathOf(created) })).status).to.equal(204);
      problem(await call({ method: 'GET', path: pathOf(buffered) }), 404, 'RESOURCE_NOT_FOUND');
      await setReachable(UE2.externalId, true);
      for (let i = 0; i < 10; i++) await advance();
      await watcher.settle();
      expect(watcher.for(idOf(created))).to.deep.equal([]);
    });
  });

  describe('uplink', () => {
    it('data a UE sends on a configuration reaches that configuration as a NiddUplinkDataNotification, naming the UE as the configuration does', async () => {
      const byMsisdn = await create({ msisdn: UE3.msisdn, notificationDestination: AS_DESTINATION });
      const byGroup = await create({ externalGroupId: GROUP1, notificationDestination: AS_DESTINATION });
      const members = (await svc.network.groupMembers(GROUP1))!;
      const member = members[2];
      const reading = Buffer.from([1, 2, 3, 4]).toString('base64');
      const on = (c: T8Answer) => ({ scsAsId: 'as1', configurationId: idOf(c) });
      await svc.network.emit(uplinkEvent({ ...on(byMsisdn), externalId: UE3.externalId, data: reading }));
      await svc.network.emit(uplinkEvent({ ...on(byGroup), externalId: member.externalId, data: reading }));
      // Malformed, unknown, or not covered by the configuration named (UE7 is no member of the group): nothing.
      expect(members.map(m => m.externalId)).to.not.include(UE7.externalId);
      await svc.network.emit(uplinkEvent({ ...on(byGroup), externalId: UE7.externalId, data: reading }));
      await svc.network.emit(uplinkEvent({ ...on(byMsisdn), externalId: member.externalId, data: reading }));
      await svc.network.emit(uplinkEvent({ scsAsId: 'as1', configurationId: crypto.randomUUID(), externalId: UE3.externalId, data: reading }));
      await svc.network.emit({ capability: NIDD_API, type: 'uplink-data', payload: { ...on(byMsisdn), externalId: UE3.externalId, data: 'not base64!' } });
      await svc.network.emit({ capability: NIDD_API, type: 'uplink-data', payload: { ...on(byMsisdn), scsAsId: 'as1.>', externalId: UE3.externalId, data: reading } });
      await watcher.settle();
      const msisdnNotes = notified(idOf(byMsisdn), 'data');
      expect(msisdnNotes).to.deep.equal([{ niddConfiguration: byMsisdn.headers['location'], msisdn: UE3.msisdn, data: reading }]);
      valid('NiddUplinkDataNotification', msisdnNotes[0]);
      expect(notified(idOf(byGroup), 'data')).to.deep.equal([{ niddConfiguration: byGroup.headers['location'], externalId: member.externalId, data: reading }]);
      expect(watcher.received.map(n => Buffer.from(n.body).toString('utf8')).join('\n')).to.not.include(UE7.externalId);
      for (const c of [byMsisdn, byGroup]) expect((await call({ method: 'DELETE', path: pathOf(c) })).status).to.equal(204);
    });

    it('two ASes with configurations for the same UE each receive only the data sent on their own', async () => {
      const as2Grant = policy.grants.get('as2')!;
      policy.grants.set('as2', { ...as2Grant, targets: [...as2Grant.targets, `externalId:${UE2.externalId}`] });
      const watcher2 = await NotificationWatcher.open(mesh.nats.url, mesh.stateDir, 'as2');
      try {
        await setReachable(UE2.externalId, false);
        const mine = await create();
        const theirs = await t8(client, { scsAsId: 'as2', scopes: SCOPES, method: 'POST', path: configurations('as2'), body: configuration() });
        expect(theirs.status, theirs.text).to.equal(201);
        const forMine = Buffer.from('for as1 only').toString('base64');
        const forTheirs = Buffer.from('for as2 only').toString('base64');
        await svc.network.emit(uplinkEvent({ scsAsId: 'as1', configurationId: idOf(mine), externalId: UE2.externalId, data: forMine }));
        await svc.network.emit(uplinkEvent({ scsAsId: 'as2', configurationId: idOf(theirs), externalId: UE2.externalId, data: forTheirs }));
        // A configuration is looked up under its own AS only.
        await svc.network.emit(uplinkEvent({ scsAsId: 'as1', configurationId: idOf(theirs), externalId: UE2.externalId, data: forTheirs }));
        await watcher.settle();
        await watcher2.settle();
        expect(notified(idOf(mine), 'data')).to.deep.equal([{ niddConfiguration: mine.headers['location'], externalId: UE2.externalId, data: forMine }]);
        expect(watcher2.for(idOf(theirs)).map(bodyOf)).to.deep.equal([{ niddConfiguration: theirs.headers['location'], externalId: UE2.externalId, data: forTheirs }]);
        const text = (w: NotificationWatcher) => w.received.map(n => Buffer.from(n.body).toString('utf8')).join('\n');
        expect(text(watcher)).to.not.include(forTheirs);
        expect(text(watcher2)).to.not.include(forMine);

        // The simulated UE: the application of each AS sends its own reading, on its own configuration.
        await setReachable(UE2.externalId, true);
        const reading = (n: NotificationRequested) => bodyOf(n)['data'] as string;
        const own = await watcher.waitFor(n => n.subscriptionId === idOf(mine) && reading(n) !== forMine, advance);
        const their = await watcher2.waitFor(n => n.subscriptionId === idOf(theirs) && reading(n) !== forTheirs, advance);
        expect(reading(own)).to.not.equal(reading(their));
        expect(text(watcher)).to.not.include(reading(their));
        expect(text(watcher2)).to.not.include(reading(own));
        expect((await call({ method: 'DELETE', path: pathOf(mine) })).status).to.equal(204);
        expect((await t8(client, { scsAsId: 'as2', scopes: SCOPES, method: 'DELETE', path: pathOf(theirs) })).status).to.equal(204);
      } finally {
        policy.grants.set('as2', as2Grant);
        await watcher2.close();
      }
    });

    it('the simulated UEs send readings of their own as the network changes, only while a configuration exists', async () => {
      const created = await create(configuration({ externalId: UE4.externalId }));
      const id = idOf(created);
      const n = await watcher.waitFor(x => x.subscriptionId === id && 'data' in bodyOf(x), advance);
      const body = bodyOf(n);
      valid('NiddUplinkDataNotification', body);
      expect(body).to.include({ niddConfiguration: created.headers['location'], externalId: UE4.externalId });
      expect(Buffer.from(body['data'] as string, 'base64')).to.have.length(8);
      expect((await call({ method: 'DELETE', path: pathOf(created) })).status).to.equal(204);
      await watcher.settle();
      const count = watcher.for(id).length;
      for (let i = 0; i < 20; i++) await advance();
      await watcher.settle();
      expect(watcher.for(id).length, 'no reading after delete').to.equal(count);
    });
  });

  describe('with an operator limit of 1 s (NIDD_MAX_BUFFERING_S=1)', () => {
    before(async () => {
      client.close();
      await svc.stop();
      svc = await startInstance(mesh, logs, policy.decide, { NIDD_MAX_BUFFERING_S: '1' });
      client = edgeClient(mesh, svc.port);
    });

    it('data buffered with a longer maximumLatency, or none, waits no longer than the limit (FAILURE_TIMEOUT)', async () => {
      await setReachable(UE2.externalId, false);
      const created = await create();
      const asked = await call({ method: 'POST', path: deliveriesOf(pathOf(created)), body: transfer({ maximumLatency: 600 }) });
      expect(asked.status, asked.text).to.equal(201);
      expect(asked.json).to.include({ maximumLatency: 1 });
      const unsaid = await call({ method: 'POST', path: deliveriesOf(pathOf(created)), body: transfer() });
      expect(unsaid.status, unsaid.text).to.equal(201);
      await new Promise(r => setTimeout(r, 1_100));
      await setReachable(UE2.externalId, false);
      await advance();
      await watcher.settle();
      for (const a of [asked, unsaid]) {
        const reports = watcher.received.map(bodyOf).filter(b => b['niddDownlinkDataTransfer'] === a.headers['location']);
        expect(reports).to.deep.equal([{ niddDownlinkDataTransfer: a.headers['location'], deliveryStatus: 'FAILURE_TIMEOUT' }]);
        problem(await call({ method: 'GET', path: pathOf(a) }), 404, 'RESOURCE_NOT_FOUND');
      }
      expect((await call({ method: 'DELETE', path: pathOf(created) })).status).to.equal(204);
    });
  });
});
