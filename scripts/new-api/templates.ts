/** The files `npm run new-api` writes: a module on the resource lifecycle, and its test. */
import { simulatedUeIdentifiers } from '../../services/capability-exposure/src/network/simulated-core.ts';

/** What the scaffold read from an API file. */
export interface ApiShape {
  /** Key in T8_API_FILES, also the module's folder. */
  readonly key: string;
  readonly file: string;
  readonly title: string;
  /** Base path segment (and scope), e.g. "3gpp-chargeable-party". */
  readonly name: string;
  readonly version: string;
  /** e.g. "/{scsAsId}/transactions". */
  readonly collection: string;
  readonly idParam: string;
  /** Schema name (or pointer) of the resource. */
  readonly resource: string;
  readonly list?: string;
  readonly replace: boolean;
  readonly remove: boolean;
  readonly patch?: { readonly kind: 'merge-patch' | 'json-patch'; readonly schema: string; readonly answer: 200 | 204 };
  readonly notification?: string;
  readonly category: string;
}

const pascal = (key: string): string => key.replace(/(^|-)([a-z0-9])/g, (_, __, c: string) => c.toUpperCase());
const constant = (key: string): string => key.replace(/-/g, '_').toUpperCase();
const camel = (key: string): string => key.replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase());

export function moduleSource(a: ApiShape, hasDestination = true): string {
  const C = constant(a.key);
  const options = [
    ...(a.replace ? [] : ['    replace: false,']),
    ...(a.remove ? [] : ['    remove: false,']),
    ...(a.patch ? [`    patch: { kind: '${a.patch.kind}', schema: '${a.patch.schema}', answer: ${a.patch.answer} },`] : []),
  ];
  return `${hasDestination ? "import { checkNotificationDestination } from '../../domain/notification-destination.js';\n" : ''}import type { ApiModule, ModuleDefinition, ModuleServices, Reach } from '../registry.js';
import { resourceLifecycle } from '../toolkit/lifecycle.js';
import { assertUeIdentifiers, ueTargetsOf } from '../toolkit/ue-members.js';
import { ${camel(a.key)}Network } from './network.js';
import type { Resource, State } from './network.js';

export const ${C}_API = '${a.name}';
/** The data category of this API's resources${a.notification ? ' and notifications' : ''}. */
export const ${C}_CATEGORY = '${a.category}';

/**
 * ${a.title} (${a.file}): the ${a.collection.split('/').pop()} of an SCS/AS, checked against the
 * official schema, authorized for every UE they name, and stored; what they do in the network is
 * ./network.ts (docs/adding-a-t8-api.md).
 */
function create${pascal(a.key)}Module(s: ModuleServices): ApiModule {
  const network = ${camel(a.key)}Network(s);
  const reach = async (body: Resource): Promise<Reach> => ({ dataCategories: [${C}_CATEGORY], targets: await ueTargetsOf(s.network, body) });
  const resources = resourceLifecycle<Resource, State>({
    services: s,
    api: ${C}_API,
    schemaFile: '${a.key}',
    collection: '${a.collection}',
    idParam: '${a.idParam}',
    schemas: { resource: '${a.resource}'${a.list ? `, list: '${a.list}'` : ''} },
${options.join('\n')}${options.length ? '\n' : ''}    reach,
    validate: body => assertUeIdentifiers(body),
${hasDestination ? '    check: body => checkNotificationDestination(body.notificationDestination, s.destinations),\n' : ''}    network,
  });
  return {
    name: ${C}_API,
    version: '${a.version}',
    scope: ${C}_API,
    dataCategories: [${C}_CATEGORY],
    schemaFile: '${a.key}',
    schemas: ['${a.resource}'],
${a.notification ? `    notificationSchema: '${a.notification}',\n` : ''}    reach: body => reach(body as Resource),
    routes: resources.routes,
    onNetworkEvent: async event => (await network.onNetworkEvent?.(event, resources)) ?? [],
    stop: async () => network.stop?.(),
  };
}

/** The ${a.title} module, as registered. */
export const ${camel(a.key)}Module: ModuleDefinition = { name: ${C}_API, create: create${pascal(a.key)}Module };
`;
}

