import { expect } from 'chai';
import { loadT8Schemas } from '@aese/t8-openapi';
import type { T8Schemas } from '@aese/t8-openapi';
import { startTestMesh } from '../../../test/support/mesh.ts';
import type { TestMesh } from '../../../test/support/mesh.ts';
import { CHARGEABLE_PARTY_API, CHARGEABLE_PARTY_CATEGORY } from '../src/modules/chargeable-party/index.ts';
import { simulatedUeIdentifiers } from '../src/network/simulated-core.ts';
import type { RunningCapabilityExposure } from '../src/server.ts';
import { API_ROOT, edgeClient, startInstance, t8, TestPolicy } from './support.ts';

const BASE = `/${CHARGEABLE_PARTY_API}/v1`;
const UE1 = simulatedUeIdentifiers(1);
const UE2 = simulatedUeIdentifiers(2);
/** The resource's required members, scaffolded from the official schema (UE 1 where it names a UE). */
const BODY: Record<string, unknown> = {
  notificationDestination: 'https://as1.example.com/notify',
  sponsorInformation: {
    sponsorId: 'sample',
    aspId: 'sample',
  },
  sponsoringEnabled: true,
  ipv4Addr: '10.45.0.1',
};
/** The same resource naming UE 2 instead. */
const BODY_UE2 = JSON.parse(JSON.stringify(BODY).replaceAll(UE1.externalId, UE2.externalId).replaceAll(UE1.msisdn, UE2.msisdn).replaceAll(UE1.ipv4Addr, UE2.ipv4Addr)) as Record<
  string,
  unknown
>;

describe(`${CHARGEABLE_PARTY_API} through the mesh`, function () {
  this.timeout(60_000);
  let mesh: TestMesh;
  let schemas: T8Schemas;
  let svc: RunningCapabilityExposure;
  let client: ReturnType<typeof edgeClient>;
  const policy = new TestPolicy();
  const logs: string[] = [];
  const collection = (scsAsId: string): string => `${BASE}/${scsAsId}/transactions`;
  const valid = (schema: string, body: unknown, direction: 'request' | 'response' = 'response'): void => {
    const v = schemas.validator('chargeable-party', schema, direction);
    expect(v(body), `${schema}: ${JSON.stringify(v.violations())}`).to.equal(true);
  };

  before(async () => {
    schemas = await loadT8Schemas();
    mesh = await startTestMesh({ extraEnv: { SIM_TICK_MS: '0' } });
    policy.grants.set('as1', { targets: [`externalId:${UE1.externalId}`, `msisdn:${UE1.msisdn}`], categories: [CHARGEABLE_PARTY_CATEGORY] });
    policy.grants.set('as2', { targets: [`externalId:${UE2.externalId}`, `msisdn:${UE2.msisdn}`], categories: [CHARGEABLE_PARTY_CATEGORY] });
    svc = await startInstance(mesh, logs, policy.decide);
    client = edgeClient(mesh, svc.port);
  });

  after(async () => {
    client?.close();
    await svc?.stop();
    await mesh?.stop();
  });

  it('creates, reads, lists, patches and deletes; every body matches the official schemas', async () => {
    valid('ChargeableParty', BODY, 'request');
    const created = await t8(client, { method: 'POST', path: collection('as1'), body: BODY });
    expect(created.status, created.text).to.equal(201);
    valid('ChargeableParty', created.json);
    const item = created.headers['location'].slice(API_ROOT.length);
    expect(created.json).to.include({ self: created.headers['location'] });
    const got = await t8(client, { method: 'GET', path: item });
    expect(got.status, got.text).to.equal(200);
    expect(got.json).to.deep.equal(created.json);
    const list = await t8(client, { method: 'GET', path: collection('as1') });
    valid('#/paths/~1{scsAsId}~1transactions/get/responses/200/content/application~1json/schema', list.json);
    expect(list.json).to.deep.include(created.json);
    const patched = await t8(client, { method: 'PATCH', path: item, contentType: 'application/merge-patch+json', body: {} });
    expect(patched.status, patched.text).to.equal(200);
    expect((await t8(client, { method: 'DELETE', path: item })).status).to.equal(204);
    const gone = await t8(client, { method: 'GET', path: item });
    expect(gone.status).to.equal(404);
    expect((gone.json as { cause?: string }).cause).to.equal('RESOURCE_NOT_FOUND');
  });

  it('another AS gets the 404 of an unknown id, and the resource is unchanged', async () => {
    const created = await t8(client, { method: 'POST', path: collection('as1'), body: BODY });
    expect(created.status, created.text).to.equal(201);
    const id = created.headers['location'].split('/').pop()!;
    const unknown = await t8(client, { scsAsId: 'as2', method: 'GET', path: `${collection('as2')}/${crypto.randomUUID()}` });
    expect(unknown.status).to.equal(404);
    for (const method of ['GET', 'DELETE'] as string[]) {
      const foreign = await t8(client, { scsAsId: 'as2', method, path: `${collection('as2')}/${id}`, ...(method === 'PUT' ? { body: BODY_UE2 } : {}) });
      expect(foreign.status, method).to.equal(404);
      expect(foreign.text, method).to.equal(unknown.text);
    }
    const still = await t8(client, { method: 'GET', path: created.headers['location'].slice(API_ROOT.length) });
    expect(still.json).to.deep.equal(created.json);
  });

  it('a UE the AS was not granted is refused with 403, and nothing is stored', async () => {
    const before = (await t8(client, { method: 'GET', path: collection('as1') })).json;
    const refused = await t8(client, { method: 'POST', path: collection('as1'), body: BODY_UE2 });
    expect(refused.status, refused.text).to.equal(403);
    expect(refused.headers['location']).to.equal(undefined);
    expect((await t8(client, { method: 'GET', path: collection('as1') })).json).to.deep.equal(before);
  });
});
