import { expect } from 'chai';
import { loadT8Schemas } from '@aese/t8-openapi';
import type { T8Schemas } from '@aese/t8-openapi';
import { Invoker } from '../src/domain/invoke.ts';
import { MemoryResourceStore } from '../src/domain/resource-store.ts';
import { ModuleRegistry } from '../src/modules/registry.ts';
import type { ApiModule, ModuleServices } from '../src/modules/registry.ts';
import { resourceLifecycle } from '../src/modules/toolkit/lifecycle.ts';
import { identifierTargets } from '../src/modules/ue-targets.ts';
import { simulatedUeIdentifiers, SimulatedCore } from '../src/network/simulated-core.ts';
import { API_ROOT, AS_DESTINATION, testResolver, TestPolicy } from './support.ts';

const UE1 = simulatedUeIdentifiers(1);
const UE2 = simulatedUeIdentifiers(2);
const API = '3gpp-monitoring-event';
const BASE = `/${API}/v1/as1/subscriptions`;
const body = (externalId: string) => ({ externalId, notificationDestination: AS_DESTINATION, monitoringType: 'LOCATION_REPORTING', maximumNumberOfReports: 5 });

/**
 * A module of two collections on the lifecycle, on MonitoringEvent's schemas: subscriptions, and
 * "copies" below each subscription (a sub-resource), each naming a UE of its own.
 */
function toyModule(s: ModuleServices): ApiModule {
  const reach = (b: { externalId?: string }) => ({ dataCategories: ['location'], targets: identifierTargets(b, { externalId: 'externalId' }) });
  const common = {
    services: s,
    api: API,
    schemaFile: 'monitoring-event' as const,
    schemas: { resource: 'MonitoringEventSubscription' },
    reach,
    network: { create: async () => ({ state: {} }) },
  };
  const parents = resourceLifecycle({ ...common, collection: '/{scsAsId}/subscriptions', idParam: 'subscriptionId' });
  const copies = resourceLifecycle({
    ...common,
    store: `${API}-copies`,
    collection: '/{scsAsId}/subscriptions/{subscriptionId}/copies',
    idParam: 'copyId',
    parent: { idParam: 'subscriptionId', store: API },
  });
  return {
    name: API,
    version: 'v1',
    scope: API,
    dataCategories: ['location'],
    schemaFile: 'monitoring-event',
    schemas: ['MonitoringEventSubscription'],
    reach: async b => reach(b as { externalId?: string }),
    routes: [...parents.routes, ...copies.routes],
  };
}