/** The module's network side, written once: the developer's to fill. */
export function networkSource(a: ApiShape): string {
  const typed = !a.resource.startsWith('#');
  return `${typed ? `import type { components } from '@aese/t8-openapi/${a.key}';\n` : ''}import type { ModuleServices } from '../registry.js';
import type { NetworkSide } from '../toolkit/lifecycle.js';

/** The resource, as the official schema types it. */
export type Resource = ${typed ? `components['schemas']['${a.resource}']` : 'Record<string, unknown>'};
/** What the module keeps beside each resource (network ids, counters). */
export type State = Record<string, never>;

/**
 * What ${a.title} does in the network. As scaffolded, nothing: a resource is accepted as the AS
 * sent it. Give it the API's network capability (an interface and its simulation in this folder),
 * its effects on create, update and delete, and the notifications it sends.
 */
export function ${camel(a.key)}Network(_s: ModuleServices): NetworkSide<Resource, State> {
  return { create: async () => ({ state: {} }) };
}
`;
}

export function testSource(a: ApiShape, body: Record<string, unknown>): string {
  const C = constant(a.key);
  const ue1 = simulatedUeIdentifiers(1);
  const text = JSON.stringify(body);
  const namesUe = [ue1.externalId, ue1.msisdn, ue1.ipv4Addr].some(v => text.includes(v));
  const listed = "(await t8(client, { method: 'GET', path: collection('as1') })).json";
  const ungranted = [
    "  it('a UE the AS was not granted is refused with 403, and nothing is stored', async () => {",
    ...(a.list ? [`    const before = ${listed};`] : []),
    "    const refused = await t8(client, { method: 'POST', path: collection('as1'), body: BODY_UE2 });",
    '    expect(refused.status, refused.text).to.equal(403);',
    "    expect(refused.headers['location']).to.equal(undefined);",
    ...(a.list ? [`    expect(${listed}).to.deep.equal(before);`] : []),
    '  });',
    '',
  ].join('\n');
  const changeMember = 'notificationDestination' in body ? 'notificationDestination' : Object.keys(body).find(k => typeof body[k] === 'string');
  const patchCall = !a.patch
    ? ''
    : a.patch.kind === 'merge-patch'
      ? `      const patched = await t8(client, { method: 'PATCH', path: item, contentType: 'application/merge-patch+json', body: {} });`
      : `      const patched = await t8(client, { method: 'PATCH', path: item, contentType: 'application/json-patch+json', body: [{ op: 'test', path: '/${changeMember}', value: BODY['${changeMember}'] }] });`;
  return `import { expect } from 'chai';
import { loadT8Schemas } from '@aese/t8-openapi';
import type { T8Schemas } from '@aese/t8-openapi';
import { startTestMesh } from '../../../test/support/mesh.ts';
import type { TestMesh } from '../../../test/support/mesh.ts';
import { ${C}_API, ${C}_CATEGORY } from '../src/modules/${a.key}/index.ts';
import { simulatedUeIdentifiers } from '../src/network/simulated-core.ts';
import type { RunningCapabilityExposure } from '../src/server.ts';
import { API_ROOT, edgeClient, startInstance, t8, TestPolicy } from './support.ts';

const BASE = \`/\${${C}_API}/${a.version}\`;
const UE1 = simulatedUeIdentifiers(1);
const UE2 = simulatedUeIdentifiers(2);
/** The resource's required members, scaffolded from the official schema (UE 1 where it names a UE). */
const BODY: Record<string, unknown> = ${JSON.stringify(body, null, 2).replace(/\n/g, '\n')};
/** The same resource naming UE 2 instead. */
const BODY_UE2 = JSON.parse(JSON.stringify(BODY).replaceAll(UE1.externalId, UE2.externalId).replaceAll(UE1.msisdn, UE2.msisdn).replaceAll(UE1.ipv4Addr, UE2.ipv4Addr)) as Record<string, unknown>;

describe(\`\${${C}_API} through the mesh\`, function () {
  this.timeout(60_000);
  let mesh: TestMesh;
  let schemas: T8Schemas;
  let svc: RunningCapabilityExposure;
  let client: ReturnType<typeof edgeClient>;
  const policy = new TestPolicy();
  const logs: string[] = [];
  const collection = (scsAsId: string): string => \`\${BASE}/\${scsAsId}${a.collection.replace('/{scsAsId}', '')}\`;
  const valid = (schema: string, body: unknown, direction: 'request' | 'response' = 'response'): void => {
    const v = schemas.validator('${a.key}', schema, direction);
    expect(v(body), \`\${schema}: \${JSON.stringify(v.violations())}\`).to.equal(true);
  };

  before(async () => {
    schemas = await loadT8Schemas();
    mesh = await startTestMesh({ extraEnv: { SIM_TICK_MS: '0' } });
    policy.grants.set('as1', { targets: [\`externalId:\${UE1.externalId}\`, \`msisdn:\${UE1.msisdn}\`], categories: [${C}_CATEGORY] });
    policy.grants.set('as2', { targets: [\`externalId:\${UE2.externalId}\`, \`msisdn:\${UE2.msisdn}\`], categories: [${C}_CATEGORY] });
    svc = await startInstance(mesh, logs, policy.decide);
    client = edgeClient(mesh, svc.port);
  });

  after(async () => {
    client?.close();
    await svc?.stop();
    await mesh?.stop();
  });

  it('creates, reads${a.list ? ', lists' : ''}${a.replace ? ', replaces' : ''}${a.patch ? ', patches' : ''}${a.remove ? ' and deletes' : ''}; every body matches the official schemas', async () => {
    valid('${a.resource}', BODY, 'request');
    const created = await t8(client, { method: 'POST', path: collection('as1'), body: BODY });
    expect(created.status, created.text).to.equal(201);
    valid('${a.resource}', created.json);
    const item = created.headers['location'].slice(API_ROOT.length);
    expect(created.json).to.include({ self: created.headers['location'] });
    const got = await t8(client, { method: 'GET', path: item });
    expect(got.status, got.text).to.equal(200);
    expect(got.json).to.deep.equal(created.json);
${
  a.list
    ? `    const list = await t8(client, { method: 'GET', path: collection('as1') });
    valid('${a.list}', list.json);
    expect(list.json).to.deep.include(created.json);
`
    : ''
}${
    a.replace
      ? `    const replaced = await t8(client, { method: 'PUT', path: item, body: { ...BODY, self: created.headers['location'] } });
    expect(replaced.status, replaced.text).to.equal(200);
    valid('${a.resource}', replaced.json);
`
      : ''
  }${
    a.patch
      ? `${patchCall}
    expect(patched.status, patched.text).to.equal(${a.patch.answer});
`
      : ''
  }${
    a.remove
      ? `    expect((await t8(client, { method: 'DELETE', path: item })).status).to.equal(204);
    const gone = await t8(client, { method: 'GET', path: item });
    expect(gone.status).to.equal(404);
    expect((gone.json as { cause?: string }).cause).to.equal('RESOURCE_NOT_FOUND');
`
      : ''
  }  });

  it('another AS gets the 404 of an unknown id, and the resource is unchanged', async () => {
    const created = await t8(client, { method: 'POST', path: collection('as1'), body: BODY });
    expect(created.status, created.text).to.equal(201);
    const id = created.headers['location'].split('/').pop()!;
    const unknown = await t8(client, { scsAsId: 'as2', method: 'GET', path: \`\${collection('as2')}/\${crypto.randomUUID()}\` });
    expect(unknown.status).to.equal(404);
    for (const method of ['GET'${a.replace ? ", 'PUT'" : ''}${a.remove ? ", 'DELETE'" : ''}] as string[]) {
      const foreign = await t8(client, { scsAsId: 'as2', method, path: \`\${collection('as2')}/\${id}\`, ...(method === 'PUT' ? { body: BODY_UE2 } : {}) });
      expect(foreign.status, method).to.equal(404);
      expect(foreign.text, method).to.equal(unknown.text);
    }
    const still = await t8(client, { method: 'GET', path: created.headers['location'].slice(API_ROOT.length) });
    expect(still.json).to.deep.equal(created.json);
  });

${namesUe ? ungranted : ''}});
`;
}
