import { expect } from 'chai';
import { eventually } from '@aese/testing';
import { loadT8Schemas } from '@aese/t8-openapi';
import type { T8Schemas } from '@aese/t8-openapi';
import { startTestMesh } from '../../../test/support/mesh.ts';
import type { TestMesh } from '../../../test/support/mesh.ts';
import { NETWORK_STATUS_CATEGORY, REPORTING_NETWORK_STATUS_API } from '../src/modules/reporting-network-status/index.ts';
import type { SimulatedCore } from '../src/network/simulated-core.ts';
import type { RunningCapabilityExposure } from '../src/server.ts';
import { API_ROOT, AS_DESTINATION, edgeClient, NotificationWatcher, startInstance, t8, TestPolicy } from './support.ts';
import type { T8Answer } from './support.ts';

const BASE = `/${REPORTING_NETWORK_STATUS_API}/v1`;
const LIST_SCHEMA = '#/paths/~1{scsAsId}~1subscriptions/get/responses/200/content/application~1json/schema';
/** The simulation's scale: a tracking area is at level 31 with this many connected UEs. */
const CAPACITY = 16;

interface Report {
  readonly subscription: string;
  readonly nsiValue?: number;
  readonly nsiType?: string;
}

const sleep = (ms: number): Promise<void> => new Promise(r => setTimeout(r, ms));
const typeOf = (level: number): string => (level <= 10 ? 'LOW' : level <= 20 ? 'MEDIUM' : 'HIGH');
const future = (ms = 3_600_000): string => new Date(Date.now() + ms).toISOString();

/**
 * The network's load as the test sees it through the simulator itself: per Tracking Area
 * Identity, the connected UEs at home; per cell (CGI), its TAI. The module must report the
 * level this implies.
 */
async function loadOf(core: SimulatedCore): Promise<{ connected: Map<string, number>; taiOfCell: Map<string, string> }> {
  const connected = new Map<string, number>();
  const taiOfCell = new Map<string, string>();
  for (const ids of (await core.listIdentities()).ues) {
    const ue = (await core.findUe({ externalId: ids.externalId }))!;
    if ((await core.roaming(ue)).roaming) continue;
    const loc = await core.locate(ue);
    const tai = `${loc.plmn.mcc}${loc.plmn.mnc}${loc.tac}`;
    taiOfCell.set(`${loc.plmn.mcc}${loc.plmn.mnc}${loc.cellId}`, tai);
    connected.set(tai, (connected.get(tai) ?? 0) + ((await core.reachability(ue)).reachable ? 1 : 0));
  }
  return { connected, taiOfCell };
}

async function levelOf(core: SimulatedCore, tais: readonly string[]): Promise<number> {
  const { connected } = await loadOf(core);
  return Math.max(0, ...tais.map(t => Math.min(31, Math.round((31 * (connected.get(t) ?? 0)) / CAPACITY))));
}

