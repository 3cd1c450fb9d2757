import { expect } from 'chai';
import { loadT8Schemas } from '@aese/t8-openapi';
import type { T8Schemas } from '@aese/t8-openapi';
import { startTestMesh } from '../../../test/support/mesh.ts';
import type { TestMesh } from '../../../test/support/mesh.ts';
import { HOME_PLMN, simulatedUeIdentifiers, VISITED_PLMN } from '../src/network/simulated-core.ts';
import type { RunningCapabilityExposure } from '../src/server.ts';
import { edgeClient, startInstance, t8, TestPolicy, t8Assertions } from './support.ts';
import type { T8Answer, T8Call } from './support.ts';

const ECR = '/3gpp-ecr-control/v1';
const SCOPES = ['3gpp-ecr-control'];
const UE1 = simulatedUeIdentifiers(1);
const UE2 = simulatedUeIdentifiers(2);
const UE10 = simulatedUeIdentifiers(10);
const OTHER_PLMN = { mcc: '208', mnc: '01' };

describe('ECRControl (3gpp-ecr-control) through the Invoke pipeline', function () {
  this.timeout(60_000);
  let mesh: TestMesh;
  let schemas: T8Schemas;
  let svc: RunningCapabilityExposure;
  let client: ReturnType<typeof edgeClient>;
  const policy = new TestPolicy();
  const logs: string[] = [];

  const call = (c: Omit<T8Call, 'method'> & { method?: string }): Promise<T8Answer> => t8(client, { scopes: SCOPES, method: 'POST', ...c });
  const { valid, problem } = t8Assertions(() => schemas, 'ecr-control');
  /** A query or configure of one AS: the body names the caller (no {scsAsId} in the path). */
  const ecr = (op: 'query' | 'configure', body: Record<string, unknown>, scsAsId = 'as1'): Promise<T8Answer> =>
    call({ scsAsId, path: `${ECR}/${op}`, body: { supportedFeatures: '0', scsAsId, ...body } });
  const data = async (op: 'query' | 'configure', body: Record<string, unknown>, scsAsId = 'as1'): Promise<Record<string, unknown>> => {
    valid('ECRControl', { supportedFeatures: '0', scsAsId, ...body }, 'request');
    const a = await ecr(op, body, scsAsId);
    expect(a.status, a.text).to.equal(200);
    expect(a.headers['content-type']).to.equal('application/json');
    expect(a.headers['location']).to.equal(undefined);
    valid('ECRData', a.json);
    expect(a.res.dataCategories).to.deep.equal(['coverage-restriction']);
    return a.json as Record<string, unknown>;
  };

  before(async () => {
    schemas = await loadT8Schemas();
    mesh = await startTestMesh({ extraEnv: { SIM_TICK_MS: '0' } });
    policy.grants.set('as1', {
      targets: [`externalId:${UE1.externalId}`, `msisdn:${UE1.msisdn}`, `externalId:${UE10.externalId}`, 'externalId:nobody@scef.test'],
      categories: ['coverage-restriction'],
    });
    policy.grants.set('as2', { targets: [`externalId:${UE1.externalId}`], categories: ['qos'] });
    svc = await startInstance(mesh, logs, policy.decide);
    client = edgeClient(mesh, svc.port);
  });

  after(async () => {
    client?.close();
    await svc?.stop();
    await mesh?.stop();
  });

  it('query answers the restriction the subscription holds (none yet), authorized as a read of the UE', async () => {
    expect(await data('query', { externalId: UE1.externalId })).to.deep.equal({ supportedFeatures: '0', restrictedPlmnIds: [] });
    expect(policy.asked.at(-1)).to.deep.equal({
      scsAsId: 'as1',
      api: '3gpp-ecr-control',
      operation: 'read',
      dataCategories: ['coverage-restriction'],
      targets: [`externalId:${UE1.externalId}`],
      pathScsAsId: 'as1',
    });
  });

  it('configure replaces the complete list, restricted or allowed; the UE reads the same by externalId and msisdn', async () => {
    const restricted = await data('configure', { externalId: UE1.externalId, restrictedPlmnIds: [VISITED_PLMN, OTHER_PLMN] });
    expect(restricted).to.deep.equal({ supportedFeatures: '0', restrictedPlmnIds: [VISITED_PLMN, OTHER_PLMN] });
    expect(policy.asked.at(-1)).to.deep.include({ operation: 'update', targets: [`externalId:${UE1.externalId}`] });
    expect(await data('query', { msisdn: UE1.msisdn })).to.deep.equal(restricted);
    expect(policy.asked.at(-1)).to.deep.include({ operation: 'read', targets: [`msisdn:${UE1.msisdn}`] });

    const allowed = await data('configure', { msisdn: UE1.msisdn, allowedPlmnIds: [HOME_PLMN] });
    expect(allowed).to.deep.equal({ supportedFeatures: '0', allowedPlmnIds: [HOME_PLMN] });
    expect(await data('query', { externalId: UE1.externalId })).to.deep.equal(allowed);
  });

  it('the WB-E-UTRAN modes per PLMN need feature ECR_WB_5G, and are answered only to an AS that negotiated it', async () => {
    const wb = [{ plmnId: HOME_PLMN, plmnEcrDataWb: { ecModeARestricted: true, ecModeBRestricted: false } }, { plmnId: OTHER_PLMN }];
    const configured = await data('configure', { supportedFeatures: '1', externalId: UE1.externalId, ecrDataWbs: wb });
    // The list configured before stays: a configure replaces only what it gives.
    expect(configured).to.deep.equal({ supportedFeatures: '1', allowedPlmnIds: [HOME_PLMN], ecrDataWbs: wb });
    expect(await data('query', { supportedFeatures: 'F1', externalId: UE1.externalId })).to.deep.equal(configured);
    expect(await data('query', { externalId: UE1.externalId })).to.deep.equal({ supportedFeatures: '0', allowedPlmnIds: [HOME_PLMN] });
  });

  it('answers the visited PLMN while the UE roams', async () => {
    const sim = svc.simulator!;
    const roamer = (await sim.findUe({ externalId: UE10.externalId }))!;
    expect(await data('query', { externalId: UE10.externalId })).to.deep.equal({ supportedFeatures: '0', restrictedPlmnIds: [] });
    for (let i = 0; i < 200 && !(await sim.roaming(roamer)).roaming; i++) await sim.advance();
    expect((await sim.roaming(roamer)).roaming, 'the roamer went abroad').to.equal(true);
    expect(await data('query', { externalId: UE10.externalId })).to.deep.equal({ supportedFeatures: '0', visitedPlmnId: VISITED_PLMN, restrictedPlmnIds: [] });
    expect(await data('query', { externalId: UE1.externalId })).not.to.have.property('visitedPlmnId');
  });

  it("the body's scsAsId names the caller: another AS's is refused before anything is decided or changed", async () => {
    const before = await data('query', { externalId: UE1.externalId });
    const asked = policy.asked.length;
    const p = problem(
      await call({ scsAsId: 'as1', path: `${ECR}/configure`, body: { supportedFeatures: '0', scsAsId: 'as2', externalId: UE1.externalId, restrictedPlmnIds: [] } }),
      403,
      'SCS_AS_ID_MISMATCH',
    );
    expect(p['detail']).to.equal('the scsAsId in the body is not the authenticated SCS/AS');
    problem(
      await call({ scsAsId: 'as1', path: `${ECR}/configure`, body: { supportedFeatures: '0', externalId: UE1.externalId, restrictedPlmnIds: [] } }),
      400,
      'INVALID_PARAMETER',
    );
    expect(policy.asked.length).to.equal(asked);
    expect(await data('query', { externalId: UE1.externalId })).to.deep.equal(before);
  });

  it("refuses what breaks the API's rules with a 400 before authorization, and changes nothing", async () => {
    const before = await data('query', { externalId: UE1.externalId });
    const asked = policy.asked.length;
    const refusals: ['query' | 'configure', Record<string, unknown>, string][] = [
      ['query', { externalId: UE1.externalId, restrictedPlmnIds: [] }, '/restrictedPlmnIds'],
      ['query', { externalId: UE1.externalId, allowedPlmnIds: [HOME_PLMN] }, '/allowedPlmnIds'],
      ['query', { supportedFeatures: '1', externalId: UE1.externalId, ecrDataWbs: [] }, '/ecrDataWbs'],
      ['configure', { externalId: UE1.externalId }, '/restrictedPlmnIds'],
      ['configure', { externalId: UE1.externalId, restrictedPlmnIds: [HOME_PLMN, OTHER_PLMN, HOME_PLMN] }, '/restrictedPlmnIds/2'],
      ['configure', { externalId: UE1.externalId, allowedPlmnIds: Array.from({ length: 33 }, (_, i) => ({ mcc: '208', mnc: String(10 + i) })) }, '/allowedPlmnIds'],
      ['configure', { externalId: UE1.externalId, ecrDataWbs: [{ plmnId: HOME_PLMN }] }, '/ecrDataWbs'],
      ['configure', { externalId: 'not-an-external-id', restrictedPlmnIds: [] }, '/externalId'],
      ['configure', { externalId: UE1.externalId, restrictedPlmnIds: [{ mcc: '1', mnc: '01' }] }, '/restrictedPlmnIds/0'],
      ['configure', { supportedFeatures: '1', externalId: UE1.externalId, ecrDataWbs: [{ plmnId: { mcc: '001', mnc: '1x' } }] }, '/ecrDataWbs/0'],
    ];
    for (const [op, body, param] of refusals) {
      const p = problem(await ecr(op, body), 400, 'INVALID_PARAMETER');
      expect(
        (p['invalidParams'] as { param: string }[]).map(x => x.param),
        `${op} ${param}`,
      ).to.deep.equal([param]);
    }
    // The schema's own rules: one UE identifier, not both lists.
    problem(await ecr('query', {}), 400, 'INVALID_PARAMETER');
    problem(await ecr('query', { externalId: UE1.externalId, msisdn: UE1.msisdn }), 400, 'INVALID_PARAMETER');
    problem(await ecr('configure', { externalId: UE1.externalId, restrictedPlmnIds: [], allowedPlmnIds: [] }), 400, 'INVALID_PARAMETER');
    expect(policy.asked.length).to.equal(asked);
    expect(await data('query', { externalId: UE1.externalId })).to.deep.equal(before);
  });

  it('refuses an ungranted UE or category (403) and a missing scope, and configures nothing for them', async () => {
    problem(await ecr('configure', { externalId: UE2.externalId, restrictedPlmnIds: [HOME_PLMN] }), 403, 'TARGET_NOT_GRANTED');
    problem(await ecr('query', { msisdn: UE2.msisdn }), 403, 'TARGET_NOT_GRANTED');
    problem(await ecr('configure', { externalId: UE1.externalId, restrictedPlmnIds: [HOME_PLMN] }, 'as2'), 403, 'CATEGORY_NOT_GRANTED');
    const asked = policy.asked.length;
    problem(
      await t8(client, {
        method: 'POST',
        path: `${ECR}/configure`,
        body: { supportedFeatures: '0', scsAsId: 'as1', externalId: UE1.externalId, restrictedPlmnIds: [HOME_PLMN] },
        scopes: ['3gpp-monitoring-event'],
      }),
      403,
      'insufficient_scope',
    );
    expect(policy.asked.length).to.equal(asked);
    expect(await data('query', { externalId: UE1.externalId })).to.deep.equal({ supportedFeatures: '0', allowedPlmnIds: [HOME_PLMN] });
    // UE 2 was never configured: an AS granted it finds it unrestricted.
    policy.grants.set('as5', { targets: [`externalId:${UE2.externalId}`], categories: ['coverage-restriction'] });
    expect(await data('query', { externalId: UE2.externalId }, 'as5')).to.deep.equal({ supportedFeatures: '0', restrictedPlmnIds: [] });
  });

  it('a UE the network does not know is a 400 once authorized; other methods and paths have no route', async () => {
    problem(await ecr('query', { externalId: 'nobody@scef.test' }), 400, 'UNKNOWN_UE');
    const get = await call({ method: 'GET', path: `${ECR}/query` });
    problem(get, 405, 'METHOD_NOT_ALLOWED');
    expect(get.headers['allow']).to.equal('POST');
    problem(await call({ path: `${ECR}/as1/query`, body: { supportedFeatures: '0', scsAsId: 'as1', externalId: UE1.externalId } }), 404, 'RESOURCE_NOT_FOUND');
  });

  it('every replica answers the same subscription data, and it survives a restart', async () => {
    const configured = await data('configure', { externalId: UE1.externalId, restrictedPlmnIds: [OTHER_PLMN] });
    const other = await startInstance(mesh, logs, policy.decide);
    const otherClient = edgeClient(mesh, other.port);
    try {
      const a = await t8(otherClient, {
        scopes: SCOPES,
        method: 'POST',
        path: `${ECR}/query`,
        body: { supportedFeatures: '0', scsAsId: 'as1', msisdn: UE1.msisdn },
      });
      expect(a.status, a.text).to.equal(200);
      expect(a.json).to.deep.equal(configured);
    } finally {
      otherClient.close();
      await other.stop();
    }
    client.close();
    await svc.stop();
    svc = await startInstance(mesh, logs, policy.decide);
    client = edgeClient(mesh, svc.port);
    expect(await data('query', { externalId: UE1.externalId })).to.deep.equal(configured);
  });

  it('no UE identifier in any log', () => {
    for (const id of [UE1.externalId, UE1.msisdn, UE2.externalId, UE2.msisdn, UE10.externalId]) {
      expect(
        [...logs, ...mesh.logs].some(l => l.includes(id)),
        id,
      ).to.equal(false);
    }
    expect(logs.some(l => l.includes('t8 invoke'))).to.equal(true);
  });
});
