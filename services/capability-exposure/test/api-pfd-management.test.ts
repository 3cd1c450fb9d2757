import { expect } from 'chai';
import { loadT8Schemas } from '@aese/t8-openapi';
import type { T8Schemas } from '@aese/t8-openapi';
import { startTestMesh } from '../../../test/support/mesh.ts';
import type { TestMesh } from '../../../test/support/mesh.ts';
import type { RunningCapabilityExposure } from '../src/server.ts';
import { API_ROOT, AS_DESTINATION, edgeClient, NotificationWatcher, startInstance, t8, TestPolicy, t8Assertions } from './support.ts';
import type { T8Answer, T8Call } from './support.ts';

const PFD = '/3gpp-pfd-management/v1';
const SCOPES = ['3gpp-pfd-management'];
const T = '#/paths/~1{scsAsId}~1transactions';
const LIST = `${T}/get/responses/200/content/application~1json/schema`;
const REFUSED = `${T}/post/responses/500/content/application~1json/schema`;
const NOTIFICATION = `${T}/post/callbacks/notificationDestination/{request.body#~1notificationDestination}/post/requestBody/content/application~1json/schema`;
const EDGE_DNAIS = ['dnai-edge-1', 'dnai-edge-2'];
const noop = async (): Promise<void> => {};

type Json = Record<string, unknown>;
interface PfdData {
  externalAppId: string;
  self?: string;
  pfds: Record<string, Json>;
  allowedDelay?: number;
}
interface Transaction {
  self: string;
  pfdDatas: Record<string, PfdData>;
  pfdReports?: Record<string, { externalAppIds: string[]; failureCode: string }>;
  [member: string]: unknown;
}

let appSeq = 0;
/** A fresh external application id: the PFDF holds each one once, network-wide. */
const appId = (name: string): string => `${name}-${++appSeq}-${Date.now().toString(36)}`;

function app(id: string, extra: Partial<PfdData> = {}): PfdData {
  return { externalAppId: id, pfds: { p1: { pfdId: 'p1', flowDescriptions: ['permit out tcp from 198.51.100.7 443 to assigned'] } }, ...extra };
}
/** An application recognised by the server certificate's names: the edge UPFs cannot read those (TLS 1.3). */
function certificateApp(id: string): PfdData {
  return {
    externalAppId: id,
    pfds: { p1: { pfdId: 'p1', domainNames: ['video.example.com'], dnProtocol: 'TLS_SAN' }, p2: { pfdId: 'p2', urls: ['^https://video.example.com/live/'] } },
  };
}
function transaction(apps: PfdData[], extra: Json = {}): Json {
  return { pfdDatas: Object.fromEntries(apps.map(a => [a.externalAppId, a])), ...extra };
}

