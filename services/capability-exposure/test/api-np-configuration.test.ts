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
import { createNpConfigurationModule, NETWORK_PARAMETERS_CATEGORY, NP_CONFIGURATION_API } from '../src/modules/np-configuration/index.ts';
import { appliedLatency, appliedResponseTime, PARAMETERS_APPLIED } from '../src/modules/np-configuration/network.ts';
import type { PendingNotification } from '../src/modules/registry.ts';
import { ModuleRegistry } from '../src/modules/registry.ts';
import { simulatedGroupId, simulatedUeIdentifiers, SimulatedCore } from '../src/network/simulated-core.ts';
import type { RunningCapabilityExposure } from '../src/server.ts';
import { API_ROOT, AS_DESTINATION, edgeClient, NotificationWatcher, startInstance, t8, testResolver, TestPolicy } from './support.ts';
import type { T8Answer } from './support.ts';

const BASE = `/${NP_CONFIGURATION_API}/v1`;
const LIST_SCHEMA = '#/paths/~1{scsAsId}~1configurations/get/responses/200/content/application~1json/schema';
const UE1 = simulatedUeIdentifiers(1);
const UE2 = simulatedUeIdentifiers(2);
const UE4 = simulatedUeIdentifiers(4);
const GROUP2 = simulatedGroupId(2);
/** Group 2 holds UEs 2, 6, 10, ...; every tenth UE of the simulation may roam. */
const GROUP2_ROAMERS = [10, 30, 50, 70, 90].map(i => simulatedUeIdentifiers(i).externalId);

interface ConfigurationNotification {
  readonly configuration: string;
  readonly appliedParam?: Record<string, unknown>;
  readonly configResults?: { externalIds?: string[]; msisdns?: string[]; resultReason: string }[];
}

const sleep = (ms: number): Promise<void> => new Promise(r => setTimeout(r, ms));
const future = (ms = 3_600_000): string => new Date(Date.now() + ms).toISOString();

describe('np-configuration: timers the serving nodes encode', () => {
  it('maximum latency: the eDRX cycle or 10 minute periodic update closest below the request', () => {
    expect([5, 9, 10, 1000, 2620, 2621, 2700, 3000, 86_400].map(appliedLatency)).to.deep.equal([5, 5, 10, 655, 2400, 2621, 2621, 3000, 86_400]);
  });
  it('maximum response time: the longest Active Time (2 s, 1 min or 6 min steps) not above the request', () => {
    expect([2, 3, 62, 100, 1900, 11_160].map(appliedResponseTime)).to.deep.equal([2, 2, 62, 62, 1860, 11_160]);
  });
});

