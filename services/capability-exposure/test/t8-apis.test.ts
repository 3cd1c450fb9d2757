import { expect } from 'chai';
import { createMeshClient } from '@aese/grpc-client';
import { createMeshServer, mount } from '@aese/grpc-server';
import { PROTO_FILES } from '@aese/protos';
import { AuthorizationServiceService } from '@aese/protos/authorization/v1';
import { CapabilityExposureServiceClient } from '@aese/protos/capability-exposure/v1';
import { freePort } from '@aese/testing';
import { loadT8Schemas } from '@aese/t8-openapi';
import type { T8ApiFile, T8Schemas } from '@aese/t8-openapi';
import { startTestMesh } from '../../../test/support/mesh.ts';
import type { TestMesh } from '../../../test/support/mesh.ts';
import { simulatedGroupId, simulatedImsi, simulatedUeIdentifiers, DEFAULT_SIM_UE_COUNT } from '../src/network/simulated-core.ts';
import type { RunningCapabilityExposure } from '../src/server.ts';
import { API_ROOT, AS_DESTINATION, captureLogger, edgeClient, NotificationWatcher, seenBodies, startInstance, t8, TestPolicy } from './support.ts';
import type { T8Answer } from './support.ts';

const ME = '/3gpp-monitoring-event/v1';
const QOS = '/3gpp-as-session-with-qos/v1';
const UE1 = simulatedUeIdentifiers(1);
const UE2 = simulatedUeIdentifiers(2);
const UE10 = simulatedUeIdentifiers(10);
const GROUP1 = simulatedGroupId(1);
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

function sub(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { externalId: UE1.externalId, notificationDestination: AS_DESTINATION, monitoringType: 'LOCATION_REPORTING', maximumNumberOfReports: 5, ...extra };
}

