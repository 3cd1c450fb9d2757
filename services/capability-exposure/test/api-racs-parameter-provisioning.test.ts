import { expect } from 'chai';
import { loadT8Schemas } from '@aese/t8-openapi';
import type { T8Schemas } from '@aese/t8-openapi';
import { startTestMesh } from '../../../test/support/mesh.ts';
import type { TestMesh } from '../../../test/support/mesh.ts';
import type { RunningCapabilityExposure } from '../src/server.ts';
import { API_ROOT, edgeClient, startInstance, t8, TestPolicy, t8Assertions } from './support.ts';
import type { T8Answer, T8Call } from './support.ts';

const RACS = '/3gpp-racs-pp/v1';
const SCOPES = ['3gpp-racs-pp'];
const P = '#/paths/~1{scsAsId}~1provisionings';
const LIST = `${P}/get/responses/200/content/application~1json/schema`;
/** Two manufacturers' IANA enterprise numbers as Vendor IDs (8 hex digits). */
const VENDOR_A = '0000a1b2';
const VENDOR_B = '0000c3d4';

type Json = Record<string, unknown>;
interface RacsConfig {
  racsId: string;
  racsParamEps?: string;
  racsParam5Gs?: string;
  imeiTacs: string[];
}
interface Provisioning {
  self: string;
  racsConfigs: Record<string, RacsConfig>;
  racsReports?: Record<string, { racsIds: string[]; failureCode: string }>;
  [member: string]: unknown;
}

let rci = 0;
/** A fresh manufacturer-assigned UE radio capability ID (type 0, Vendor ID, 11-digit RCI). */
const racsId = (vendor = VENDOR_A): string => `0${vendor}${(++rci + Date.now() * 100).toString(16).padStart(11, '0').slice(-11)}`;
let tac = 0;
/** A fresh IMEI TAC (8 digits). */
const tacOf = (): string => String(35_000_000 + (++tac % 1_000_000) + (Date.now() % 1000) * 1000).slice(0, 8);
const config = (id: string, extra: Partial<RacsConfig> = {}): RacsConfig => ({ racsId: id, racsParam5Gs: 'c0ffee00', racsParamEps: 'beef01', imeiTacs: [tacOf()], ...extra });
const provisioning = (configs: RacsConfig[]): Json => ({ racsConfigs: Object.fromEntries(configs.map(c => [c.racsId, c])) });