describe(`${REPORTING_NETWORK_STATUS_API} through the mesh`, function () {
  this.timeout(120_000);
  let mesh: TestMesh;
  let schemas: T8Schemas;
  let svc: RunningCapabilityExposure;
  let client: ReturnType<typeof edgeClient>;
  let watcher: NotificationWatcher;
  const policy = new TestPolicy();
  const logs: string[] = [];
  /** The tracking areas of the simulated network, busiest first. */
  let tais: string[];
  const collection = (scsAsId: string): string => `${BASE}/${scsAsId}/subscriptions`;
  const core = (): SimulatedCore => svc.simulator!;
  const valid = (schema: string, body: unknown, direction: 'request' | 'response' = 'response'): void => {
    const v = schemas.validator('reporting-network-status', schema, direction);
    expect(v(body), `${schema}: ${JSON.stringify(v.violations())}`).to.equal(true);
  };
  const problem = (a: T8Answer, status: number, cause: string): void => {
    expect(a.status, a.text).to.equal(status);
    expect(a.headers['content-type']).to.equal('application/problem+json');
    expect((a.json as { cause: string }).cause).to.equal(cause);
  };
  const body = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({
    notificationDestination: AS_DESTINATION,
    locationArea: { trackingAreaIds: [tais[0]] },
    timeDuration: future(),
    ...extra,
  });
  const idOf = (a: T8Answer): string => a.headers['location'].split('/').pop()!;
  const itemOf = (a: T8Answer): string => a.headers['location'].slice(API_ROOT.length);
  const listed = async (scsAsId = 'as1'): Promise<string[]> => {
    const a = await t8(client, { scsAsId, method: 'GET', path: collection(scsAsId) });
    expect(a.status, a.text).to.equal(200);
    valid(LIST_SCHEMA, a.json);
    return (a.json as { self: string }[]).map(s => s.self);
  };
  const reportsOf = (id: string): Report[] =>
    watcher.for(id).map(n => {
      const r = JSON.parse(Buffer.from(n.body).toString('utf8')) as Report;
      valid('NetworkStatusReportingNotification', r);
      return r;
    });
  /** Waits (generously: the machine may be busy) until the subscription has had `count` reports. */
  const reported = (id: string, count: number): Promise<void> => eventually(() => watcher.for(id).length >= count, 15_000, `${count} reports`);
  /** The first report, sent by the radio network's first answer without the network changing. */
  const firstReport = async (id: string): Promise<Report> => {
    await reported(id, 1);
    return reportsOf(id)[0];
  };

  before(async () => {
    schemas = await loadT8Schemas();
    mesh = await startTestMesh({ extraEnv: { SIM_TICK_MS: '0' } });
    policy.grants.set('as1', { targets: [], categories: [NETWORK_STATUS_CATEGORY] });
    policy.grants.set('as2', { targets: [], categories: [NETWORK_STATUS_CATEGORY] });
    policy.grants.set('as3', { targets: ['externalId:ue1@scef.test'], categories: ['location'] });
    svc = await startInstance(mesh, logs, policy.decide);
    client = edgeClient(mesh, svc.port);
    watcher = await NotificationWatcher.open(mesh.nats.url, mesh.stateDir, 'as1');
    const { connected } = await loadOf(core());
    tais = [...connected].sort((a, b) => b[1] - a[1]).map(([t]) => t);
    expect(tais.length, 'the network has several tracking areas').to.be.greaterThan(2);
  });

  after(async () => {
    client?.close();
    await watcher?.close();
    await svc?.stop();
    await mesh?.stop();
  });

  it('creates a subscription naming no UE (category network-status, no target); the first report carries the area level the load implies', async () => {
    const request = body();
    valid('NetworkStatusReportingSubscription', request, 'request');
    const created = await t8(client, { method: 'POST', path: collection('as1'), body: request });
    expect(created.status, created.text).to.equal(201);
    valid('NetworkStatusReportingSubscription', created.json);
    expect(created.json).to.deep.equal({ ...request, self: created.headers['location'] });
    expect(created.headers['location']).to.match(new RegExp(`^${API_ROOT}${collection('as1')}/[0-9a-f-]{36}$`));
    expect(policy.asked.filter(q => q.operation === 'create').at(-1)).to.deep.equal({
      scsAsId: 'as1',
      api: REPORTING_NETWORK_STATUS_API,
      operation: 'create',
      dataCategories: [NETWORK_STATUS_CATEGORY],
      targets: [],
      pathScsAsId: 'as1',
    });
    const first = await firstReport(idOf(created));
    expect(first).to.deep.equal({ subscription: created.headers['location'], nsiValue: await levelOf(core(), [tais[0]]) });
    expect(first.nsiValue, 'the busiest tracking area is congested').to.be.greaterThan(0);
    expect(policy.asked.at(-1)).to.deep.include({ operation: 'notify', dataCategories: [NETWORK_STATUS_CATEGORY], targets: [] });
    expect(watcher.for(idOf(created))[0]).to.deep.include({ api: REPORTING_NETWORK_STATUS_API, destination: AS_DESTINATION });
  });

  it('a continuous subscription reports every change of its area level and nothing else, whatever names the area', async () => {
    const { taiOfCell } = await loadOf(core());
    const cell = [...taiOfCell].find(([, t]) => t === tais[1])![0];
    const area = { trackingAreaIds: [tais[0]], cellIds: [cell] };
    const created = await t8(client, { method: 'POST', path: collection('as1'), body: body({ locationArea: area }) });
    expect(created.status, created.text).to.equal(201);
    const id = idOf(created);
    const levels = [(await firstReport(id)).nsiValue!];
    expect(levels[0]).to.equal(await levelOf(core(), [tais[0], tais[1]]));
    let changes = 0;
    for (let tick = 0; tick < 25; tick++) {
      await core().advance();
      const level = await levelOf(core(), [tais[0], tais[1]]);
      if (level !== levels.at(-1)) {
        changes++;
        levels.push(level);
      }
      await reported(id, levels.length);
      await watcher.settle();
      expect(
        reportsOf(id).map(r => r.nsiValue),
        `tick ${tick}`,
      ).to.deep.equal(levels);
    }
    expect(changes, 'the load moved the level').to.be.greaterThan(2);
  });

  it('thresholdValues: a report when the level reaches a threshold or falls back under it; thresholdTypes: abstracted values on a type change', async () => {
    const start = await levelOf(core(), [tais[1]]);
    // Between the current level and the next: crossed as soon as the level moves up.
    const threshold = Math.min(31, start + 1);
    const byValue = await t8(client, { method: 'POST', path: collection('as1'), body: body({ locationArea: { trackingAreaIds: [tais[1]] }, thresholdValues: [threshold] }) });
    const byType = await t8(client, {
      method: 'POST',
      path: collection('as1'),
      body: body({ locationArea: { trackingAreaIds: [tais[1]] }, thresholdTypes: ['LOW', 'MEDIUM', 'HIGH'] }),
    });
    expect([byValue.status, byType.status], byValue.text + byType.text).to.deep.equal([201, 201]);
    expect(await firstReport(idOf(byValue))).to.deep.equal({ subscription: byValue.headers['location'], nsiValue: start });
    expect(await firstReport(idOf(byType))).to.deep.equal({ subscription: byType.headers['location'], nsiType: typeOf(start) });
    const values = [start];
    const types = [typeOf(start)];
    let previous = start;
    for (let tick = 0; tick < 40; tick++) {
      await core().advance();
      const level = await levelOf(core(), [tais[1]]);
      if ((previous < threshold && threshold <= level) || (level < threshold && threshold <= previous)) values.push(level);
      if (typeOf(level) !== typeOf(previous)) types.push(typeOf(level));
      previous = level;
      await reported(idOf(byValue), values.length);
      await reported(idOf(byType), types.length);
      await watcher.settle();
      expect(
        reportsOf(idOf(byValue)).map(r => r.nsiValue),
        `values at tick ${tick}`,
      ).to.deep.equal(values);
      expect(
        reportsOf(idOf(byType)).map(r => r.nsiType),
        `types at tick ${tick}`,
      ).to.deep.equal(types);
    }
    expect(values.length, 'the threshold was crossed').to.be.greaterThan(1);
    expect(reportsOf(idOf(byType)).every(r => r.nsiValue === undefined)).to.equal(true);
  });

  it('without timeDuration it is a one-time report: the first answer and nothing after', async () => {
    const created = await t8(client, { method: 'POST', path: collection('as1'), body: body({ timeDuration: undefined, locationArea: { trackingAreaIds: [tais[0], tais[1]] } }) });
    expect(created.status, created.text).to.equal(201);
    expect(created.json).to.not.have.property('timeDuration');
    await firstReport(idOf(created));
    for (let tick = 0; tick < 10; tick++) await core().advance();
    await watcher.settle();
    expect(reportsOf(idOf(created))).to.have.length(1);
  });

  it('reads, lists, replaces (PUT) and merge-patches; a new area gets a new first report; delete stops the reports', async () => {
    const created = await t8(client, { method: 'POST', path: collection('as1'), body: body() });
    const id = idOf(created);
    const item = itemOf(created);
    await firstReport(id);
    const read = await t8(client, { method: 'GET', path: item });
    expect(read.status).to.equal(200);
    expect(read.json).to.deep.equal(created.json);
    expect(await listed()).to.include(created.headers['location']);

    const replacement = body({ locationArea: { trackingAreaIds: [tais[2]] }, thresholdTypes: ['HIGH'] });
    const put = await t8(client, { method: 'PUT', path: item, body: replacement });
    expect(put.status, put.text).to.equal(200);
    valid('NetworkStatusReportingSubscription', put.json);
    expect(put.json).to.deep.equal({ ...replacement, self: created.headers['location'] });
    await reported(id, 2);
    expect(reportsOf(id)[1]).to.deep.equal({ subscription: created.headers['location'], nsiType: typeOf(await levelOf(core(), [tais[2]])) });

    const patch = { locationArea: { trackingAreaIds: [tais[1]] }, timeDuration: null };
    valid('NetStatusRepSubsPatch', patch, 'request');
    const patched = await t8(client, { method: 'PATCH', path: item, contentType: 'application/merge-patch+json', body: patch });
    expect(patched.status, patched.text).to.equal(200);
    valid('NetworkStatusReportingSubscription', patched.json);
    expect(patched.json).to.deep.equal({
      notificationDestination: AS_DESTINATION,
      locationArea: { trackingAreaIds: [tais[1]] },
      thresholdTypes: ['HIGH'],
      self: created.headers['location'],
    });
    expect((await t8(client, { method: 'GET', path: item })).json).to.deep.equal(patched.json);
    await reported(id, 3);
    expect(reportsOf(id)[2]).to.deep.equal({ subscription: created.headers['location'], nsiType: typeOf(await levelOf(core(), [tais[1]])) });
    // Both kinds of threshold at once break the schema's `not`: refused, nothing changes.
    problem(await t8(client, { method: 'PATCH', path: item, contentType: 'application/merge-patch+json', body: { thresholdValues: [1] } }), 400, 'INVALID_PARAMETER');
    problem(
      await t8(client, { method: 'PATCH', path: item, contentType: 'application/merge-patch+json', body: { locationArea: { civicAddresses: [{ country: 'FR' }] } } }),
      400,
      'LOCATION_AREA_NOT_SUPPORTED',
    );
    expect((await t8(client, { method: 'GET', path: item })).json).to.deep.equal(patched.json);

    const continuous = await t8(client, { method: 'POST', path: collection('as1'), body: body({ locationArea: { trackingAreaIds: [tais[0]] } }) });
    await firstReport(idOf(continuous));
    expect((await t8(client, { method: 'DELETE', path: itemOf(continuous) })).status).to.equal(204);
    problem(await t8(client, { method: 'GET', path: itemOf(continuous) }), 404, 'RESOURCE_NOT_FOUND');
    for (let tick = 0; tick < 10; tick++) await core().advance();
    await watcher.settle();
    expect(reportsOf(idOf(continuous)), 'nothing after delete').to.have.length(1);
  });

  it('refuses what it cannot map or that breaks the rules (400 with a cause), stores nothing and sends nothing', async () => {
    const before = await listed();
    const sent = watcher.received.length;
    const refusals: [Record<string, unknown>, string, string][] = [
      [body({ locationArea: { geographicAreas: [{ shape: 'POINT', point: { lat: 48.8, lon: 2.3 } }] } }), 'LOCATION_AREA_NOT_SUPPORTED', '/locationArea/geographicAreas'],
      [body({ locationArea: { routingAreaIds: ['00101000101'] } }), 'LOCATION_AREA_NOT_SUPPORTED', '/locationArea/routingAreaIds'],
      [body({ locationArea: {} }), 'INVALID_PARAMETER', '/locationArea'],
      [body({ locationArea: { trackingAreaIds: [tais[0], 'TA-1'] } }), 'INVALID_PARAMETER', '/locationArea/trackingAreaIds/1'],
      [body({ locationArea: { cellIds: ['00101xyz'] } }), 'INVALID_PARAMETER', '/locationArea/cellIds/0'],
      [body({ locationArea: { trackingAreaIds: Array.from({ length: 65 }, () => tais[0]) } }), 'INVALID_PARAMETER', '/locationArea'],
      [body({ thresholdTypes: ['SEVERE'] }), 'INVALID_PARAMETER', '/thresholdTypes/0'],
      [body({ timeDuration: new Date(Date.now() - 1000).toISOString() }), 'INVALID_PARAMETER', '/timeDuration'],
      // A network this SCEF does not report on: known only once authorized.
      [body({ locationArea: { trackingAreaIds: ['999990001'] } }), 'UNKNOWN_LOCATION_AREA', '/locationArea/trackingAreaIds/0'],
      [body({ locationArea: { cellIds: ['999990000101'] } }), 'UNKNOWN_LOCATION_AREA', '/locationArea/cellIds/0'],
      [body({ notificationDestination: 'https://127.0.0.1/notify' }), 'INVALID_NOTIFICATION_DESTINATION', '/notificationDestination'],
    ];
    for (const [refused, cause, param] of refusals) {
      const a = await t8(client, { method: 'POST', path: collection('as1'), body: refused });
      problem(a, 400, cause);
      expect((a.json as { invalidParams: { param: string }[] }).invalidParams[0].param, cause).to.equal(param);
    }
    // Both kinds of threshold at once: the schema refuses it.
    problem(await t8(client, { method: 'POST', path: collection('as1'), body: body({ thresholdValues: [3], thresholdTypes: ['LOW'] }) }), 400, 'INVALID_PARAMETER');
    expect(await listed()).to.deep.equal(before);
    await sleep(300);
    expect(watcher.received.length).to.equal(sent);
  });

  it('an AS without the network-status category gets 403 (nothing stored); another AS gets the 404 of an unknown id', async () => {
    const created = await t8(client, { method: 'POST', path: collection('as1'), body: body() });
    const id = idOf(created);
    problem(await t8(client, { scsAsId: 'as3', method: 'POST', path: collection('as3'), body: body() }), 403, 'CATEGORY_NOT_GRANTED');
    expect(await listed('as3')).to.deep.equal([]);
    for (const [method, extra] of [
      ['GET', {}],
      ['PUT', { body: body() }],
      ['PATCH', { body: { thresholdValues: [1] }, contentType: 'application/merge-patch+json' }],
      ['DELETE', {}],
    ] as const) {
      const foreign = await t8(client, { scsAsId: 'as2', method, path: `${collection('as2')}/${id}`, ...extra });
      const unknown = await t8(client, { scsAsId: 'as2', method, path: `${collection('as2')}/${crypto.randomUUID()}`, ...extra });
      problem(foreign, 404, 'RESOURCE_NOT_FOUND');
      expect(foreign.text, method).to.equal(unknown.text);
    }
    expect((await t8(client, { method: 'GET', path: itemOf(created) })).json).to.deep.equal(created.json);
  });
});