describe('PfdManagement (3gpp-pfd-management) through the Invoke pipeline', function () {
  this.timeout(60_000);
  let mesh: TestMesh;
  let schemas: T8Schemas;
  let svc: RunningCapabilityExposure;
  let client: ReturnType<typeof edgeClient>;
  let watcher: NotificationWatcher;
  const policy = new TestPolicy();
  const logs: string[] = [];

  const call = (c: T8Call): Promise<T8Answer> => t8(client, { scopes: SCOPES, ...c });
  const { valid, problem } = t8Assertions(() => schemas, 'pfd-management');
  const create = async (body: Json, scsAsId = 'as1'): Promise<Transaction> => {
    valid('PfdManagement', body, 'request');
    const a = await call({ scsAsId, method: 'POST', path: `${PFD}/${scsAsId}/transactions`, body });
    expect(a.status, a.text).to.equal(201);
    valid('PfdManagement', a.json);
    const t = a.json as Transaction;
    expect(a.headers['location']).to.equal(t.self);
    return t;
  };
  const itemOf = (t: Transaction): string => new URL(t.self).pathname;
  const listed = async (scsAsId = 'as1', query = ''): Promise<Transaction[]> => {
    const a = await call({ scsAsId, method: 'GET', path: `${PFD}/${scsAsId}/transactions${query}` });
    expect(a.status, a.text).to.equal(200);
    valid(LIST, a.json);
    return a.json as Transaction[];
  };
  const notificationsOf = (t: Transaction) => watcher.received.filter(n => n.subscriptionId === t.self.split('/').pop());

  before(async () => {
    schemas = await loadT8Schemas();
    mesh = await startTestMesh({ extraEnv: { SIM_TICK_MS: '0' } });
    // PFDs name no UE: a grant of the category with no target at all is enough.
    policy.grants.set('as1', { targets: [], anyTarget: true, categories: ['pfd'] });
    policy.grants.set('as2', { targets: [], anyTarget: true, categories: ['pfd'] });
    policy.grants.set('as3', { targets: [], categories: ['qos'] });
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

  it('provisions a transaction (201): every application gets its self link; the request names its applications, no UE', async () => {
    const [web, video] = [appId('web'), appId('video')];
    const body = transaction([app(web, { allowedDelay: 60 }), certificateApp(video)], { notificationDestination: AS_DESTINATION });
    const t = await create(body);
    expect(t.self).to.match(new RegExp(`^${API_ROOT}${PFD}/as1/transactions/[0-9a-f-]{36}$`));
    expect(Object.keys(t.pfdDatas)).to.deep.equal([web, video]);
    for (const id of [web, video]) {
      expect(t.pfdDatas[id]).to.deep.equal({ ...(body['pfdDatas'] as Record<string, PfdData>)[id], self: `${t.self}/applications/${id}` });
    }
    expect(t).not.to.have.property('pfdReports');
    expect(policy.asked.at(-1)).to.deep.equal({
      scsAsId: 'as1',
      api: '3gpp-pfd-management',
      operation: 'create',
      dataCategories: ['pfd'],
      targets: [`externalAppId:${web}`, `externalAppId:${video}`].sort(),
      pathScsAsId: 'as1',
    });

    const read = await call({ method: 'GET', path: itemOf(t) });
    expect(read.status).to.equal(200);
    expect(read.json).to.deep.equal(t);
    expect((await listed()).map(x => x.self)).to.include(t.self);
  });

  it('notifies a PARTIAL_FAILURE PfdReport once the edge UPFs could not enforce a certificate-name PFD, and nothing when no UPF failed', async () => {
    const [plain, video] = [appId('plain'), appId('video')];
    const quiet = await create(transaction([certificateApp(appId('video'))]));
    const fine = await create(transaction([app(plain)], { notificationDestination: AS_DESTINATION }));
    const partial = await create(transaction([app(appId('plain')), certificateApp(video)], { notificationDestination: AS_DESTINATION }));
    const n = await watcher.waitFor(x => x.subscriptionId === partial.self.split('/').pop(), noop, 200);
    expect(n).to.deep.include({ scsAsId: 'as1', api: '3gpp-pfd-management', destination: AS_DESTINATION });
    const body = JSON.parse(Buffer.from(n.body).toString('utf8')) as unknown;
    valid(NOTIFICATION, body);
    expect(body).to.deep.equal([{ externalAppIds: [video], failureCode: 'PARTIAL_FAILURE', locationArea: { dnais: EDGE_DNAIS } }]);
    // Notified only while the AS is still granted the transaction's applications.
    expect(policy.asked.some(q => q.operation === 'notify' && q.api === '3gpp-pfd-management' && q.targets.includes(`externalAppId:${video}`))).to.equal(true);
    // Distributed before `partial` (same delay, earlier): a transaction without a destination, or with nothing unenforced, is not notified.
    expect(notificationsOf(quiet)).to.have.length(0);
    expect(notificationsOf(fine)).to.have.length(0);
  });

  it('reports per application what the PFDF refused: APP_ID_DUPLICATED, SHORT_DELAY, RESOURCE_LIMITATION', async () => {
    const taken = appId('taken');
    await create(transaction([app(taken)]));
    const [fresh, hurried, bloated] = [appId('fresh'), appId('hurried'), appId('bloated')];
    const many = Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`p${i}`, { pfdId: `p${i}`, domainNames: [`host${i}.example.com`] }]));
    // Another AS asks for an application already provisioned: refused, the rest is stored.
    const t = await create(transaction([app(taken), app(fresh), app(hurried, { allowedDelay: 5 }), { externalAppId: bloated, pfds: many }]), 'as2');
    expect(Object.keys(t.pfdDatas)).to.deep.equal([fresh]);
    expect(t.pfdReports).to.deep.equal({
      APP_ID_DUPLICATED: { externalAppIds: [taken], failureCode: 'APP_ID_DUPLICATED' },
      SHORT_DELAY: { externalAppIds: [hurried], failureCode: 'SHORT_DELAY' },
      RESOURCE_LIMITATION: { externalAppIds: [bloated], failureCode: 'RESOURCE_LIMITATION' },
    });
    expect(JSON.stringify(t)).not.to.include('as1');
  });

  it('answers 500 with the PfdReports and stores nothing when every application is refused', async () => {
    const taken = appId('taken');
    await create(transaction([app(taken)]));
    const before = await listed('as2');
    const hurried = appId('hurried');
    const a = await call({ scsAsId: 'as2', method: 'POST', path: `${PFD}/as2/transactions`, body: transaction([app(taken), app(hurried, { allowedDelay: 1 })]) });
    expect(a.status, a.text).to.equal(500);
    expect(a.headers['content-type']).to.equal('application/json');
    expect(a.headers['location']).to.equal(undefined);
    valid(REFUSED, a.json);
    expect(a.json).to.deep.equal([
      { externalAppIds: [taken], failureCode: 'APP_ID_DUPLICATED' },
      { externalAppIds: [hurried], failureCode: 'SHORT_DELAY' },
    ]);
    expect(await listed('as2')).to.deep.equal(before);
    // The refused application is free: provisioning it properly now works.
    expect(Object.keys((await create(transaction([app(hurried, { allowedDelay: 30 })]), 'as2')).pfdDatas)).to.deep.equal([hurried]);
  });

  it('lists, filters by external-app-ids, replaces (PUT) and merge-patches (PATCH) transactions', async () => {
    const [a1, a2, a3, a4] = [appId('a'), appId('b'), appId('c'), appId('d')];
    const t = await create(transaction([app(a1), app(a2)]));
    const only = await listed('as1', `?external-app-ids=${a2},${a4}`);
    expect(only).to.have.length(1);
    expect(Object.keys(only[0].pfdDatas)).to.deep.equal([a2]);
    expect(await listed('as1', `?external-app-ids=${a4}`)).to.deep.equal([]);

    const put = await call({ method: 'PUT', path: itemOf(t), body: transaction([app(a2, { allowedDelay: 120 }), app(a3)]) });
    expect(put.status, put.text).to.equal(200);
    valid('PfdManagement', put.json);
    const replaced = put.json as Transaction;
    expect(Object.keys(replaced.pfdDatas)).to.deep.equal([a2, a3]);
    expect(replaced.pfdDatas[a2]).to.include({ allowedDelay: 120, self: `${t.self}/applications/${a2}` });
    // The application left out is no longer provisioned: another transaction may take it.
    await create(transaction([app(a1)]), 'as2');

    const patch = { pfdDatas: { [a4]: app(a4) } };
    valid('PfdManagementPatch', patch, 'request');
    const patched = await call({ method: 'PATCH', path: itemOf(t), contentType: 'application/merge-patch+json', body: patch });
    expect(patched.status, patched.text).to.equal(200);
    valid('PfdManagement', patched.json);
    expect(Object.keys((patched.json as Transaction).pfdDatas)).to.deep.equal([a2, a3, a4]);
    // A patch naming only a duplicate: 500 with the report, the transaction unchanged.
    const onlyDup = await call({ method: 'PATCH', path: itemOf(t), contentType: 'application/merge-patch+json', body: { pfdDatas: { [a1]: app(a1) } } });
    expect(onlyDup.status, onlyDup.text).to.equal(500);
    valid(`${T}~1{transactionId}/patch/responses/500/content/application~1json/schema`, onlyDup.json);
    expect(onlyDup.json).to.deep.equal([{ externalAppIds: [a1], failureCode: 'APP_ID_DUPLICATED' }]);
    expect((await call({ method: 'GET', path: itemOf(t) })).json).to.deep.equal(patched.json);
    // A duplicate beside an application the PFDF takes: reported, the rest stored; the report lasts until the next change.
    const a5 = appId('e');
    const dup = await call({ method: 'PATCH', path: itemOf(t), contentType: 'application/merge-patch+json', body: { pfdDatas: { [a1]: app(a1), [a5]: app(a5) } } });
    expect(dup.status, dup.text).to.equal(200);
    expect((dup.json as Transaction).pfdReports).to.deep.equal({ APP_ID_DUPLICATED: { externalAppIds: [a1], failureCode: 'APP_ID_DUPLICATED' } });
    expect(Object.keys((dup.json as Transaction).pfdDatas)).to.deep.equal([a2, a3, a4, a5]);
    const clean = await call({ method: 'PATCH', path: itemOf(t), contentType: 'application/merge-patch+json', body: { notificationDestination: AS_DESTINATION } });
    expect(clean.status, clean.text).to.equal(200);
    expect(clean.json).not.to.have.property('pfdReports');
    // Every application refused: 500 with the reports, the transaction unchanged.
    const refused = await call({ method: 'PUT', path: itemOf(t), body: transaction([app(a1)]) });
    expect(refused.status, refused.text).to.equal(500);
    valid(`${T}~1{transactionId}/put/responses/500/content/application~1json/schema`, refused.json);
    expect((await call({ method: 'GET', path: itemOf(t) })).json).to.deep.equal(clean.json);

    expect((await call({ method: 'DELETE', path: itemOf(t) })).status).to.equal(204);
    problem(await call({ method: 'GET', path: itemOf(t) }), 404, 'RESOURCE_NOT_FOUND');
    expect((await listed()).map(x => x.self)).not.to.include(t.self);
  });

  it('serves one application: read, replace, merge-patch, refusals with their PfdReport, delete', async () => {
    const [a1, a2] = [appId('a'), appId('b')];
    const t = await create(transaction([app(a1), app(a2)]));
    const path = `${itemOf(t)}/applications/${a1}`;
    const got = await call({ method: 'GET', path });
    expect(got.status, got.text).to.equal(200);
    valid('PfdData', got.json);
    expect(got.json).to.deep.equal(t.pfdDatas[a1]);

    const next = app(a1, { allowedDelay: 300, pfds: { p9: { pfdId: 'p9', urls: ['^https://shop.example.com/'] } } });
    const put = await call({ method: 'PUT', path, body: next });
    expect(put.status, put.text).to.equal(200);
    valid('PfdData', put.json);
    expect(put.json).to.deep.equal({ ...next, self: `${t.self}/applications/${a1}` });

    const patched = await call({
      method: 'PATCH',
      path,
      contentType: 'application/merge-patch+json',
      body: { externalAppId: a1, pfds: { p10: { pfdId: 'p10', domainNames: ['cdn.example.com'] } }, allowedDelay: null },
    });
    expect(patched.status, patched.text).to.equal(200);
    valid('PfdData', patched.json);
    expect(Object.keys((patched.json as PfdData).pfds)).to.deep.equal(['p9', 'p10']);
    expect(patched.json).not.to.have.property('allowedDelay');

    const short = await call({ method: 'PUT', path, body: app(a1, { allowedDelay: 10 }) });
    expect(short.status, short.text).to.equal(403);
    valid('PfdReport', short.json);
    expect(short.json).to.deep.equal({ externalAppIds: [a1], failureCode: 'SHORT_DELAY' });
    const many = Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`p${i}`, { pfdId: `p${i}`, urls: [`^https://x${i}.example.com/`] }]));
    const limited = await call({ method: 'PUT', path, body: { externalAppId: a1, pfds: many } });
    expect(limited.status, limited.text).to.equal(500);
    expect(limited.json).to.deep.equal({ externalAppIds: [a1], failureCode: 'RESOURCE_LIMITATION' });
    expect((await call({ method: 'GET', path })).json, 'refusals change nothing').to.deep.equal(patched.json);
    problem(await call({ method: 'PUT', path, body: app(a2) }), 400, 'RESOURCE_ID_MISMATCH', '/externalAppId');
    problem(await call({ method: 'PUT', path, body: { ...app(a1), self: `${t.self}/applications/${a2}` } }), 400, 'RESOURCE_ID_MISMATCH', '/self');
    problem(await call({ method: 'GET', path: `${itemOf(t)}/applications/nope` }), 404, 'RESOURCE_NOT_FOUND');

    expect((await call({ method: 'DELETE', path })).status).to.equal(204);
    problem(await call({ method: 'GET', path }), 404, 'RESOURCE_NOT_FOUND');
    expect(Object.keys(((await call({ method: 'GET', path: itemOf(t) })).json as Transaction).pfdDatas)).to.deep.equal([a2]);
    // Its id is free again, network-wide.
    await create(transaction([app(a1)]), 'as2');
    // Removing the last application ends the transaction.
    expect((await call({ method: 'DELETE', path: `${itemOf(t)}/applications/${a2}` })).status).to.equal(204);
    problem(await call({ method: 'GET', path: itemOf(t) }), 404, 'RESOURCE_NOT_FOUND');
  });

  it('another AS gets, for every route of a transaction and its applications, the 404 of an unknown id', async () => {
    const a1 = appId('a');
    const t = await create(transaction([app(a1)]));
    const id = t.self.split('/').pop()!;
    const unknown = crypto.randomUUID();
    const merge = 'application/merge-patch+json';
    const cases: [string, string, Omit<T8Call, 'path'>[]][] = [
      [
        `${PFD}/as2/transactions/${id}`,
        `${PFD}/as2/transactions/${unknown}`,
        [
          { method: 'GET' },
          { method: 'PUT', body: transaction([app(a1)]) },
          { method: 'PATCH', contentType: merge, body: { notificationDestination: AS_DESTINATION } },
          { method: 'DELETE' },
        ],
      ],
      [
        `${PFD}/as2/transactions/${id}/applications/${a1}`,
        `${PFD}/as2/transactions/${unknown}/applications/${a1}`,
        [{ method: 'GET' }, { method: 'PUT', body: app(a1) }, { method: 'PATCH', contentType: merge, body: app(a1) }, { method: 'DELETE' }],
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
    problem(await call({ scsAsId: 'as2', method: 'GET', path: `${PFD}/as2/transactions/not-a-uuid/applications/${a1}` }), 404, 'RESOURCE_NOT_FOUND');
    problem(await call({ scsAsId: 'as2', method: 'GET', path: itemOf(t) }), 403, 'SCS_AS_ID_MISMATCH');
    expect((await call({ method: 'GET', path: itemOf(t) })).json, 'as1 still has it, unchanged').to.deep.equal(t);
  });

  it('refuses an AS not granted the category (403, nothing stored), and decides an application route on its transaction', async () => {
    problem(await call({ scsAsId: 'as3', method: 'POST', path: `${PFD}/as3/transactions`, body: transaction([app(appId('x'))]) }), 403, 'CATEGORY_NOT_GRANTED');
    expect(await listed('as3')).to.deep.equal([]);

    const [a1, b1] = [appId('a'), appId('b')];
    const t = await create(transaction([app(a1), app(b1)]));
    const path = `${itemOf(t)}/applications/${a1}`;
    const grant = policy.grants.get('as1')!;
    // A DELETE carries no body: the transaction's own categories are what is decided.
    policy.grants.set('as1', { ...grant, categories: ['qos'] });
    try {
      problem(await call({ method: 'DELETE', path }), 403, 'CATEGORY_NOT_GRANTED');
      problem(await call({ method: 'GET', path }), 403, 'CATEGORY_NOT_GRANTED');
    } finally {
      policy.grants.set('as1', grant);
    }
    expect(policy.asked.at(-1)).to.deep.include({ operation: 'read', dataCategories: ['pfd'] });
    expect(policy.asked.at(-1)?.targets).to.have.members([`externalAppId:${a1}`, `externalAppId:${b1}`]);
    expect(((await call({ method: 'GET', path: itemOf(t) })).json as Transaction).pfdDatas).to.have.property(a1);
  });

  it('lets an AS provision only the applications it is granted: another AS cannot take, or block, them', async () => {
    const [mine, theirs] = [appId('mine'), appId('theirs')];
    policy.grants.set('as4', { targets: [`externalAppId:${mine}`], categories: ['pfd'] });
    problem(await call({ scsAsId: 'as4', method: 'POST', path: `${PFD}/as4/transactions`, body: transaction([app(theirs)]) }), 403, 'TARGET_NOT_GRANTED');
    problem(await call({ scsAsId: 'as4', method: 'POST', path: `${PFD}/as4/transactions`, body: transaction([app(mine), app(theirs)]) }), 403, 'TARGET_NOT_GRANTED');
    expect(await listed('as4')).to.deep.equal([]);
    // Nothing was provisioned for the refused AS: the application is free for the AS it belongs to.
    const t = await create(transaction([app(theirs)]));
    expect(Object.keys(t.pfdDatas)).to.deep.equal([theirs]);
    expect(t).not.to.have.property('pfdReports');
    const granted = await call({ scsAsId: 'as4', method: 'POST', path: `${PFD}/as4/transactions`, body: transaction([app(mine)]) });
    expect(granted.status, granted.text).to.equal(201);
  });

  it('refuses an external application id that is no identifier (400, nothing decided)', async () => {
    const asked = policy.asked.length;
    const bad = 'has space';
    const answer = await call({ method: 'POST', path: `${PFD}/as1/transactions`, body: { pfdDatas: { [bad]: { ...app(appId('x')), externalAppId: bad } } } });
    const p = problem(answer, 400, 'INVALID_PARAMETER');
    expect(p['invalidParams']).to.deep.equal([{ param: '/pfdDatas/has space/externalAppId', reason: 'an externalAppId is printable ASCII without spaces' }]);
    expect(policy.asked.length).to.equal(asked);
  });

  it('refuses malformed PFDs and members only the SCEF writes (400, nothing stored, nothing decided)', async () => {
    const before = await listed();
    const id = appId('bad');
    const flow = (f: string) => app(id, { pfds: { p1: { pfdId: 'p1', flowDescriptions: [f] } } });
    const cases: [string, Json, string, string][] = [
      ['key is not the id', { pfdDatas: { other: app(id) } }, 'RESOURCE_ID_MISMATCH', '/pfdDatas/other/externalAppId'],
      ['pfd key is not its id', transaction([app(id, { pfds: { p1: { pfdId: 'p2', urls: ['^x'] } } })]), 'RESOURCE_ID_MISMATCH', `/pfdDatas/${id}/pfds/p1/pfdId`],
      ['no matching criteria', transaction([app(id, { pfds: { p1: { pfdId: 'p1' } } })]), 'INVALID_PARAMETER', `/pfdDatas/${id}/pfds/p1`],
      [
        'dnProtocol without names',
        transaction([app(id, { pfds: { p1: { pfdId: 'p1', urls: ['^x'], dnProtocol: 'TLS_SNI' } } })]),
        'INVALID_PARAMETER',
        `/pfdDatas/${id}/pfds/p1/dnProtocol`,
      ],
      ['flow not an IPFilterRule', transaction([flow('tcp 1.2.3.4:443')]), 'INVALID_PARAMETER', `/pfdDatas/${id}/pfds/p1/flowDescriptions/0`],
      ['flow with a bad address', transaction([flow('permit out tcp from 300.1.1.1 443 to assigned')]), 'INVALID_PARAMETER', `/pfdDatas/${id}/pfds/p1/flowDescriptions/0`],
      ['flow with a bad port', transaction([flow('permit out tcp from 198.51.100.7 70000 to assigned')]), 'INVALID_PARAMETER', `/pfdDatas/${id}/pfds/p1/flowDescriptions/0`],
      ['an id no path can name', transaction([app('a/b')]), 'INVALID_PARAMETER', '/pfdDatas/a~1b/externalAppId'],
      ['SCEF-only reports', transaction([app(id)], { pfdReports: { X: { externalAppIds: [id], failureCode: 'OTHER_REASON' } } }), 'INVALID_PARAMETER', '/pfdReports'],
      ['SCEF-only caching time', transaction([app(id, { cachingTime: 60 } as Partial<PfdData>)]), 'INVALID_PARAMETER', `/pfdDatas/${id}/cachingTime`],
      ['application self', transaction([app(id, { self: `${API_ROOT}${PFD}/as1/transactions/x/applications/${id}` })]), 'RESOURCE_ID_MISMATCH', `/pfdDatas/${id}/self`],
      ['test notification without destination', transaction([app(id)], { requestTestNotification: true }), 'INVALID_PARAMETER', '/notificationDestination'],
      [
        'websocket delivery',
        transaction([app(id)], { notificationDestination: AS_DESTINATION, websockNotifConfig: { requestWebsocketUri: true } }),
        'INVALID_PARAMETER',
        '/websockNotifConfig',
      ],
      ['unknown member', transaction([app(id, { sneaky: 1 } as Partial<PfdData>)]), 'INVALID_PARAMETER', `/pfdDatas/${id}/sneaky`],
    ];
    const asked = policy.asked.length;
    for (const [name, body, cause, param] of cases) {
      const a = await call({ method: 'POST', path: `${PFD}/as1/transactions`, body });
      expect(a.status, `${name}: ${a.text}`).to.equal(400);
      problem(a, 400, cause, param);
    }
    expect(policy.asked.length, 'invalid requests never reach authorization').to.equal(asked);
    problem(
      await call({ method: 'POST', path: `${PFD}/as1/transactions`, body: transaction([app(id)], { notificationDestination: 'https://169.254.169.254/x' }) }),
      400,
      'INVALID_NOTIFICATION_DESTINATION',
    );
    expect(await listed()).to.deep.equal(before);
    // Positive control: the same application, well-formed, is provisioned.
    await create(transaction([flow('permit out 17 from 2001:db8::1/128 5000-5010,6000 to any')]));
  });

  it('requestTestNotification publishes one TestNotification to the destination', async () => {
    const t = await create(transaction([app(appId('t'))], { notificationDestination: AS_DESTINATION, requestTestNotification: true }));
    const n = await watcher.waitFor(x => x.subscriptionId === t.self.split('/').pop(), noop, 100);
    const body = JSON.parse(Buffer.from(n.body).toString('utf8')) as unknown;
    expect(body).to.deep.equal({ subscription: t.self });
  });
});