describe(`${NP_CONFIGURATION_API} through the mesh`, function () {
  this.timeout(120_000);
  let mesh: TestMesh;
  let schemas: T8Schemas;
  let svc: RunningCapabilityExposure;
  let client: ReturnType<typeof edgeClient>;
  let watcher: NotificationWatcher;
  const policy = new TestPolicy();
  const logs: string[] = [];
  const collection = (scsAsId: string): string => `${BASE}/${scsAsId}/configurations`;
  const valid = (schema: string, body: unknown, direction: 'request' | 'response' = 'response'): void => {
    const v = schemas.validator('np-configuration', schema, direction);
    expect(v(body), `${schema}: ${JSON.stringify(v.violations())}`).to.equal(true);
  };
  const problem = (a: T8Answer, status: number, cause: string): Record<string, unknown> => {
    expect(a.status, a.text).to.equal(status);
    expect(a.headers['content-type']).to.equal('application/problem+json');
    expect((a.json as { cause: string }).cause).to.equal(cause);
    return a.json as Record<string, unknown>;
  };
  const idOf = (a: T8Answer): string => a.headers['location'].split('/').pop()!;
  const itemOf = (a: T8Answer): string => a.headers['location'].slice(API_ROOT.length);
  const listed = async (scsAsId = 'as1'): Promise<string[]> => {
    const a = await t8(client, { scsAsId, method: 'GET', path: collection(scsAsId) });
    expect(a.status, a.text).to.equal(200);
    valid(LIST_SCHEMA, a.json);
    return (a.json as { self: string }[]).map(s => s.self);
  };
  const create = async (body: Record<string, unknown>, scsAsId = 'as1'): Promise<T8Answer> => {
    valid('NpConfiguration', body, 'request');
    return t8(client, { scsAsId, method: 'POST', path: collection(scsAsId), body });
  };
  const notificationsOf = (id: string): ConfigurationNotification[] =>
    watcher.for(id).map(n => {
      const body = JSON.parse(Buffer.from(n.body).toString('utf8')) as ConfigurationNotification;
      valid('ConfigurationNotification', body);
      return body;
    });
  const notified = async (id: string, count = 1): Promise<ConfigurationNotification[]> => {
    // Generously: the machine may be busy.
    await eventually(() => watcher.for(id).length >= count, 15_000, `${count} notifications`);
    return notificationsOf(id);
  };

  before(async () => {
    schemas = await loadT8Schemas();
    mesh = await startTestMesh({ extraEnv: { SIM_TICK_MS: '0' } });
    const targets = [`externalId:${UE1.externalId}`, `msisdn:${UE2.msisdn}`, `externalGroupId:${GROUP2}`, 'externalId:nobody@scef.test'];
    policy.grants.set('as1', { targets, categories: [NETWORK_PARAMETERS_CATEGORY] });
    policy.grants.set('as2', { targets, categories: [NETWORK_PARAMETERS_CATEGORY] });
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

  it('configures one UE: 201 with the values, decided on its externalId; the network answers with the values it applied', async () => {
    const body = { externalId: UE1.externalId, maximumLatency: 1000, maximumResponseTime: 100, suggestedNumberOfDlPackets: 10, notificationDestination: AS_DESTINATION };
    const created = await create(body);
    expect(created.status, created.text).to.equal(201);
    valid('NpConfiguration', created.json);
    expect(created.json).to.deep.equal({ ...body, self: created.headers['location'] });
    expect(created.headers['location']).to.match(new RegExp(`^${API_ROOT}${collection('as1')}/[0-9a-f-]{36}$`));
    expect(policy.asked.filter(q => q.operation === 'create').at(-1)).to.deep.equal({
      scsAsId: 'as1',
      api: NP_CONFIGURATION_API,
      operation: 'create',
      dataCategories: [NETWORK_PARAMETERS_CATEGORY],
      targets: [`externalId:${UE1.externalId}`],
      pathScsAsId: 'as1',
    });
    expect(watcher.for(idOf(created)), 'the network has not answered yet').to.have.length(0);
    const [n] = await notified(idOf(created));
    expect(n).to.deep.equal({ configuration: created.headers['location'], appliedParam: { externalIds: [UE1.externalId], maximumLatency: 655, maximumResponseTime: 62 } });
    expect(watcher.for(idOf(created))[0]).to.deep.include({ api: NP_CONFIGURATION_API, destination: AS_DESTINATION });
    expect(policy.asked.at(-1)).to.deep.include({ operation: 'notify', dataCategories: [NETWORK_PARAMETERS_CATEGORY], targets: [`externalId:${UE1.externalId}`] });
  });

  it('adjusts values outside the operator ranges to the nearest bound and answers with what it accepted', async () => {
    const created = await create({ msisdn: UE2.msisdn, maximumLatency: 1, maximumResponseTime: 20_000, suggestedNumberOfDlPackets: 1000, notificationDestination: AS_DESTINATION });
    expect(created.status, created.text).to.equal(201);
    valid('NpConfiguration', created.json);
    expect(created.json).to.include({ maximumLatency: 5, maximumResponseTime: 11_160, suggestedNumberOfDlPackets: 100 });
    expect((await t8(client, { method: 'GET', path: itemOf(created) })).json).to.deep.equal(created.json);
    const [n] = await notified(idOf(created));
    expect(n.appliedParam, 'reported by msisdn, as configured').to.deep.equal({ msisdns: [UE2.msisdn], maximumLatency: 5, maximumResponseTime: 11_160 });
  });

  it('configures a group: after its guard time, one notification with the members that applied them and the roaming ones that could not', async () => {
    const core = svc.simulator!;
    const roams = async (externalId: string) => (await core.roaming((await core.findUe({ externalId }))!)).roaming;
    for (let tick = 0; tick < 100 && !(await Promise.all(GROUP2_ROAMERS.map(roams))).some(Boolean); tick++) await core.advance();
    const roaming: string[] = [];
    for (const id of GROUP2_ROAMERS) if (await roams(id)) roaming.push(id);
    expect(roaming, 'some member roams').to.not.have.length(0);
    const members = (await core.groupMembers(GROUP2))!.map(u => u.externalId);
    const started = Date.now();
    const created = await create({ externalGroupId: GROUP2, maximumLatency: 3000, groupReportingGuardTime: 1, notificationDestination: AS_DESTINATION });
    expect(created.status, created.text).to.equal(201);
    expect(policy.asked.filter(q => q.operation === 'create').at(-1)).to.deep.include({ targets: [`externalGroupId:${GROUP2}`] });
    await sleep(700);
    expect(watcher.for(idOf(created)), 'held for the guard time').to.have.length(0);
    const [n] = await notified(idOf(created));
    expect(Date.now() - started).to.be.at.least(1000);
    expect(n.configuration).to.equal(created.headers['location']);
    expect(n.appliedParam).to.deep.equal({ externalIds: members.filter(m => !roaming.includes(m)), maximumLatency: 3000 });
    expect(n.configResults).to.deep.equal([{ externalIds: roaming, resultReason: 'ROAMING_NOT_ALLOWED' }]);
    await sleep(300);
    expect(watcher.for(idOf(created))).to.have.length(1);
  });

  it('lists, replaces (PUT) and merge-patches (groupReportGuardTime is the guard time); each version is answered with its values', async () => {
    const created = await create({ externalId: UE1.externalId, maximumLatency: 100, notificationDestination: AS_DESTINATION });
    const id = idOf(created);
    const item = itemOf(created);
    expect(await listed()).to.include(created.headers['location']);
    const applied = (values: Record<string, unknown>) => ({ configuration: created.headers['location'], appliedParam: { externalIds: [UE1.externalId], ...values } });
    const versions = [applied({ maximumLatency: 81 })];

    const replacement = { externalId: UE1.externalId, maximumLatency: 2621, maximumResponseTime: 60, notificationDestination: AS_DESTINATION, validityTime: future() };
    const put = await t8(client, { method: 'PUT', path: item, body: replacement });
    expect(put.status, put.text).to.equal(200);
    valid('NpConfiguration', put.json);
    expect(put.json).to.deep.equal({ ...replacement, self: created.headers['location'] });
    versions.push(applied({ maximumLatency: 2621, maximumResponseTime: 60 }));
    await eventually(() => notificationsOf(id).some(n => JSON.stringify(n) === JSON.stringify(versions[1])), 15_000, 'the answer to version 2');

    const patch = { groupReportGuardTime: 5, maximumResponseTime: null, suggestedNumberOfDlPackets: 3 };
    valid('NpConfigurationPatch', patch, 'request');
    const patched = await t8(client, { method: 'PATCH', path: item, contentType: 'application/merge-patch+json', body: patch });
    expect(patched.status, patched.text).to.equal(200);
    valid('NpConfiguration', patched.json);
    expect(patched.json).to.deep.equal({
      externalId: UE1.externalId,
      maximumLatency: 2621,
      suggestedNumberOfDlPackets: 3,
      groupReportingGuardTime: 5,
      notificationDestination: AS_DESTINATION,
      validityTime: replacement.validityTime,
      self: created.headers['location'],
    });
    expect((await t8(client, { method: 'GET', path: item })).json).to.deep.equal(patched.json);
    versions.push(applied({ maximumLatency: 2621 }));
    await eventually(() => notificationsOf(id).some(n => JSON.stringify(n) === JSON.stringify(versions[2])), 15_000, 'the answer to version 3');
    await sleep(400);
    // At most one answer per version, in order; an answer to a replaced version may have come before its replacement, never after.
    const seen = notificationsOf(id).map(n => versions.findIndex(v => JSON.stringify(v) === JSON.stringify(n)));
    expect(seen.slice(-2)).to.deep.equal([1, 2]);
    expect([
      [0, 1, 2],
      [1, 2],
    ]).to.deep.include(seen);

    problem(await t8(client, { method: 'PUT', path: item, body: { ...replacement, externalId: undefined, msisdn: UE2.msisdn } }), 400, 'UE_IDENTIFIER_IMMUTABLE');
    problem(
      await t8(client, { method: 'PATCH', path: item, contentType: 'application/merge-patch+json', body: { maximumLatency: null, suggestedNumberOfDlPackets: null } }),
      400,
      'INVALID_PARAMETER',
    );
    expect((await t8(client, { method: 'GET', path: item })).json).to.deep.equal(patched.json);
  });

  it('deletes: 204, gone, and an answer still to come is not sent; without a notificationDestination nothing is notified', async () => {
    const created = await create({ externalId: UE1.externalId, maximumLatency: 60, notificationDestination: AS_DESTINATION });
    expect((await t8(client, { method: 'DELETE', path: itemOf(created) })).status).to.equal(204);
    problem(await t8(client, { method: 'GET', path: itemOf(created) }), 404, 'RESOURCE_NOT_FOUND');
    expect(await listed()).to.not.include(created.headers['location']);
    const silent = await create({ externalId: UE1.externalId, maximumLatency: 60 });
    expect(silent.status, silent.text).to.equal(201);
    await sleep(600);
    await watcher.settle();
    expect(watcher.for(idOf(created))).to.have.length(0);
    expect(watcher.for(idOf(silent))).to.have.length(0);
  });

  it('refuses what breaks the rules with a 400 and a cause, an ungranted UE with 403; nothing stored, nothing notified', async () => {
    const before = await listed();
    const sent = watcher.received.length;
    const refusals: [Record<string, unknown>, string, string][] = [
      [{ externalGroupId: GROUP2, maximumLatency: 60 }, 'INVALID_PARAMETER', '/notificationDestination'],
      [{ externalId: UE1.externalId, notificationDestination: AS_DESTINATION }, 'INVALID_PARAMETER', '/maximumLatency'],
      [{ externalId: UE1.externalId, maximumLatency: 60, ueIpAddr: { ipv4Addr: UE4.ipv4Addr } }, 'INVALID_PARAMETER', '/ueIpAddr'],
      [{ externalId: UE1.externalId, maximumLatency: 60, validityTime: new Date(Date.now() - 1000).toISOString() }, 'INVALID_PARAMETER', '/validityTime'],
      [{ externalId: 'not an external id', maximumLatency: 60 }, 'INVALID_PARAMETER', '/externalId'],
      [{ externalId: UE1.externalId, maximumLatency: 60, notificationDestination: 'https://10.0.0.1/n' }, 'INVALID_NOTIFICATION_DESTINATION', '/notificationDestination'],
      // Granted, but unknown to the network: learnt only once authorized.
      [{ externalId: 'nobody@scef.test', maximumLatency: 60 }, 'UNKNOWN_UE', '/externalId'],
    ];
    for (const [refused, cause, param] of refusals) {
      const p = problem(await create(refused), 400, cause);
      expect((p['invalidParams'] as { param: string }[])[0].param, cause).to.equal(param);
    }
    problem(await t8(client, { method: 'POST', path: collection('as1'), body: { externalId: UE1.externalId, msisdn: UE2.msisdn, maximumLatency: 60 } }), 400, 'INVALID_PARAMETER');
    const denied = await create({ externalId: UE4.externalId, maximumLatency: 60 });
    problem(denied, 403, 'TARGET_NOT_GRANTED');
    expect(denied.text).to.not.include(UE4.externalId);
    expect(await listed()).to.deep.equal(before);
    await sleep(400);
    expect(watcher.received.length).to.equal(sent);
  });

  it('another AS gets exactly the 404 of an unknown id, and the configuration is unchanged', async () => {
    const created = await create({ externalId: UE1.externalId, maximumLatency: 60 });
    const id = idOf(created);
    for (const [method, extra] of [
      ['GET', {}],
      ['PUT', { body: { externalId: UE1.externalId, maximumLatency: 120 } }],
      ['PATCH', { body: { maximumLatency: 120 }, contentType: 'application/merge-patch+json' }],
      ['DELETE', {}],
    ] as const) {
      const foreign = await t8(client, { scsAsId: 'as2', method, path: `${collection('as2')}/${id}`, ...extra });
      const unknown = await t8(client, { scsAsId: 'as2', method, path: `${collection('as2')}/${randomUUID()}`, ...extra });
      problem(foreign, 404, 'RESOURCE_NOT_FOUND');
      expect(foreign.text, method).to.equal(unknown.text);
    }
    expect((await t8(client, { method: 'GET', path: itemOf(created) })).json).to.deep.equal(created.json);
    expect(await listed('as2')).to.deep.equal([]);
  });
});

describe(`${NP_CONFIGURATION_API} with the reject policy and validity times`, () => {
  let schemas: T8Schemas;
  const allow: Decide = async () => ({ allowed: true, obligations: [], policyVersion: 1, denyCause: '' });

  before(async () => {
    schemas = await loadT8Schemas();
  });

  function setup() {
    const network = new SimulatedCore({ seed: 1, ueCount: 8, groupCount: 2, tickMs: 0 });
    const store = new MemoryResourceStore();
    const module = createNpConfigurationModule(
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
      { outOfRange: 'reject', answerDelayMs: 10, expirySweepMs: 50 },
    );
    const registry = new ModuleRegistry();
    registry.register(module);
    const invoker = new Invoker({ registry, schemas, store, decide: allow, onError: err => expect.fail(String(err)) });
    const pending: PendingNotification[] = [];
    network.subscribe(async e => void pending.push(...(await module.onNetworkEvent!(e))));
    const call = async (method: string, path: string, body?: unknown) => {
      const out = await invoker.invoke({
        scsAsId: 'as1',
        method,
        path,
        contentType: body === undefined ? '' : 'application/json',
        body: Buffer.from(body === undefined ? '' : JSON.stringify(body)),
        scopes: [NP_CONFIGURATION_API],
        apiRoot: API_ROOT,
      });
      return { status: out.status, body: JSON.parse(Buffer.from(out.body).toString('utf8')) as Record<string, unknown> };
    };
    const post = (body: unknown) => call('POST', `${BASE}/as1/configurations`, body);
    return { network, store, module, pending, call, post, stored: () => store.all(NP_CONFIGURATION_API) };
  }

  it('answers 403 PARAMETER_OUT_OF_RANGE naming every parameter out of range, and stores nothing', async () => {
    const { network, module, post, stored, pending } = setup();
    try {
      const out = await post({ externalId: UE1.externalId, maximumLatency: 1, maximumResponseTime: 60, suggestedNumberOfDlPackets: 101, notificationDestination: AS_DESTINATION });
      expect(out.status).to.equal(403);
      expect(out.body).to.include({ cause: 'PARAMETER_OUT_OF_RANGE', status: 403 });
      expect((out.body['invalidParams'] as { param: string }[]).map(p => p.param)).to.deep.equal(['/maximumLatency', '/suggestedNumberOfDlPackets']);
      expect(stored()).to.have.length(0);
      const ok = await post({ externalId: UE1.externalId, maximumLatency: 5, suggestedNumberOfDlPackets: 100, notificationDestination: AS_DESTINATION });
      expect(ok.status, JSON.stringify(ok.body)).to.equal(201);
      expect(ok.body).to.include({ maximumLatency: 5, suggestedNumberOfDlPackets: 100 });
      await sleep(100);
      expect(pending.map(p => p.body)).to.deep.equal([{ configuration: ok.body['self'], appliedParam: { externalIds: [UE1.externalId], maximumLatency: 5 } }]);
      expect(pending[0].dataCategories).to.deep.equal([NETWORK_PARAMETERS_CATEGORY]);
    } finally {
      await module.stop!();
      await network.stop();
    }
  });

  it('does not report the network answer to a version that was replaced since', async () => {
    const { network, module, call, post, pending } = setup();
    try {
      const created = await post({ externalId: UE1.externalId, maximumLatency: 60, notificationDestination: AS_DESTINATION });
      const self = created.body['self'] as string;
      const configurationId = self.split('/').pop()!;
      await sleep(100);
      expect(pending.map(p => p.body)).to.deep.equal([{ configuration: self, appliedParam: { externalIds: [UE1.externalId], maximumLatency: 40 } }]);
      const put = await call('PUT', self.slice(API_ROOT.length), { externalId: UE1.externalId, maximumLatency: 600, notificationDestination: AS_DESTINATION });
      expect(put.status, JSON.stringify(put.body)).to.equal(200);
      await sleep(100);
      expect(pending).to.have.length(2);
      const answer = (revision: number) => network.emit({ capability: NP_CONFIGURATION_API, type: PARAMETERS_APPLIED, payload: { scsAsId: 'as1', configurationId, revision } });
      await answer(1);
      expect(pending, 'the answer to the replaced version').to.have.length(2);
      await answer(2);
      expect(pending.map(p => p.body)).to.deep.equal([
        { configuration: self, appliedParam: { externalIds: [UE1.externalId], maximumLatency: 40 } },
        { configuration: self, appliedParam: { externalIds: [UE1.externalId], maximumLatency: 600 } },
        { configuration: self, appliedParam: { externalIds: [UE1.externalId], maximumLatency: 600 } },
      ]);
    } finally {
      await module.stop!();
      await network.stop();
    }
  });

  it('removes a configuration once its validityTime has passed', async () => {
    const { network, module, post, stored } = setup();
    try {
      await module.start!();
      const out = await post({ externalId: UE1.externalId, maximumLatency: 60, validityTime: new Date(Date.now() + 300).toISOString() });
      expect(out.status, JSON.stringify(out.body)).to.equal(201);
      const kept = await post({ externalId: UE1.externalId, maximumLatency: 60, validityTime: future() });
      expect(stored()).to.have.length(2);
      await sleep(500);
      expect(stored().map(r => r.resource['self'])).to.deep.equal([kept.body['self']]);
    } finally {
      await module.stop!();
      await network.stop();
    }
  });
});
