import { expect } from 'chai';
import { loadT8Schemas } from '@aese/t8-openapi';
import type { T8Schemas } from '@aese/t8-openapi';
import { startTestMesh } from '../../../test/support/mesh.ts';
import type { TestMesh } from '../../../test/support/mesh.ts';
import { simulatedGroupId, simulatedUeIdentifiers } from '../src/network/simulated-core.ts';
import type { RunningCapabilityExposure } from '../src/server.ts';
import { API_ROOT, edgeClient, startInstance, t8, TestPolicy, t8Assertions } from './support.ts';
import type { T8Answer, T8Call } from './support.ts';

const CP = '/3gpp-cp-parameter-provisioning/v1';
const SCOPES = ['3gpp-cp-parameter-provisioning'];
const S = '#/paths/~1{scsAsId}~1subscriptions';
const LIST = `${S}/get/responses/200/content/application~1json/schema`;
const UE1 = simulatedUeIdentifiers(1);
const UE2 = simulatedUeIdentifiers(2);
const UE3 = simulatedUeIdentifiers(3);
const UE5 = simulatedUeIdentifiers(5);
const GROUP1 = simulatedGroupId(1);
const HOUR = 3600;

type Json = Record<string, unknown>;
interface CpSet {
  setId: string;
  self?: string;
  [member: string]: unknown;
}
interface CpInfo {
  self: string;
  cpParameterSets: Record<string, CpSet>;
  cpReports?: Record<string, { setIds: string[]; failureCode: string }>;
  [member: string]: unknown;
}

/** A UE reporting every hour for two minutes, stationary, on a replaceable battery. */
const hourly = (setId: string, extra: Json = {}): CpSet => ({
  setId,
  periodicCommunicationIndicator: 'PERIODICALLY',
  periodicTime: HOUR,
  communicationDurationTime: 120,
  stationaryIndication: 'STATIONARY',
  batteryInds: ['BATTERY_REPLACE'],
  ...extra,
});
/** A UE reachable on weekdays from 08:00 to 09:00 UTC. */
const morning = (setId: string, extra: Json = {}): CpSet => ({
  setId,
  periodicCommunicationIndicator: 'ON_DEMAND',
  scheduledCommunicationTime: { daysOfWeek: [1, 2, 3, 4, 5], timeOfDayStart: '08:00:00Z', timeOfDayEnd: '09:00:00Z' },
  scheduledCommunicationType: 'UPLINK',
  ...extra,
});
const info = (who: Json, sets: CpSet[], extra: Json = {}): Json => ({ ...who, cpParameterSets: Object.fromEntries(sets.map((set, i) => [`k${i}`, set])), ...extra });