describe('module toolkit: the resource lifecycle', () => {
  let schemas: T8Schemas;
  let network: SimulatedCore;
  let store: MemoryResourceStore;
  let invoker: Invoker;
  let registry: ModuleRegistry;
  const policy = new TestPolicy();

  const call = async (method: string, path: string, b?: unknown) => {
    const out = await invoker.invoke({
      scsAsId: 'as1',
      method,
      path,
      contentType: b === undefined ? '' : 'application/json',
      body: Buffer.from(b === undefined ? '' : JSON.stringify(b)),
      scopes: [API],
      apiRoot: API_ROOT,
    });
    return { status: out.status, headers: out.headers, json: out.body.length ? (JSON.parse(Buffer.from(out.body).toString('utf8')) as Record<string, unknown>) : undefined };
  };

  before(async () => {
    schemas = await loadT8Schemas();
  });

  beforeEach(() => {
    network = new SimulatedCore({ seed: 1, ueCount: 4, groupCount: 1, tickMs: 0 });
    store = new MemoryResourceStore();
    const services: ModuleServices = {
      network,
      store,
      schemas,
      destinations: { allow: [], meshEndpoints: [], resolve: testResolver },
      now: Date.now,
      newId: () => crypto.randomUUID(),
      sendTestNotification: async () => {},
      decide: policy.decide,
      maxResourcesPerAs: 2,
    };
    registry = new ModuleRegistry();
    registry.register(toyModule(services));
    invoker = new Invoker({ registry, schemas, store, decide: policy.decide, onError: () => {} });
    policy.grants.set('as1', { targets: [`externalId:${UE1.externalId}`, `externalId:${UE2.externalId}`], categories: ['location'] });
  });

  afterEach(() => network.stop());

  it('decides a sub-resource on its parent targets too: a copy naming a granted UE below a subscription of a withdrawn one is refused', async () => {
    const parent = await call('POST', BASE, body(UE1.externalId));
    expect(parent.status).to.equal(201);
    const copies = `${parent.headers['location'].slice(API_ROOT.length)}/copies`;
    expect(copies).to.match(/\/subscriptions\/[0-9a-f-]{36}\/copies$/);
    policy.grants.set('as1', { targets: [`externalId:${UE2.externalId}`], categories: ['location'] });
    const refused = await call('POST', copies, body(UE2.externalId));
    expect(refused.status).to.equal(403);
    expect(policy.asked.at(-1)?.targets).to.have.members([`externalId:${UE1.externalId}`, `externalId:${UE2.externalId}`]);
    expect(store.all(`${API}-copies`)).to.have.length(0);
    policy.grants.set('as1', { targets: [`externalId:${UE1.externalId}`, `externalId:${UE2.externalId}`], categories: ['location'] });
    const made = await call('POST', copies, body(UE2.externalId));
    expect(made.status).to.equal(201);
    expect(made.headers['location']).to.match(new RegExp(`${copies}/[0-9a-f-]{36}$`));
    expect(store.all(`${API}-copies`)[0].targets).to.have.members([`externalId:${UE1.externalId}`, `externalId:${UE2.externalId}`]);
  });

  it('marks an item read reusable only while the gate permits its policy version; never a list, a write, a miss, a refusal or a body', async () => {
    let inForce: number | undefined = 7;
    const gated = new Invoker({ registry, schemas, store, decide: policy.decide, onError: () => {}, reuse: { permits: v => v === inForce } });
    const run = async (method: string, path: string, b?: unknown) =>
      gated.invoke({
        scsAsId: 'as1',
        method,
        path,
        contentType: b === undefined ? '' : 'application/json',
        body: Buffer.from(b === undefined ? '' : JSON.stringify(b)),
        scopes: [API],
        apiRoot: API_ROOT,
      });
    const created = await run('POST', BASE, body(UE1.externalId));
    expect([created.status, created.reusable]).to.deep.equal([201, false]);
    const item = created.headers['location'].slice(API_ROOT.length);
    const read = await run('GET', item);
    expect([read.status, read.reusable]).to.deep.equal([200, true]);
    expect((await run('GET', BASE)).reusable, 'a list').to.equal(false);
    expect((await run('GET', `${BASE}/${crypto.randomUUID()}`)).reusable, 'a miss').to.equal(false);
    const withBody = await gated.invoke({ scsAsId: 'as1', method: 'GET', path: item, contentType: 'application/json', body: Buffer.from('{}'), scopes: [API], apiRoot: API_ROOT });
    expect(withBody.reusable, 'a read with a body').to.equal(false);
    inForce = 8;
    expect((await run('GET', item)).reusable, 'decided under a version no longer in force').to.equal(false);
    inForce = undefined;
    expect((await run('GET', item)).reusable, 'no version known').to.equal(false);
    inForce = 7;
    policy.grants.set('as1', { targets: [`externalId:${UE2.externalId}`], categories: ['location'] });
    const refused = await run('GET', item);
    expect([refused.status, refused.reusable]).to.deep.equal([403, false]);
    expect((await call('GET', item)).status, 'the same invoker without a gate').to.equal(403);
    policy.grants.set('as1', { targets: [`externalId:${UE1.externalId}`], categories: ['location'] });
    const ungated = await invoker.invoke({ scsAsId: 'as1', method: 'GET', path: item, contentType: '', body: Buffer.from(''), scopes: [API], apiRoot: API_ROOT });
    expect([ungated.status, ungated.reusable], 'without a gate nothing is reusable').to.deep.equal([200, false]);
  });

  it('refuses a create beyond the per-AS bound with 403 RESOURCE_QUOTA_EXCEEDED, stores nothing, and creates again once one is deleted', async () => {
    const first = await call('POST', BASE, body(UE1.externalId));
    expect((await call('POST', BASE, body(UE1.externalId))).status).to.equal(201);
    const over = await call('POST', BASE, body(UE1.externalId));
    expect(over.status).to.equal(403);
    expect(over.json?.['cause']).to.equal('RESOURCE_QUOTA_EXCEEDED');
    expect(store.all(API)).to.have.length(2);
    expect((await call('DELETE', first.headers['location'].slice(API_ROOT.length))).status).to.equal(204);
    expect((await call('POST', BASE, body(UE1.externalId))).status).to.equal(201);
  });
});