describe('capability-exposure T8 APIs through the mesh', function () {
  this.timeout(60_000);
  let mesh: TestMesh;
  let schemas: T8Schemas;
  let svc: RunningCapabilityExposure;
  let client: ReturnType<typeof edgeClient>;
  let watcher: NotificationWatcher;
  const policy = new TestPolicy();
  const logs: string[] = [];

  const valid = (api: T8ApiFile, schema: string, body: unknown, direction: 'request' | 'response' = 'response'): void => {
    const v = schemas.validator(api, schema, direction);
    expect(v(body), `${schema}: ${JSON.stringify(v.violations())}`).to.equal(true);
  };
  const problem = (a: T8Answer, status: number, cause: string): Record<string, unknown> => {
    expect(a.status, a.text).to.equal(status);
    expect(a.headers['content-type']).to.equal('application/problem+json');
    valid('common-data', 'ProblemDetails', a.json);
    const p = a.json as Record<string, unknown>;
    expect(p['cause']).to.equal(cause);
    expect(p['status']).to.equal(status);
    expect(p['title']).to.be.a('string');
    return p;
  };
  const idOf = (a: T8Answer): string => a.headers['location'].split('/').pop()!;
  const advance = () => svc.simulator!.advance();
  const listIds = async (scsAsId = 'as1', base = ME): Promise<string[]> => {
    const a = await t8(client, { scsAsId, method: 'GET', path: `${base}/${scsAsId}/subscriptions` });
    expect(a.status).to.equal(200);
    return (a.json as { self: string }[]).map(s => s.self.split('/').pop()!);
  };

  before(async () => {
    schemas = await loadT8Schemas();
    mesh = await startTestMesh({ extraEnv: { SIM_TICK_MS: '0' } });
    policy.grants.set('as1', {
      targets: [`externalId:${UE1.externalId}`, `msisdn:${UE2.msisdn}`, `externalId:${UE10.externalId}`, `externalGroupId:${GROUP1}`, `externalId:${UE2.externalId}`],
      categories: ['location', 'reachability', 'connectivity', 'roaming', 'qos'],
    });
    policy.grants.set('as2', { targets: [`externalId:${UE2.externalId}`], categories: ['location', 'qos'] });
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

  describe('registry', () => {
    it('ListApis lists both modules with their routes, scopes and data categories (edge and operator may ask)', async () => {
      for (const identity of ['edge', 'operator'] as const) {
        const c = createMeshClient(CapabilityExposureServiceClient, { address: `localhost:${svc.port}`, tls: mesh.tls(identity), serverId: mesh.id('capability-exposure') });
        const { apis } = await c.listApis({});
        c.close();
        const me = apis.find(a => a.name === '3gpp-monitoring-event')!;
        const qos = apis.find(a => a.name === '3gpp-as-session-with-qos')!;
        expect(me).to.deep.include({ version: 'v1', scope: '3gpp-monitoring-event' });
        expect(me.dataCategories).to.have.members(['location', 'reachability', 'connectivity', 'roaming']);
        expect(me.routes.map(r => `${r.method} ${r.path} ${r.operation}`)).to.have.members([
          'GET /{scsAsId}/subscriptions read',
          'POST /{scsAsId}/subscriptions create',
          'GET /{scsAsId}/subscriptions/{subscriptionId} read',
          'PUT /{scsAsId}/subscriptions/{subscriptionId} update',
          'PATCH /{scsAsId}/subscriptions/{subscriptionId} update',
          'DELETE /{scsAsId}/subscriptions/{subscriptionId} delete',
        ]);
        expect(qos).to.deep.include({ version: 'v1', scope: '3gpp-as-session-with-qos', dataCategories: ['qos'] });
        expect(qos.routes).to.have.length(6);
      }
    });

    it('Invoke is for the edge only: another mesh identity is refused', async () => {
      const c = createMeshClient(CapabilityExposureServiceClient, { address: `localhost:${svc.port}`, tls: mesh.tls('authentication'), serverId: mesh.id('capability-exposure') });
      const asked = policy.asked.length;
      await c
        .invoke({ scsAsId: 'as1', method: 'GET', path: `${ME}/as1/subscriptions`, contentType: '', body: Buffer.alloc(0), scopes: ['3gpp-monitoring-event'], apiRoot: API_ROOT })
        .then(
          () => expect.fail('invoke by authentication was accepted'),
          (err: { code?: string }) => expect(err.code).to.equal('CALLER_NOT_ALLOWED'),
        );
      c.close();
      expect(policy.asked.length).to.equal(asked);
    });

    it('unknown APIs and paths get the one 404; a wrong method gets 405 with Allow', async () => {
      problem(await t8(client, { method: 'GET', path: '/3gpp-unknown-api/v1/as1/configurations' }), 404, 'RESOURCE_NOT_FOUND');
      problem(await t8(client, { method: 'GET', path: `${ME}/as1/other` }), 404, 'RESOURCE_NOT_FOUND');
      problem(await t8(client, { method: 'GET', path: `${ME}/as1%2Fsubscriptions` }), 404, 'RESOURCE_NOT_FOUND');
      const a = await t8(client, { method: 'DELETE', path: `${ME}/as1/subscriptions` });
      problem(a, 405, 'METHOD_NOT_ALLOWED');
      expect(a.headers['allow']).to.equal('GET, POST');
    });
  });

  describe('MonitoringEvent', () => {
    it('one-time LOCATION_REPORTING answers 200 with a schema-valid location report and stores nothing', async () => {
      const before = await listIds();
      const a = await t8(client, { method: 'POST', path: `${ME}/as1/subscriptions`, body: sub({ maximumNumberOfReports: 1 }) });
      expect(a.status, a.text).to.equal(200);
      expect(a.headers['content-type']).to.equal('application/json');
      expect(a.headers['location']).to.equal(undefined);
      valid('monitoring-event', '#/paths/~1{scsAsId}~1subscriptions/post/responses/200/content/application~1json/schema', a.json);
      valid('monitoring-event', 'MonitoringEventReport', a.json);
      const report = a.json as { externalId: string; monitoringType: string; locationInfo: Record<string, unknown> };
      expect(report.externalId).to.equal(UE1.externalId);
      expect(report.monitoringType).to.equal('LOCATION_REPORTING');
      expect(report.locationInfo).to.include.keys('cellId', 'trackingAreaId', 'userLocation', 'geographicArea');
      expect(a.res.dataCategories).to.deep.equal(['location']);
      expect(await listIds()).to.deep.equal(before);
      const asked = policy.asked.filter(q => q.operation === 'create').at(-1)!;
      expect(asked).to.deep.equal({
        scsAsId: 'as1',
        api: '3gpp-monitoring-event',
        operation: 'create',
        dataCategories: ['location'],
        targets: [`externalId:${UE1.externalId}`],
        pathScsAsId: 'as1',
      });
    });

    it('a group one-time report answers MonitoringEventReports, members named by externalId', async () => {
      const a = await t8(client, {
        method: 'POST',
        path: `${ME}/as1/subscriptions`,
        body: { externalGroupId: GROUP1, notificationDestination: AS_DESTINATION, monitoringType: 'LOCATION_REPORTING', maximumNumberOfReports: 1 },
      });
      expect(a.status, a.text).to.equal(200);
      valid('monitoring-event', 'MonitoringEventReports', a.json);
      expect((a.json as { monitoringEventReports: unknown[] }).monitoringEventReports).to.have.length(DEFAULT_SIM_UE_COUNT / 4);
    });

    it('continuous LOCATION_REPORTING answers 201 + Location, and a MonitoringNotification reaches NATS after advance()', async () => {
      const a = await t8(client, { method: 'POST', path: `${ME}/as1/subscriptions`, body: sub() });
      expect(a.status, a.text).to.equal(201);
      valid('monitoring-event', 'MonitoringEventSubscription', a.json);
      const id = idOf(a);
      expect(id).to.match(UUID);
      expect(a.headers['location']).to.equal(`${API_ROOT}${ME}/as1/subscriptions/${id}`);
      expect((a.json as { self: string }).self).to.equal(a.headers['location']);
      expect(watcher.for(id)).to.have.length(0);
      const n = await watcher.waitFor(x => x.subscriptionId === id, advance);
      expect(n).to.deep.include({ scsAsId: 'as1', api: '3gpp-monitoring-event', destination: AS_DESTINATION });
      expect(n.notificationId).to.match(UUID);
      const body = JSON.parse(Buffer.from(n.body).toString('utf8')) as { subscription: string; monitoringEventReports: { monitoringType: string; externalId: string }[] };
      valid('monitoring-event', 'MonitoringNotification', body);
      expect(body.subscription).to.equal(a.headers['location']);
      expect(body.monitoringEventReports[0]).to.include({ monitoringType: 'LOCATION_REPORTING', externalId: UE1.externalId });
      expect(policy.asked.at(-1)).to.include({ operation: 'notify', scsAsId: 'as1' });
    });

    it('UE_REACHABILITY, LOSS_OF_CONNECTIVITY and ROAMING_STATUS are accepted and notified', async () => {
      const made: Record<string, string> = {};
      for (const [type, who] of [
        ['UE_REACHABILITY', { externalGroupId: GROUP1 }],
        ['LOSS_OF_CONNECTIVITY', { externalGroupId: GROUP1 }],
        ['ROAMING_STATUS', { externalId: UE10.externalId, plmnIndication: true }],
      ] as const) {
        const a = await t8(client, {
          method: 'POST',
          path: `${ME}/as1/subscriptions`,
          body: { ...who, notificationDestination: AS_DESTINATION, monitoringType: type, maximumNumberOfReports: 10 },
        });
        expect(a.status, `${type}: ${a.text}`).to.equal(201);
        valid('monitoring-event', 'MonitoringEventSubscription', a.json);
        made[type] = idOf(a);
      }
      for (const [type, id] of Object.entries(made)) {
        const n = await watcher.waitFor(x => x.subscriptionId === id, advance);
        const body = JSON.parse(Buffer.from(n.body).toString('utf8')) as { monitoringEventReports: Record<string, unknown>[] };
        valid('monitoring-event', 'MonitoringNotification', body);
        expect(body.monitoringEventReports[0]['monitoringType']).to.equal(type);
        if (type === 'ROAMING_STATUS') expect(body.monitoringEventReports[0]).to.include.keys('roamingStatus', 'plmnId');
        if (type === 'LOSS_OF_CONNECTIVITY') expect(body.monitoringEventReports[0]).to.include.keys('lossOfConnectReason');
      }
    });

    it('an msisdn subscription reports by msisdn; a one-time ROAMING_STATUS answers at once', async () => {
      const a = await t8(client, {
        method: 'POST',
        path: `${ME}/as1/subscriptions`,
        body: { msisdn: UE2.msisdn, notificationDestination: AS_DESTINATION, monitoringType: 'ROAMING_STATUS', maximumNumberOfReports: 1 },
      });
      expect(a.status, a.text).to.equal(200);
      valid('monitoring-event', 'MonitoringEventReport', a.json);
      expect(a.json).to.include({ msisdn: UE2.msisdn, roamingStatus: false }).and.not.have.property('externalId');
    });

    it('GET list and one, PUT, PATCH (json-patch) and DELETE', async () => {
      const created = await t8(client, { method: 'POST', path: `${ME}/as1/subscriptions`, body: sub({ monitoringType: 'UE_REACHABILITY', reachabilityType: 'SMS' }) });
      expect(created.status, created.text).to.equal(201);
      const id = idOf(created);
      const item = `${ME}/as1/subscriptions/${id}`;
      const list = await t8(client, { method: 'GET', path: `${ME}/as1/subscriptions` });
      expect(list.status).to.equal(200);
      valid('monitoring-event', '#/paths/~1{scsAsId}~1subscriptions/get/responses/200/content/application~1json/schema', list.json);
      expect(await listIds()).to.include(id);
      const one = await t8(client, { method: 'GET', path: item });
      expect(one.status).to.equal(200);
      expect(one.json).to.deep.equal(created.json);
      valid('monitoring-event', 'MonitoringEventSubscription', one.json);

      const put = await t8(client, { method: 'PUT', path: item, body: { ...sub({ maximumNumberOfReports: 3 }), self: created.headers['location'] } });
      expect(put.status, put.text).to.equal(200);
      valid('monitoring-event', 'MonitoringEventSubscription', put.json);
      expect(put.json).to.include({ maximumNumberOfReports: 3, monitoringType: 'LOCATION_REPORTING', self: created.headers['location'] });

      const patch = await t8(client, {
        method: 'PATCH',
        path: item,
        contentType: 'application/json-patch+json',
        body: [
          { op: 'replace', path: '/maximumNumberOfReports', value: 7 },
          { op: 'add', path: '/locationType', value: 'CURRENT_LOCATION' },
        ],
      });
      expect(patch.status, patch.text).to.equal(204);
      expect(patch.text).to.equal('');
      const after = await t8(client, { method: 'GET', path: item });
      expect(after.json).to.include({ maximumNumberOfReports: 7, locationType: 'CURRENT_LOCATION' });

      // A patch whose result breaks the schema or the rules changes nothing.
      problem(
        await t8(client, { method: 'PATCH', path: item, contentType: 'application/json-patch+json', body: [{ op: 'remove', path: '/notificationDestination' }] }),
        400,
        'INVALID_PARAMETER',
      );
      problem(
        await t8(client, {
          method: 'PATCH',
          path: item,
          contentType: 'application/json-patch+json',
          body: [{ op: 'replace', path: '/notificationDestination', value: 'https://169.254.169.254/x' }],
        }),
        400,
        'INVALID_NOTIFICATION_DESTINATION',
      );
      problem(
        await t8(client, { method: 'PATCH', path: item, contentType: 'application/json-patch+json', body: [{ op: 'replace', path: '/self', value: 'https://evil.example.com/' }] }),
        400,
        'RESOURCE_ID_MISMATCH',
      );
      problem(
        await t8(client, { method: 'PATCH', path: item, contentType: 'application/json', body: [{ op: 'replace', path: '/maximumNumberOfReports', value: 2 }] }),
        415,
        'UNSUPPORTED_MEDIA_TYPE',
      );
      expect((await t8(client, { method: 'GET', path: item })).json).to.deep.equal(after.json);

      const del = await t8(client, { method: 'DELETE', path: item });
      expect(del.status).to.equal(204);
      problem(await t8(client, { method: 'GET', path: item }), 404, 'RESOURCE_NOT_FOUND');
      expect(await listIds()).to.not.include(id);
    });

    it('catalogue 1: AS B gets, for AS A subscription, a 404 byte-identical to a random id (and A still has it)', async () => {
      const created = await t8(client, { method: 'POST', path: `${ME}/as1/subscriptions`, body: sub() });
      const id = idOf(created);
      const random = await t8(client, { scsAsId: 'as2', method: 'GET', path: `${ME}/as2/subscriptions/${crypto.randomUUID()}` });
      problem(random, 404, 'RESOURCE_NOT_FOUND');
      const asked = policy.asked.length;
      for (const [method, extra] of [
        ['GET', {}],
        ['DELETE', {}],
        ['PUT', { body: sub({ externalId: UE2.externalId }) }],
        ['PATCH', { contentType: 'application/json-patch+json', body: [{ op: 'replace', path: '/maximumNumberOfReports', value: 9 }] }],
      ] as const) {
        const a = await t8(client, { scsAsId: 'as2', method, path: `${ME}/as2/subscriptions/${id}`, ...extra });
        expect(a.status, `${method}`).to.equal(404);
        expect(a.text, method).to.equal(random.text);
        expect(a.headers).to.deep.equal(random.headers);
      }
      for (const bad of ['not-a-uuid', '..', '*', '>', `${id}.x`]) {
        const a = await t8(client, { scsAsId: 'as2', method: 'GET', path: `${ME}/as2/subscriptions/${encodeURIComponent(bad)}` });
        expect(a.status, bad).to.equal(404);
        expect(a.text, bad).to.equal(random.text);
      }
      expect(policy.asked.length, 'no decision was needed to refuse').to.equal(asked);
      expect(await listIds('as2')).to.not.include(id);
      // Naming AS A in the path is refused outright: the path's scsAsId must be the caller.
      problem(await t8(client, { scsAsId: 'as2', method: 'GET', path: `${ME}/as1/subscriptions/${id}` }), 403, 'SCS_AS_ID_MISMATCH');
      problem(await t8(client, { scsAsId: 'as2', method: 'GET', path: `${ME}/as1/subscriptions` }), 403, 'SCS_AS_ID_MISMATCH');
      // Positive control: the owner still reads it, unchanged.
      const mine = await t8(client, { method: 'GET', path: `${ME}/as1/subscriptions/${id}` });
      expect(mine.status).to.equal(200);
      expect(mine.json).to.deep.equal(created.json);
    });

    it('catalogue 6: smuggled scsAsId, duplicate keys, unknown or SCEF-only members and a foreign self -> 400, nothing stored', async () => {
      const before = await listIds();
      const cases: [string, { body?: unknown; raw?: string }, string, string | undefined][] = [
        ['body scsAsId', { body: sub({ scsAsId: 'as2' }) }, 'INVALID_PARAMETER', '/scsAsId'],
        [
          'duplicate key',
          {
            raw: `{"externalId":"${UE1.externalId}","externalId":"${UE2.externalId}","notificationDestination":"${AS_DESTINATION}","monitoringType":"LOCATION_REPORTING","maximumNumberOfReports":5}`,
          },
          'DUPLICATE_JSON_MEMBER',
          'externalId',
        ],
        ['nested unknown', { body: sub({ locationArea: { cellIds: ['x'], trackingAreaIds: ['y'], sneaky: true } }) }, 'INVALID_PARAMETER', '/locationArea/sneaky'],
        [
          '__proto__',
          {
            raw: `{"__proto__":{"admin":true},"externalId":"${UE1.externalId}","notificationDestination":"${AS_DESTINATION}","monitoringType":"LOCATION_REPORTING","maximumNumberOfReports":5}`,
          },
          'FORBIDDEN_JSON_MEMBER',
          undefined,
        ],
        ['foreign self', { body: sub({ self: `${API_ROOT}${ME}/as2/subscriptions/${crypto.randomUUID()}` }) }, 'RESOURCE_ID_MISMATCH', '/self'],
        ['SCEF-only report', { body: sub({ monitoringEventReport: { monitoringType: 'LOCATION_REPORTING' } }) }, 'INVALID_PARAMETER', '/monitoringEventReport'],
        ['two identifiers', { body: sub({ msisdn: UE2.msisdn }) }, 'UE_IDENTIFIER_REQUIRED', '/externalId'],
        ['wrong type', { body: sub({ maximumNumberOfReports: '5' }) }, 'INVALID_PARAMETER', '/maximumNumberOfReports'],
        ['unsupported type', { body: sub({ monitoringType: 'NUMBER_OF_UES_IN_AN_AREA' }) }, 'UNSUPPORTED_MONITORING_TYPE', '/monitoringType'],
      ];
      const asked = policy.asked.length;
      for (const [name, body, cause, param] of cases) {
        const p = problem(await t8(client, { method: 'POST', path: `${ME}/as1/subscriptions`, ...body }), 400, cause);
        if (param) expect((p['invalidParams'] as { param: string }[])[0].param, name).to.equal(param);
        expect(JSON.stringify(p), name).to.not.include(UE1.externalId).and.not.include(UE2.externalId).and.not.include(UE2.msisdn);
      }
      expect(policy.asked.length, 'invalid requests never reach authorization').to.equal(asked);
      expect(await listIds()).to.deep.equal(before);
      expect(({} as Record<string, unknown>)['admin']).to.equal(undefined);
      // Positive control: the same body without the smuggled member is created.
      expect((await t8(client, { method: 'POST', path: `${ME}/as1/subscriptions`, body: sub() })).status).to.equal(201);
    });

    it('catalogue 5: notificationDestination must be public https (400, nothing stored); an allow-listed one passes', async () => {
      const before = await listIds();
      for (const dest of [
        'http://as1.example.com/n',
        'https://127.0.0.1/n',
        'https://localhost:8443/n',
        'https://169.254.169.254/latest',
        'https://[::1]/n',
        'https://10.0.0.1/n',
        'https://2130706433/n',
        `https://${mesh.env['AUTHORIZATION_ADDR']}/n`,
        'https://unresolvable.invalid/n',
      ]) {
        const p = problem(
          await t8(client, { method: 'POST', path: `${ME}/as1/subscriptions`, body: sub({ notificationDestination: dest }) }),
          400,
          'INVALID_NOTIFICATION_DESTINATION',
        );
        expect(JSON.stringify(p)).to.not.include(dest);
      }
      expect(await listIds()).to.deep.equal(before);
      const permissive = await startInstance(mesh, logs, policy.decide, { NOTIFICATION_DESTINATION_ALLOWLIST: '127.0.0.1:9443, 10.9.0.0/16' });
      const c = edgeClient(mesh, permissive.port);
      try {
        for (const dest of ['https://127.0.0.1:9443/n', 'https://10.9.8.7/n']) {
          const a = await t8(c, { method: 'POST', path: `${ME}/as1/subscriptions`, body: sub({ notificationDestination: dest }) });
          expect(a.status, a.text).to.equal(201);
        }
        problem(
          await t8(c, { method: 'POST', path: `${ME}/as1/subscriptions`, body: sub({ notificationDestination: 'http://127.0.0.1:9443/n' }) }),
          400,
          'INVALID_NOTIFICATION_DESTINATION',
        );
      } finally {
        c.close();
        await permissive.stop();
      }
    });

    it('scope, denial, media type, size and body rules: refused before anything runs', async () => {
      const before = await listIds();
      let asked = policy.asked.length;
      const p = problem(await t8(client, { method: 'POST', path: `${ME}/as1/subscriptions`, body: sub(), scopes: ['3gpp-as-session-with-qos'] }), 403, 'insufficient_scope');
      expect(p['detail']).to.include('3gpp-monitoring-event');
      expect(policy.asked.length).to.equal(asked);
      problem(await t8(client, { method: 'POST', path: `${ME}/as1/subscriptions`, body: sub(), contentType: 'text/plain' }), 415, 'UNSUPPORTED_MEDIA_TYPE');
      problem(await t8(client, { method: 'POST', path: `${ME}/as1/subscriptions`, body: sub(), contentType: 'application/json; charset=latin1' }), 415, 'UNSUPPORTED_MEDIA_TYPE');
      expect(
        (await t8(client, { method: 'POST', path: `${ME}/as1/subscriptions`, body: sub({ maximumNumberOfReports: 1 }), contentType: 'Application/JSON; charset=UTF-8' })).status,
      ).to.equal(200);
      asked = policy.asked.length;
      problem(await t8(client, { method: 'POST', path: `${ME}/as1/subscriptions`, raw: JSON.stringify(sub({ mtcProviderId: 'x'.repeat(70_000) })) }), 413, 'PAYLOAD_TOO_LARGE');
      problem(await t8(client, { method: 'GET', path: `${ME}/as1/subscriptions`, raw: '{}', contentType: 'application/json' }), 400, 'BODY_NOT_ALLOWED');
      problem(await t8(client, { method: 'POST', path: `${ME}/as1/subscriptions`, raw: '['.repeat(5000) + ']'.repeat(5000) }), 400, 'JSON_TOO_DEEP');
      expect(policy.asked.length).to.equal(asked);
      // Policy denial: the deny cause is the ProblemDetails cause, nothing is stored.
      problem(await t8(client, { method: 'POST', path: `${ME}/as1/subscriptions`, body: sub({ externalId: simulatedUeIdentifiers(3).externalId }) }), 403, 'TARGET_NOT_GRANTED');
      problem(
        await t8(client, { scsAsId: 'as2', method: 'POST', path: `${ME}/as2/subscriptions`, body: sub({ externalId: UE2.externalId, monitoringType: 'ROAMING_STATUS' }) }),
        403,
        'CATEGORY_NOT_GRANTED',
      );
      expect(await listIds()).to.deep.equal(before);
      // An AS granted the identifier of a UE the network does not know learns only that.
      policy.grants.set('as3', { targets: ['externalId:nobody@scef.test'], categories: ['location'] });
      problem(await t8(client, { scsAsId: 'as3', method: 'POST', path: `${ME}/as3/subscriptions`, body: sub({ externalId: 'nobody@scef.test' }) }), 400, 'UNKNOWN_UE');
    });

    it('obligations: coarsen-location is applied here, encrypt-response is handed to the edge', async () => {
      policy.grants.set('as4', {
        targets: [`externalId:${UE1.externalId}`],
        categories: ['location'],
        obligations: [
          { type: 'coarsen-location', parameters: { level: 'ta' } },
          { type: 'encrypt-response', parameters: {} },
        ],
      });
      const a = await t8(client, { scsAsId: 'as4', method: 'POST', path: `${ME}/as4/subscriptions`, body: sub({ maximumNumberOfReports: 1 }) });
      expect(a.status, a.text).to.equal(200);
      valid('monitoring-event', 'MonitoringEventReport', a.json);
      const info = (a.json as { locationInfo: Record<string, unknown> }).locationInfo;
      expect(info).to.have.keys('ageOfLocationInfo', 'trackingAreaId', 'plmnId');
      expect(a.res.obligations).to.deep.equal([{ type: 'encrypt-response', parameters: {} }]);
      policy.grants.set('as4', { targets: [`externalId:${UE1.externalId}`], categories: ['location'], obligations: [{ type: 'coarsen-location', parameters: { level: 'cell' } }] });
      const b = await t8(client, { scsAsId: 'as4', method: 'POST', path: `${ME}/as4/subscriptions`, body: sub({ maximumNumberOfReports: 1 }) });
      expect((b.json as { locationInfo: Record<string, unknown> }).locationInfo)
        .to.include.keys('cellId', 'userLocation')
        .and.not.have.property('geographicArea');
      expect(b.res.obligations).to.deep.equal([]);
    });

    it('requestTestNotification publishes one TestNotification at once', async () => {
      const a = await t8(client, { method: 'POST', path: `${ME}/as1/subscriptions`, body: sub({ requestTestNotification: true }) });
      expect(a.status).to.equal(201);
      const id = idOf(a);
      await watcher.settle();
      const got = watcher.for(id);
      expect(got).to.have.length(1);
      const body = JSON.parse(Buffer.from(got[0].body).toString('utf8')) as unknown;
      valid('common-data', 'TestNotification', body);
      expect(body).to.deep.equal({ subscription: a.headers['location'] });
    });

    it('a withdrawn grant stops notifications (decided again per notification); restoring it resumes them', async () => {
      const a = await t8(client, { method: 'POST', path: `${ME}/as1/subscriptions`, body: sub({ externalId: UE2.externalId, maximumNumberOfReports: 50 }) });
      const id = idOf(a);
      const grant = policy.grants.get('as1')!;
      policy.grants.set('as1', { ...grant, targets: grant.targets.filter(t => t !== `externalId:${UE2.externalId}`) });
      for (let i = 0; i < 15; i++) await advance();
      await watcher.settle();
      expect(watcher.for(id)).to.have.length(0);
      expect(policy.asked.some(q => q.operation === 'notify' && q.targets.includes(`externalId:${UE2.externalId}`))).to.equal(true);
      policy.grants.set('as1', grant);
      await watcher.waitFor(n => n.subscriptionId === id, advance);
    });
  });

  describe('AsSessionWithQoS', () => {
    it('create, read, update (PUT and merge-patch), QoS event notification, delete', async () => {
      const body = {
        notificationDestination: AS_DESTINATION,
        ueIpv4Addr: UE1.ipv4Addr,
        qosReference: 'qos-gold',
        altQoSReferences: ['qos-silver'],
        events: ['QOS_GUARANTEED', 'QOS_NOT_GUARANTEED'],
        usageThreshold: { duration: 3600, totalVolume: 1000000 },
        flowInfo: [{ flowId: 1, flowDescriptions: ['permit out ip from 10.45.0.1 to 203.0.114.10'] }],
      };
      const created = await t8(client, { method: 'POST', path: `${QOS}/as1/subscriptions`, body });
      expect(created.status, created.text).to.equal(201);
      valid('as-session-with-qos', 'AsSessionWithQoSSubscription', created.json);
      const id = idOf(created);
      expect(created.headers['location']).to.equal(`${API_ROOT}${QOS}/as1/subscriptions/${id}`);
      expect(policy.asked.at(-1)).to.deep.include({ api: '3gpp-as-session-with-qos', operation: 'create', dataCategories: ['qos'], targets: [`externalId:${UE1.externalId}`] });
      const item = `${QOS}/as1/subscriptions/${id}`;
      const got = await t8(client, { method: 'GET', path: item });
      expect(got.json).to.deep.equal(created.json);
      const list = await t8(client, { method: 'GET', path: `${QOS}/as1/subscriptions` });
      valid('as-session-with-qos', '#/paths/~1{scsAsId}~1subscriptions/get/responses/200/content/application~1json/schema', list.json);
      expect(await listIds('as1', QOS)).to.include(id);

      const put = await t8(client, { method: 'PUT', path: item, body: { ...body, qosReference: 'qos-silver' } });
      expect(put.status, put.text).to.equal(200);
      valid('as-session-with-qos', 'AsSessionWithQoSSubscription', put.json);
      const patched = await t8(client, { method: 'PATCH', path: item, contentType: 'application/merge-patch+json', body: { qosReference: 'qos-gold', usageThreshold: null } });
      expect(patched.status, patched.text).to.equal(200);
      valid('as-session-with-qos', 'AsSessionWithQoSSubscription', patched.json);
      expect(patched.json).to.include({ qosReference: 'qos-gold' }).and.not.have.property('usageThreshold');
      expect(patched.json).to.have.property('altQoSReferences');
      problem(await t8(client, { method: 'PUT', path: item, body: { ...body, ueIpv4Addr: UE2.ipv4Addr } }), 400, 'UE_IDENTIFIER_IMMUTABLE');
      problem(await t8(client, { method: 'PATCH', path: item, contentType: 'application/merge-patch+json', body: { qosReference: 'qos-platinum' } }), 400, 'INVALID_PARAMETER');
      problem(await t8(client, { method: 'PATCH', path: item, contentType: 'application/merge-patch+json', body: { sneaky: 1 } }), 400, 'INVALID_PARAMETER');

      const n = await watcher.waitFor(x => x.subscriptionId === id, advance);
      expect(n.api).to.equal('3gpp-as-session-with-qos');
      const note = JSON.parse(Buffer.from(n.body).toString('utf8')) as { transaction: string; eventReports: { event: string }[] };
      valid('as-session-with-qos', 'UserPlaneNotificationData', note);
      expect(note.transaction).to.equal(created.headers['location']);
      expect(['QOS_GUARANTEED', 'QOS_NOT_GUARANTEED']).to.include(note.eventReports[0].event);

      // AS B: the same 404 as a random id.
      const random = await t8(client, { scsAsId: 'as2', method: 'GET', path: `${QOS}/as2/subscriptions/${crypto.randomUUID()}` });
      const foreign = await t8(client, { scsAsId: 'as2', method: 'DELETE', path: `${QOS}/as2/subscriptions/${id}` });
      expect(foreign.status).to.equal(404);
      expect(foreign.text).to.equal(random.text);

      expect((await t8(client, { method: 'DELETE', path: item })).status).to.equal(204);
      problem(await t8(client, { method: 'GET', path: item }), 404, 'RESOURCE_NOT_FOUND');
      const count = watcher.for(id).length;
      for (let i = 0; i < 10; i++) await advance();
      await watcher.settle();
      expect(watcher.for(id).length, 'no notification after delete').to.equal(count);
    });

    it('refuses a session without a UE, with an unknown UE or QoS reference, or with an internal destination', async () => {
      const base = { notificationDestination: AS_DESTINATION, qosReference: 'qos-gold' };
      const before = await listIds('as1', QOS);
      problem(await t8(client, { method: 'POST', path: `${QOS}/as1/subscriptions`, body: base }), 400, 'UE_IDENTIFIER_REQUIRED');
      problem(
        await t8(client, { method: 'POST', path: `${QOS}/as1/subscriptions`, body: { ...base, ueIpv4Addr: UE1.ipv4Addr, qosReference: 'qos-platinum' } }),
        400,
        'INVALID_PARAMETER',
      );
      problem(
        await t8(client, { method: 'POST', path: `${QOS}/as1/subscriptions`, body: { ...base, ueIpv4Addr: UE1.ipv4Addr, notificationDestination: 'https://[fe80::1]/n' } }),
        400,
        'INVALID_NOTIFICATION_DESTINATION',
      );
      problem(
        await t8(client, { method: 'POST', path: `${QOS}/as1/subscriptions`, body: { ...base, gpsi: `msisdn-${simulatedUeIdentifiers(3).msisdn}` } }),
        403,
        'TARGET_NOT_GRANTED',
      );
      expect(await listIds('as1', QOS)).to.deep.equal(before);
      const ok = await t8(client, { method: 'POST', path: `${QOS}/as1/subscriptions`, body: { ...base, gpsi: `extid-${UE1.externalId}` } });
      expect(ok.status, ok.text).to.equal(201);
    });
  });

  describe('authorization wiring and persistence', () => {
    it('decides through the authorization gRPC service; unreachable authorization fails closed with 503', async () => {
      // A stand-in authorization server with the mesh identity "authorization", deciding with the test policy.
      const authz = createMeshServer({
        name: 'authorization',
        tls: mesh.tls('authorization'),
        logger: captureLogger(logs, 'authorization'),
        protoFiles: [PROTO_FILES.authorization],
        serviceNames: ['aese.authorization.v1.AuthorizationService'],
        services: [
          mount({
            definition: AuthorizationServiceService,
            handlers: {
              decide: async req => {
                const d = policy.evaluate({ ...req, operation: req.operation as 'read' });
                return {
                  allowed: d.allowed,
                  determiningPolicies: [],
                  obligations: d.obligations.map(o => ({ type: o.type, parameters: { ...o.parameters } })),
                  policyVersion: d.policyVersion,
                  denyCause: d.denyCause,
                };
              },
              applyPolicies: async () => ({ version: 0 }),
              getPolicies: async () => ({ version: 0, policies: '', entitiesJson: '', schema: '', appliedAtMs: 0 }),
            },
            allowedCallers: { decide: [mesh.id('capability-exposure')], applyPolicies: [], getPolicies: [] },
          }),
        ],
      });
      const authzPort = await authz.listen('127.0.0.1', 0);
      authz.setServing(true);
      const wired = await startInstance(mesh, logs, undefined, { AUTHORIZATION_ADDR: `localhost:${authzPort}` });
      const down = await startInstance(mesh, logs, undefined, { AUTHORIZATION_ADDR: `localhost:${await freePort()}`, CE_DECIDE_DEADLINE_MS: '500' });
      const c1 = edgeClient(mesh, wired.port);
      const c2 = edgeClient(mesh, down.port);
      try {
        const before = await listIds();
        const ok = await t8(c1, { method: 'POST', path: `${ME}/as1/subscriptions`, body: sub() });
        expect(ok.status, ok.text).to.equal(201);
        problem(await t8(c1, { method: 'POST', path: `${ME}/as1/subscriptions`, body: sub({ externalId: simulatedUeIdentifiers(4).externalId }) }), 403, 'TARGET_NOT_GRANTED');
        const after = await listIds();
        problem(await t8(c2, { method: 'POST', path: `${ME}/as1/subscriptions`, body: sub() }), 503, 'AUTHORIZATION_UNAVAILABLE');
        problem(await t8(c2, { method: 'GET', path: `${ME}/as1/subscriptions/${idOf(ok)}` }), 503, 'AUTHORIZATION_UNAVAILABLE');
        expect(await listIds()).to.deep.equal(after);
        expect(after.length).to.equal(before.length + 1);
      } finally {
        c1.close();
        c2.close();
        await wired.stop();
        await down.stop();
        await authz.shutdown();
      }
    });

    it('subscriptions survive a restart: a new instance on the same NATS serves and notifies them', async () => {
      const me = await t8(client, { method: 'POST', path: `${ME}/as1/subscriptions`, body: sub({ maximumNumberOfReports: 100 }) });
      const qos = await t8(client, {
        method: 'POST',
        path: `${QOS}/as1/subscriptions`,
        body: { notificationDestination: AS_DESTINATION, ueIpv6Addr: UE1.ipv6Addr, qosReference: 'qos-bronze', events: ['QOS_GUARANTEED', 'QOS_NOT_GUARANTEED'] },
      });
      expect(me.status).to.equal(201);
      expect(qos.status, qos.text).to.equal(201);
      client.close();
      await svc.stop();
      svc = await startInstance(mesh, logs, policy.decide);
      client = edgeClient(mesh, svc.port);
      const again = await t8(client, { method: 'GET', path: `${ME}/as1/subscriptions/${idOf(me)}` });
      expect(again.status).to.equal(200);
      expect(again.json).to.deep.equal(me.json);
      expect((await t8(client, { method: 'GET', path: `${QOS}/as1/subscriptions/${idOf(qos)}` })).json).to.deep.equal(qos.json);
      await watcher.waitFor(n => n.subscriptionId === idOf(me) && watcher.for(idOf(me)).length > 0, advance);
      await watcher.waitFor(n => n.subscriptionId === idOf(qos), advance);
    });

    it('no IMSI in any response, notification or log; no UE identifier in any log', async () => {
      const imsis = Array.from({ length: DEFAULT_SIM_UE_COUNT }, (_, i) => simulatedImsi(i + 1));
      const everything = [...seenBodies, ...logs, ...mesh.logs];
      expect(seenBodies.length).to.be.greaterThan(50);
      expect(watcher.received.length).to.be.greaterThan(5);
      for (const imsi of imsis)
        expect(
          everything.some(t => t.includes(imsi)),
          imsi,
        ).to.equal(false);
      const identifiers = [UE1, UE2, UE10].flatMap(u => [u.externalId, u.msisdn, u.ipv4Addr, u.ipv6Addr]).concat(GROUP1);
      for (const id of identifiers)
        expect(
          [...logs, ...mesh.logs].some(l => l.includes(id)),
          id,
        ).to.equal(false);
      // Positive control: the scan does see what it looks for.
      expect(seenBodies.some(t => t.includes(UE1.externalId))).to.equal(true);
      expect(logs.some(l => l.includes('t8 invoke'))).to.equal(true);
    });
  });
});