describe('CpProvisioning (3gpp-cp-parameter-provisioning) through the Invoke pipeline', function () {
  this.timeout(60_000);
  let mesh: TestMesh;
  let schemas: T8Schemas;
  let svc: RunningCapabilityExposure;
  let client: ReturnType<typeof edgeClient>;
  const policy = new TestPolicy();
  const logs: string[] = [];

  const call = (c: T8Call): Promise<T8Answer> => t8(client, { scopes: SCOPES, ...c });
  const { valid, problem } = t8Assertions(() => schemas, 'cp-provisioning');
  const create = async (body: Json, scsAsId = 'as1'): Promise<CpInfo> => {
    valid('CpInfo', body, 'request');
    const a = await call({ scsAsId, method: 'POST', path: `${CP}/${scsAsId}/subscriptions`, body });
    expect(a.status, a.text).to.equal(201);
    valid('CpInfo', a.json);
    const c = a.json as CpInfo;
    expect(a.headers['location']).to.equal(c.self);
    return c;
  };
  const itemOf = (c: CpInfo): string => new URL(c.self).pathname;
  const listed = async (scsAsId = 'as1'): Promise<string[]> => {
    const a = await call({ scsAsId, method: 'GET', path: `${CP}/${scsAsId}/subscriptions` });
    expect(a.status, a.text).to.equal(200);
    valid(LIST, a.json);
    return (a.json as CpInfo[]).map(c => c.self);
  };

  before(async () => {
    schemas = await loadT8Schemas();
    mesh = await startTestMesh({ extraEnv: { SIM_TICK_MS: '0' } });
    const category = ['communication-pattern'];
    policy.grants.set('as1', {
      targets: [`externalId:${UE1.externalId}`, `msisdn:${UE2.msisdn}`, `externalId:${UE5.externalId}`, `externalGroupId:${GROUP1}`, 'externalId:nobody@scef.test'],
      categories: category,
    });
    policy.grants.set('as2', { targets: [`externalId:${UE1.externalId}`, `externalId:${UE2.externalId}`], categories: category });
    svc = await startInstance(mesh, logs, policy.decide);
    client = edgeClient(mesh, svc.port);
  });

  after(async () => {
    client?.close();
    await svc?.stop();
    await mesh?.stop();
  });

  it('provisions sets for a UE (201): each set gets its self link; the UE is the authorization target', async () => {
    const body = info({ externalId: UE1.externalId, mtcProviderId: 'meters-inc' }, [hourly('hourly'), morning('mornings')]);
    const c = await create(body);
    expect(c.self).to.match(new RegExp(`^${API_ROOT}${CP}/as1/subscriptions/[0-9a-f-]{36}$`));
    expect(c.cpParameterSets).to.deep.equal({
      k0: { ...hourly('hourly'), self: `${c.self}/cpSets/hourly` },
      k1: { ...morning('mornings'), self: `${c.self}/cpSets/mornings` },
    });
    expect(c).to.include({ externalId: UE1.externalId, mtcProviderId: 'meters-inc' }).and.not.have.property('cpReports');
    expect(policy.asked.at(-1)).to.deep.equal({
      scsAsId: 'as1',
      api: '3gpp-cp-parameter-provisioning',
      operation: 'create',
      dataCategories: ['communication-pattern'],
      targets: [`externalId:${UE1.externalId}`],
      pathScsAsId: 'as1',
    });
    const read = await call({ method: 'GET', path: itemOf(c) });
    expect(read.status).to.equal(200);
    expect(read.json).to.deep.equal(c);
    expect(await listed()).to.include(c.self);
  });

  it('reports each set the HSS cannot apply, by failure code, and stores the others', async () => {
    const past = new Date(Date.now() - 60_000).toISOString();
    const c = await create(
      info({ msisdn: UE2.msisdn }, [
        hourly('ok'),
        hourly('no-period', { periodicTime: undefined }),
        morning('period-on-demand', { periodicTime: HOUR }),
        hourly('too-often', { periodicTime: 30, communicationDurationTime: 10 }),
        hourly('longer-than-period', { communicationDurationTime: 2 * HOUR }),
        morning('empty-window', { scheduledCommunicationTime: { timeOfDayStart: '08:00:00Z', timeOfDayEnd: '08:00:00Z' } }),
        hourly('expired', { validityTime: past }),
        hourly('unknown-battery', { batteryInds: ['SOLAR'] }),
        { setId: 'nothing' },
        hourly('ok'),
        hourly('unsure', { confidenceLevel: '0.20' }),
        morning('vague', { accuracyLevel: '0.10', confidenceLevel: '0.90' }),
        hourly('vague-app', { appExpUeBehvs: [{ appId: 'meter-upload', confidenceLevel: '0.95', accuracyLevel: '0.30' }] }),
      ]),
    );
    expect(Object.values(c.cpParameterSets).map(s => s.setId)).to.deep.equal(['ok']);
    expect(c.cpReports).to.deep.equal({
      OTHER_REASON: {
        setIds: ['no-period', 'period-on-demand', 'too-often', 'longer-than-period', 'empty-window', 'expired', 'unknown-battery', 'nothing'],
        failureCode: 'OTHER_REASON',
      },
      SET_ID_DUPLICATED: { setIds: ['ok'], failureCode: 'SET_ID_DUPLICATED' },
      CONFIDENCE_LEVEL_NOT_SUFFICIENT: { setIds: ['unsure'], failureCode: 'CONFIDENCE_LEVEL_NOT_SUFFICIENT' },
      ACCURACY_LEVEL_NOT_SUFFICIENT: { setIds: ['vague', 'vague-app'], failureCode: 'ACCURACY_LEVEL_NOT_SUFFICIENT' },
    });
    expect(JSON.stringify(c.cpReports)).not.to.include(UE2.msisdn);
  });

  it("set ids are per AS and UE, across the AS's subscriptions: a group holding the UE gets SET_ID_DUPLICATED; another AS's same id is no conflict and is not told", async () => {
    await create(info({ externalId: UE5.externalId }, [hourly('meter')]));
    const group = await create(info({ externalGroupId: GROUP1 }, [hourly('meter'), morning('fleet')]));
    expect(Object.values(group.cpParameterSets).map(s => s.setId)).to.deep.equal(['fleet']);
    expect(group.cpReports).to.deep.equal({ SET_ID_DUPLICATED: { setIds: ['meter'], failureCode: 'SET_ID_DUPLICATED' } });
    // UE1 is in GROUP1: the group's "fleet" is UE1's for as1 now.
    const mine = await create(info({ externalId: UE1.externalId }, [morning('fleet'), morning('as1-only')]));
    expect(mine.cpReports).to.deep.equal({ SET_ID_DUPLICATED: { setIds: ['fleet'], failureCode: 'SET_ID_DUPLICATED' } });

    // as2 chooses its own correlators for the same UE: as1's "fleet" is neither reported nor a conflict.
    const theirs = await create(info({ externalId: UE1.externalId }, [morning('fleet'), morning('other')]), 'as2');
    expect(Object.values(theirs.cpParameterSets).map(s => s.setId)).to.deep.equal(['fleet', 'other']);
    expect(theirs).not.to.have.property('cpReports');
    const replaced = await call({ scsAsId: 'as2', method: 'PUT', path: `${itemOf(theirs)}/cpSets/fleet`, body: hourly('fleet') });
    expect(replaced.status, replaced.text).to.equal(200);
    expect(replaced.json).to.deep.equal({ ...hourly('fleet'), self: `${theirs.self}/cpSets/fleet` });
    // Within as2 set ids stay unique per UE; and as2's sets block nothing of as1's.
    const again = await call({ scsAsId: 'as2', method: 'POST', path: `${CP}/as2/subscriptions`, body: info({ externalId: UE1.externalId }, [morning('other')]) });
    expect(again.status, again.text).to.equal(500);
    expect(again.json).to.deep.equal([{ setIds: ['other'], failureCode: 'SET_ID_DUPLICATED' }]);
    const ours = await create(info({ externalId: UE1.externalId }, [morning('other')]));
    expect(ours).not.to.have.property('cpReports');
    expect(JSON.stringify([theirs, replaced.json, again.json])).not.to.include('as1-only');
  });

  it('answers 500 with the CpReports and stores nothing when every set is refused', async () => {
    const before = await listed();
    const a = await call({ method: 'POST', path: `${CP}/as1/subscriptions`, body: info({ externalId: UE1.externalId }, [hourly('hourly'), { setId: 'empty' }]) });
    expect(a.status, a.text).to.equal(500);
    expect(a.headers['content-type']).to.equal('application/json');
    valid(`${S}/post/responses/500/content/application~1json/schema`, a.json);
    expect(a.json).to.deep.equal([
      { setIds: ['hourly'], failureCode: 'SET_ID_DUPLICATED' },
      { setIds: ['empty'], failureCode: 'OTHER_REASON' },
    ]);
    expect(await listed()).to.deep.equal(before);
  });

  it('replaces a subscription (PUT): refused changes keep the set as it was; the UE cannot change', async () => {
    const c = await create(info({ externalId: UE1.externalId }, [hourly('replace-a'), morning('replace-b')]));
    const put = await call({
      method: 'PUT',
      path: itemOf(c),
      body: info({ externalId: UE1.externalId }, [hourly('replace-a', { periodicTime: 2 * HOUR }), hourly('replace-b', { periodicTime: 10 })]),
    });
    expect(put.status, put.text).to.equal(200);
    valid('CpInfo', put.json);
    const replaced = put.json as CpInfo;
    expect(replaced.cpParameterSets['k0']).to.include({ periodicTime: 2 * HOUR, self: `${c.self}/cpSets/replace-a` });
    expect(replaced.cpParameterSets['k1']).to.deep.equal(c.cpParameterSets['k1']);
    expect(replaced.cpReports).to.deep.equal({ OTHER_REASON: { setIds: ['replace-b'], failureCode: 'OTHER_REASON' } });
    problem(await call({ method: 'PUT', path: itemOf(c), body: info({ externalId: UE5.externalId }, [hourly('replace-a')]) }), 400, 'INVALID_PARAMETER', '/externalId');
    const refused = await call({ method: 'PUT', path: itemOf(c), body: info({ externalId: UE1.externalId }, [{ setId: 'replace-a' }]) });
    expect(refused.status, refused.text).to.equal(500);
    valid(`${S}~1{subscriptionId}/put/responses/500/content/application~1json/schema`, refused.json);
    expect((await call({ method: 'GET', path: itemOf(c) })).json).to.deep.equal(replaced);
    problem(await call({ method: 'PATCH', path: itemOf(c), contentType: 'application/merge-patch+json', body: {} }), 405, 'METHOD_NOT_ALLOWED');
    expect((await call({ method: 'DELETE', path: itemOf(c) })).status).to.equal(204);
    problem(await call({ method: 'GET', path: itemOf(c) }), 404, 'RESOURCE_NOT_FOUND');
    // Its set ids are free again for the UE.
    await create(info({ externalId: UE1.externalId }, [hourly('replace-a')]));
  });

  it('serves one set: read, replace, refusal with its CpReport, delete; the last set ends the subscription', async () => {
    const c = await create(info({ externalId: UE1.externalId }, [hourly('one'), morning('two')]));
    const path = `${itemOf(c)}/cpSets/one`;
    const got = await call({ method: 'GET', path });
    expect(got.status, got.text).to.equal(200);
    valid('CpParameterSet', got.json);
    expect(got.json).to.deep.equal(c.cpParameterSets['k0']);

    const next = hourly('one', { periodicTime: 6 * HOUR, trafficProfile: 'SINGLE_TRANS_UL' });
    valid('CpParameterSet', next, 'request');
    const put = await call({ method: 'PUT', path, body: next });
    expect(put.status, put.text).to.equal(200);
    valid('CpParameterSet', put.json);
    expect(put.json).to.deep.equal({ ...next, self: `${c.self}/cpSets/one` });

    const refused = await call({ method: 'PUT', path, body: hourly('one', { confidenceLevel: '0.10' }) });
    expect(refused.status, refused.text).to.equal(500);
    valid('CpReport', refused.json);
    expect(refused.json).to.deep.equal({ setIds: ['one'], failureCode: 'CONFIDENCE_LEVEL_NOT_SUFFICIENT' });
    expect((await call({ method: 'GET', path })).json, 'a refusal changes nothing').to.deep.equal(put.json);
    problem(await call({ method: 'PUT', path, body: hourly('two') }), 400, 'RESOURCE_ID_MISMATCH', '/setId');
    problem(await call({ method: 'GET', path: `${itemOf(c)}/cpSets/three` }), 404, 'RESOURCE_NOT_FOUND');

    expect((await call({ method: 'DELETE', path })).status).to.equal(204);
    problem(await call({ method: 'GET', path }), 404, 'RESOURCE_NOT_FOUND');
    expect(Object.keys(((await call({ method: 'GET', path: itemOf(c) })).json as CpInfo).cpParameterSets)).to.deep.equal(['k1']);
    expect((await call({ method: 'DELETE', path: `${itemOf(c)}/cpSets/two` })).status).to.equal(204);
    problem(await call({ method: 'GET', path: itemOf(c) }), 404, 'RESOURCE_NOT_FOUND');
  });

  it('another AS gets, for the subscription and its sets, the 404 of an unknown id', async () => {
    const c = await create(info({ externalId: UE1.externalId }, [hourly('mine')]));
    const id = c.self.split('/').pop()!;
    const unknown = crypto.randomUUID();
    const cases: [string, string, Omit<T8Call, 'path'>[]][] = [
      [
        `${CP}/as2/subscriptions/${id}`,
        `${CP}/as2/subscriptions/${unknown}`,
        [{ method: 'GET' }, { method: 'PUT', body: info({ externalId: UE1.externalId }, [hourly('x')]) }, { method: 'DELETE' }],
      ],
      [
        `${CP}/as2/subscriptions/${id}/cpSets/mine`,
        `${CP}/as2/subscriptions/${unknown}/cpSets/mine`,
        [{ method: 'GET' }, { method: 'PUT', body: hourly('mine') }, { method: 'DELETE' }],
      ],
    ];
    for (const [theirs, nobodys, attempts] of cases) {
      for (const attempt of attempts) {
        const a = await call({ scsAsId: 'as2', ...attempt, path: theirs });
        const b = await call({ scsAsId: 'as2', ...attempt, path: nobodys });
        expect(a.status, `${attempt.method} ${theirs}: ${a.text}`).to.equal(404);
        expect(a.text).to.equal(b.text);
        expect(a.headers).to.deep.equal(b.headers);
      }
    }
    problem(await call({ scsAsId: 'as2', method: 'GET', path: itemOf(c) }), 403, 'SCS_AS_ID_MISMATCH');
    expect((await call({ method: 'GET', path: itemOf(c) })).json, 'as1 still has it, unchanged').to.deep.equal(c);
  });

  it('refuses an ungranted UE (403, nothing stored), also on a set whose subscription it was withdrawn from', async () => {
    const before = await listed();
    const p = problem(await call({ method: 'POST', path: `${CP}/as1/subscriptions`, body: info({ externalId: UE3.externalId }, [hourly('x')]) }), 403, 'TARGET_NOT_GRANTED');
    expect(JSON.stringify(p)).not.to.include(UE3.externalId);
    expect(await listed()).to.deep.equal(before);

    const c = await create(info({ externalId: UE5.externalId }, [hourly('withdrawn'), morning('kept')]));
    const grant = policy.grants.get('as1')!;
    policy.grants.set('as1', { ...grant, targets: grant.targets.filter(t => t !== `externalId:${UE5.externalId}`) });
    try {
      // The set's body names no UE: the subscription's UE is what is decided.
      problem(await call({ method: 'PUT', path: `${itemOf(c)}/cpSets/withdrawn`, body: hourly('withdrawn', { periodicTime: 2 * HOUR }) }), 403, 'TARGET_NOT_GRANTED');
      problem(await call({ method: 'DELETE', path: `${itemOf(c)}/cpSets/withdrawn` }), 403, 'TARGET_NOT_GRANTED');
      problem(await call({ method: 'GET', path: `${itemOf(c)}/cpSets/withdrawn` }), 403, 'TARGET_NOT_GRANTED');
      expect(policy.asked.at(-1)).to.deep.include({ operation: 'read', targets: [`externalId:${UE5.externalId}`] });
    } finally {
      policy.grants.set('as1', grant);
    }
    expect((await call({ method: 'GET', path: itemOf(c) })).json, 'nothing changed').to.deep.equal(c);
  });

  it('refuses malformed subscriptions and sets (400, nothing stored, nothing decided); an unknown UE is a 400 once authorized', async () => {
    const before = await listed();
    const ue = { externalId: UE1.externalId };
    const cases: [string, Json, string, string][] = [
      ['two identifiers', info({ ...ue, msisdn: UE2.msisdn }, [hourly('a')]), 'INVALID_PARAMETER', '/'],
      ['no identifier', info({}, [hourly('a')]), 'INVALID_PARAMETER', '/'],
      ['malformed externalId', info({ externalId: 'no-at-sign' }, [hourly('a')]), 'INVALID_PARAMETER', '/externalId'],
      ['UE address', info({ ...ue, ueIpAddr: { ipv4Addr: UE1.ipv4Addr } }, [hourly('a')]), 'INVALID_PARAMETER', '/ueIpAddr'],
      ['SCEF-only reports', info(ue, [hourly('a')], { cpReports: { X: { setIds: ['a'], failureCode: 'OTHER_REASON' } } }), 'INVALID_PARAMETER', '/cpReports'],
      ['set id no path can name', info(ue, [hourly('a/b')]), 'INVALID_PARAMETER', '/cpParameterSets/k0/setId'],
      ['set self', info(ue, [hourly('a', { self: `${API_ROOT}${CP}/as1/subscriptions/x/cpSets/a` })]), 'RESOURCE_ID_MISMATCH', '/cpParameterSets/k0/self'],
      [
        'time of day',
        info(ue, [morning('a', { scheduledCommunicationTime: { timeOfDayStart: '25:00:00' } })]),
        'INVALID_PARAMETER',
        '/cpParameterSets/k0/scheduledCommunicationTime/timeOfDayStart',
      ],
      ['confidence level', info(ue, [hourly('a', { confidenceLevel: 'high1' })]), 'INVALID_PARAMETER', '/cpParameterSets/k0/confidenceLevel'],
      [
        'SCEF-only failure code',
        info(ue, [hourly('a', { appExpUeBehvs: [{ appId: 'x', failureCode: 'OTHER_REASON' }] })]),
        'INVALID_PARAMETER',
        '/cpParameterSets/k0/appExpUeBehvs/0/failureCode',
      ],
      ['unknown member', info(ue, [hourly('a', { sneaky: true })]), 'INVALID_PARAMETER', '/cpParameterSets/k0/sneaky'],
    ];
    const asked = policy.asked.length;
    for (const [name, body, cause] of cases) {
      const a = await call({ method: 'POST', path: `${CP}/as1/subscriptions`, body });
      expect(a.status, `${name}: ${a.text}`).to.equal(400);
      problem(a, 400, cause);
      expect(a.text, name).not.to.include(UE1.externalId).and.not.include(UE2.msisdn);
    }
    for (const [name, body, , param] of cases) {
      if (param === '/') continue;
      const a = await call({ method: 'POST', path: `${CP}/as1/subscriptions`, body });
      expect((a.json as { invalidParams: { param: string }[] }).invalidParams[0].param, name).to.equal(param);
    }
    expect(policy.asked.length, 'invalid requests never reach authorization').to.equal(asked);
    problem(await call({ method: 'POST', path: `${CP}/as1/subscriptions`, body: info({ externalId: 'nobody@scef.test' }, [hourly('a')]) }), 400, 'UNKNOWN_UE', '/externalId');
    expect(await listed()).to.deep.equal(before);
  });
});