describe('RacsParameterProvisioning (3gpp-racs-pp) through the Invoke pipeline', function () {
  this.timeout(60_000);
  let mesh: TestMesh;
  let schemas: T8Schemas;
  let svc: RunningCapabilityExposure;
  let client: ReturnType<typeof edgeClient>;
  const policy = new TestPolicy();
  const logs: string[] = [];

  const call = (c: T8Call): Promise<T8Answer> => t8(client, { scopes: SCOPES, ...c });
  const { valid, problem } = t8Assertions(() => schemas, 'racs-parameter-provisioning');
  const create = async (body: Json, scsAsId = 'as1'): Promise<Provisioning> => {
    valid('RacsProvisioningData', body, 'request');
    const a = await call({ scsAsId, method: 'POST', path: `${RACS}/${scsAsId}/provisionings`, body });
    expect(a.status, a.text).to.equal(201);
    valid('RacsProvisioningData', a.json);
    const p = a.json as Provisioning;
    expect(a.headers['location']).to.equal(p.self);
    return p;
  };
  const itemOf = (p: Provisioning): string => new URL(p.self).pathname;
  const listed = async (scsAsId = 'as1'): Promise<string[]> => {
    const a = await call({ scsAsId, method: 'GET', path: `${RACS}/${scsAsId}/provisionings` });
    expect(a.status, a.text).to.equal(200);
    valid(LIST, a.json);
    return (a.json as Provisioning[]).map(p => p.self);
  };

  before(async () => {
    schemas = await loadT8Schemas();
    mesh = await startTestMesh({ extraEnv: { SIM_TICK_MS: '0' } });
    // UE models, not UEs: the category is the whole grant.
    policy.grants.set('as1', { targets: [], categories: ['radio-capability'] });
    policy.grants.set('as2', { targets: [], categories: ['radio-capability'] });
    policy.grants.set('as3', { targets: [], categories: ['pfd'] });
    svc = await startInstance(mesh, logs, policy.decide);
    client = edgeClient(mesh, svc.port);
  });

  after(async () => {
    client?.close();
    await svc?.stop();
    await mesh?.stop();
  });

  it('provisions UE radio capability IDs for UE models (201); the request names no UE', async () => {
    const { racsParamEps: _eps, ...fiveGsOnly } = config(racsId(), { imeiTacs: [tacOf(), tacOf()] });
    const body = provisioning([config(racsId()), fiveGsOnly]);
    const p = await create(body);
    expect(p.self).to.match(new RegExp(`^${API_ROOT}${RACS}/as1/provisionings/[0-9a-f-]{36}$`));
    expect(p).to.deep.equal({ ...body, self: p.self });
    expect(policy.asked.at(-1)).to.deep.equal({ scsAsId: 'as1', api: '3gpp-racs-pp', operation: 'create', dataCategories: ['radio-capability'], targets: [], pathScsAsId: 'as1' });
    const read = await call({ method: 'GET', path: itemOf(p) });
    expect(read.status).to.equal(200);
    expect(read.json).to.deep.equal(p);
    expect(await listed()).to.include(p.self);
  });

  it('reports per ID what the UCMF refused: RACS_ID_DUPLICATED, a TAC of another vendor (OTHER_REASON), RESOURCE_LIMITATION', async () => {
    const taken = config(racsId(VENDOR_A));
    await create(provisioning([taken]));
    const [fresh, dup, otherVendor, huge] = [
      config(racsId()),
      config(taken.racsId),
      config(racsId(VENDOR_B), { imeiTacs: taken.imeiTacs }),
      config(racsId(), { racsParam5Gs: 'a'.repeat(8193) }),
    ];
    // Another AS: the dictionary is the network's, whoever provisioned it.
    const p = await create(provisioning([fresh, dup, otherVendor, huge]), 'as2');
    expect(Object.keys(p.racsConfigs)).to.deep.equal([fresh.racsId]);
    expect(p.racsReports).to.deep.equal({
      RACS_ID_DUPLICATED: { racsIds: [taken.racsId], failureCode: 'RACS_ID_DUPLICATED' },
      OTHER_REASON: { racsIds: [otherVendor.racsId], failureCode: 'OTHER_REASON' },
      RESOURCE_LIMITATION: { racsIds: [huge.racsId], failureCode: 'RESOURCE_LIMITATION' },
    });
    // The same vendor may add IDs for its own models.
    await create(provisioning([config(racsId(VENDOR_A), { imeiTacs: taken.imeiTacs })]));
  });

  it('answers 500 with the RacsFailureReports and stores nothing when every ID is refused', async () => {
    const taken = config(racsId());
    await create(provisioning([taken]));
    const before = await listed('as2');
    const a = await call({ scsAsId: 'as2', method: 'POST', path: `${RACS}/as2/provisionings`, body: provisioning([config(taken.racsId)]) });
    expect(a.status, a.text).to.equal(500);
    expect(a.headers['content-type']).to.equal('application/json');
    valid(`${P}/post/responses/500/content/application~1json/schema`, a.json);
    expect(a.json).to.deep.equal([{ racsIds: [taken.racsId], failureCode: 'RACS_ID_DUPLICATED' }]);
    expect(await listed('as2')).to.deep.equal(before);
  });

  it('replaces (PUT) and merge-patches (PATCH, null removes) a provisioning; refused changes keep the ID as it was', async () => {
    const [a, b, c] = [config(racsId()), config(racsId()), config(racsId())];
    const p = await create(provisioning([a, b]));
    const a2 = { ...a, racsParam5Gs: 'c0ffee02' };
    const hugeB = { ...b, racsParamEps: 'b'.repeat(9000) };
    const put = await call({ method: 'PUT', path: itemOf(p), body: provisioning([a2, hugeB, c]) });
    expect(put.status, put.text).to.equal(200);
    valid('RacsProvisioningData', put.json);
    expect(put.json).to.deep.equal({
      self: p.self,
      racsConfigs: { [a.racsId]: a2, [b.racsId]: b, [c.racsId]: c },
      racsReports: { RESOURCE_LIMITATION: { racsIds: [b.racsId], failureCode: 'RESOURCE_LIMITATION' } },
    });

    const patch = { racsConfigs: { [a.racsId]: { racsParamEps: null }, [c.racsId]: null } };
    valid('RacsProvisioningDataPatch', patch, 'request');
    const patched = await call({ method: 'PATCH', path: itemOf(p), contentType: 'application/merge-patch+json', body: patch });
    expect(patched.status, patched.text).to.equal(200);
    valid('RacsProvisioningData', patched.json);
    // The reports belong to the request that caused them: a patch gets its own.
    expect(patched.json).to.deep.equal({ self: p.self, racsConfigs: { [a.racsId]: { racsId: a.racsId, racsParam5Gs: 'c0ffee02', imeiTacs: a.imeiTacs }, [b.racsId]: b } });
    // Removing a container that is the ID's last one leaves a configuration the schema refuses.
    problem(
      await call({ method: 'PATCH', path: itemOf(p), contentType: 'application/merge-patch+json', body: { racsConfigs: { [a.racsId]: { racsParam5Gs: null } } } }),
      400,
      'INVALID_PARAMETER',
    );
    const refused = await call({
      method: 'PATCH',
      path: itemOf(p),
      contentType: 'application/merge-patch+json',
      body: { racsConfigs: { [b.racsId]: { racsParamEps: 'x'.repeat(9000) } } },
    });
    expect(refused.status, refused.text).to.equal(500);
    valid(`${P}~1{provisioningId}/patch/responses/500/content/application~1json/schema`, refused.json);
    expect(refused.json).to.deep.equal([{ racsIds: [b.racsId], failureCode: 'RESOURCE_LIMITATION' }]);
    expect((await call({ method: 'GET', path: itemOf(p) })).json).to.deep.equal(patched.json);

    expect((await call({ method: 'DELETE', path: itemOf(p) })).status).to.equal(204);
    problem(await call({ method: 'GET', path: itemOf(p) }), 404, 'RESOURCE_NOT_FOUND');
    // The IDs and their TACs are free again.
    await create(provisioning([config(a.racsId, { imeiTacs: a.imeiTacs })]), 'as2');
  });

  it('another AS gets the 404 of an unknown id; an AS not granted the category gets 403 and creates nothing', async () => {
    const p = await create(provisioning([config(racsId())]));
    const id = p.self.split('/').pop()!;
    const unknown = crypto.randomUUID();
    const attempts: Omit<T8Call, 'path'>[] = [
      { method: 'GET' },
      { method: 'PUT', body: provisioning([config(racsId())]) },
      { method: 'PATCH', contentType: 'application/merge-patch+json', body: { racsConfigs: { [Object.keys(p.racsConfigs)[0]]: null } } },
      { method: 'DELETE' },
    ];
    for (const attempt of attempts) {
      const theirs = await call({ scsAsId: 'as2', ...attempt, path: `${RACS}/as2/provisionings/${id}` });
      const nobodys = await call({ scsAsId: 'as2', ...attempt, path: `${RACS}/as2/provisionings/${unknown}` });
      expect(theirs.status, `${attempt.method}: ${theirs.text}`).to.equal(404);
      expect(theirs.text).to.equal(nobodys.text);
      expect(theirs.headers).to.deep.equal(nobodys.headers);
    }
    problem(await call({ scsAsId: 'as2', method: 'GET', path: itemOf(p) }), 403, 'SCS_AS_ID_MISMATCH');
    expect((await call({ method: 'GET', path: itemOf(p) })).json).to.deep.equal(p);

    problem(await call({ scsAsId: 'as3', method: 'POST', path: `${RACS}/as3/provisionings`, body: provisioning([config(racsId())]) }), 403, 'CATEGORY_NOT_GRANTED');
    expect(await listed('as3')).to.deep.equal([]);
  });

  it('refuses malformed IDs and members only the SCEF writes (400, nothing stored, nothing decided)', async () => {
    const before = await listed();
    const id = racsId();
    const cases: [string, Json, string, string][] = [
      ['key is not the id', { racsConfigs: { [racsId()]: config(id) } }, 'RESOURCE_ID_MISMATCH', '/racsId'],
      ['network-assigned id', provisioning([config(`1${id.slice(1)}`)]), 'INVALID_PARAMETER', `/racsConfigs/1${id.slice(1)}/racsId`],
      ['short id', provisioning([config(id.slice(0, 12))]), 'INVALID_PARAMETER', `/racsConfigs/${id.slice(0, 12)}/racsId`],
      ['no container', provisioning([{ racsId: id, imeiTacs: [tacOf()] }]), 'INVALID_PARAMETER', `/racsConfigs/${id}/racsParamEps`],
      ['empty container', provisioning([config(id, { racsParam5Gs: '' })]), 'INVALID_PARAMETER', `/racsConfigs/${id}/racsParam5Gs`],
      ['bad TAC', provisioning([config(id, { imeiTacs: ['1234'] })]), 'INVALID_PARAMETER', `/racsConfigs/${id}/imeiTacs/0`],
      ['SCEF-only reports', { ...provisioning([config(id)]), racsReports: { X: { racsIds: [id], failureCode: 'OTHER_REASON' } } }, 'INVALID_PARAMETER', '/racsReports'],
    ];
    const asked = policy.asked.length;
    for (const [name, body, cause, param] of cases) {
      const a = await call({ method: 'POST', path: `${RACS}/as1/provisionings`, body });
      expect(a.status, `${name}: ${a.text}`).to.equal(400);
      const p = problem(a, 400, cause);
      expect((p['invalidParams'] as { param: string }[])[0].param, name).to.satisfy((x: string) => x.endsWith(param));
    }
    expect(policy.asked.length, 'invalid requests never reach authorization').to.equal(asked);
    expect(await listed()).to.deep.equal(before);
    await create(provisioning([config(id)]));
  });
});
