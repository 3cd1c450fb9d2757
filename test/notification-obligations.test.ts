/**
 * Notifications honour every obligation authorization can state and never vanish silently,
 * through the real mesh and a real HTTPS receiver with mTLS: the shipped example grant (rate
 * limit, encrypted and coarsened location) gets every report, signed (RFC 9421) and as a JWE; a
 * receiver that refuses or is unreachable leaves a log line, an audit event and a metric, and its
 * undelivered notifications do not use up the subscription's maximumNumberOfReports; the rate
 * limit paces but does not drop. The pacing lanes, the obligation plan and the report ledger are
 * checked on their own too, with a clock of the test's.
 */
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer } from 'node:https';
import type { Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { metrics } from '@opentelemetry/api';
import { MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import { compactDecrypt } from 'jose';
import { notificationOutcomeSubject } from '@aese/events';
import { startEdgeService } from '@aese/edge-service';
import { createMeshClient } from '@aese/grpc-client';
import type { MeshClient } from '@aese/grpc-client';
import type { AuthenticationServiceClient } from '@aese/protos/authentication/v1';
import { AuthorizationServiceClient } from '@aese/protos/authorization/v1';
import { NotificationOutcome, SignedEvent } from '@aese/protos/events/v1';
import { tempDir } from '@aese/testing';
import { loadT8Schemas } from '@aese/t8-openapi';
import { MemoryResourceStore } from '../services/capability-exposure/src/domain/resource-store.ts';
import type { StoredResource } from '../services/capability-exposure/src/domain/resource-store.ts';
import { ReportLedger } from '../services/capability-exposure/src/domain/report-ledger.ts';
import { DELIVERIES_METRIC } from '../services/edge/src/notifications/delivery-report.ts';
import { planObligations } from '../services/edge/src/notifications/delivery.ts';
import { LANES_CLOSED, NotificationLanes } from '../services/edge/src/notifications/pacing.ts';
import { operatorAuthClient } from './support/as-client.ts';
import { startTestMesh } from './support/mesh.ts';
import { receiverTls, verifyNotificationSignature } from './support/notification-receiver.ts';
import type { TestMesh } from './support/mesh.ts';
import { AuditReader, grantAccess, MONITORING_EVENT, onboardT8As, T8_ISSUER, T8Client } from './support/t8-client.ts';
import type { T8As } from './support/t8-client.ts';

const ME = '/3gpp-monitoring-event/v1';
const EXAMPLE_GRANTS = 'services/authorization/policies/example-grants.json';
const FLEET = 'example-fleet-tracker';

interface Entity {
  uid: { type: string; id: string };
  attrs: Record<string, unknown>;
  tags?: Record<string, { targets: string[] }>;
}

interface Received {
  url: string;
  path: string;
  headers: Record<string, string | string[]>;
  body: Buffer;
  peer: string;
  atMs: number;
  status: number;
}

/** Reads the OpenTelemetry metrics the services record, in memory. */
class TestMetricReader extends MetricReader {
  protected override async onForceFlush(): Promise<void> {}
  protected override async onShutdown(): Promise<void> {}
}

/** A fake clock whose sleeps advance it (the pacing lanes never wait for real). */
function fakeClock(): { now: () => number; sleep: (ms: number) => Promise<void> } {
  let t = 1_000;
  return { now: () => t, sleep: async ms => void (t += ms) };
}

const until = async (what: string, cond: () => boolean | Promise<boolean>, ms = 30_000): Promise<void> => {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`not in time: ${what}`);
    await new Promise(r => setTimeout(r, 50));
  }
};

describe('notification obligations: pacing lanes, obligation plan and report ledger', () => {
  it('a rate-limited lane starts one task every 1/perSecond, in order; other lanes are not held up', async () => {
    const clock = fakeClock();
    const lanes = new NotificationLanes({ now: clock.now, sleep: clock.sleep });
    const starts: [string, number][] = [];
    const task = (name: string) => async (): Promise<void> => void starts.push([name, clock.now()]);
    await Promise.all([1, 2, 3, 4].map(i => lanes.run('paced', 4, task(`p${i}`)) ?? Promise.resolve(LANES_CLOSED)));
    expect(starts).to.deep.equal([
      ['p1', 1_000],
      ['p2', 1_250],
      ['p3', 1_500],
      ['p4', 1_750],
    ]);
    // Another AS without a rate limit goes at once; the paced one waits for its next slot.
    starts.length = 0;
    await Promise.all([lanes.run('free', undefined, task('f1')), lanes.run('free', undefined, task('f2'))]);
    expect(starts).to.deep.equal([
      ['f1', 1_750],
      ['f2', 1_750],
    ]);
    await lanes.run('paced', 4, task('p5'));
    expect(starts[2]).to.deep.equal(['p5', 2_000]);
  });

  it('a full lane refuses the next task (the caller reports it as not held); closing skips waiting tasks', async () => {
    const lanes = new NotificationLanes({ maxHeldPerAs: 2 });
    let release!: () => void;
    const gate = new Promise<void>(r => (release = r));
    const first = lanes.run('as', undefined, () => gate.then(() => 'first'));
    const second = lanes.run('as', undefined, async () => 'second');
    expect(lanes.run('as', undefined, async () => 'third')).to.equal(undefined);
    // Positive control: another AS's lane still takes work.
    expect(lanes.run('other', undefined, async () => 'other')).to.not.equal(undefined);
    await new Promise(r => setImmediate(r));
    lanes.close();
    release();
    expect(await first).to.equal('first');
    expect(await second).to.equal(LANES_CLOSED);
  });

  it('every obligation authorization states is planned; an unknown or malformed one fails closed', () => {
    expect(
      planObligations([
        { type: 'encrypt-response', parameters: {} },
        { type: 'rate-limit', parameters: { perSecond: '50' } },
      ]),
    ).to.deep.equal({ ok: true, encrypt: true, perSecond: 50 });
    expect(
      planObligations([
        { type: 'rate-limit', parameters: { perSecond: '0.5' } },
        { type: 'rate-limit', parameters: { perSecond: '20' } },
      ]),
    ).to.deep.equal({ ok: true, encrypt: false, perSecond: 0.5 });
    expect(planObligations([])).to.deep.equal({ ok: true, encrypt: false, perSecond: undefined });
    expect(planObligations([{ type: 'watermark', parameters: {} }])).to.deep.equal({ ok: false, reason: 'UNKNOWN_OBLIGATION' });
    for (const perSecond of [undefined, '', 'fast', '0', '-1', 'Infinity', '1e9']) {
      const parameters: Record<string, string> = perSecond === undefined ? {} : { perSecond };
      expect(planObligations([{ type: 'rate-limit', parameters }]), String(perSecond)).to.deep.equal({ ok: false, reason: 'INVALID_OBLIGATION' });
    }
  });

  it('reports are reserved up to the limit, counted when delivered, freed when dropped; a lost outcome counts as sent after its lifetime', async () => {
    const store = new MemoryResourceStore();
    let now = 0;
    const ledger = new ReportLedger({ store, now: () => now, reservationLifetimeMs: 1_000, limitOf: r => r.resource['maximumNumberOfReports'] as number | undefined });
    const record: StoredResource = {
      api: 'api',
      scsAsId: 'as',
      id: 's1',
      resource: { maximumNumberOfReports: 2 },
      targets: [],
      dataCategories: [],
      createdAtMs: 0,
      updatedAtMs: 0,
      state: {},
    };
    await store.put(record);
    expect(await ledger.reserve(record, 'n1')).to.equal(true);
    expect(await ledger.reserve(record, 'n2')).to.equal(true);
    expect(await ledger.reserve(record, 'n3'), 'no report left while two are in flight').to.equal(false);
    expect(await ledger.settle('api', 'as', 's1', 'n1', false)).to.equal('released');
    expect(await ledger.settle('api', 'as', 's1', 'n1', true), 'a copy of an applied outcome').to.equal('unknown');
    expect(await ledger.reserve(record, 'n3')).to.equal(true);
    expect(await ledger.settle('api', 'as', 's1', 'n2', true)).to.equal('counted');
    expect((await store.get('api', 'as', 's1'))?.state).to.deep.include({ reportsSent: 1 });
    expect(await ledger.settle('api', 'as', 's1', 'n3', true)).to.equal('counted');
    expect(await store.get('api', 'as', 's1'), 'ended at its limit').to.equal(undefined);
    // The outcome of n4 is lost: once its lifetime is over it counts, and the subscription ends.
    await store.put(record);
    expect(await ledger.reserve(record, 'n4')).to.equal(true);
    expect(await ledger.settle('api', 'as', 's1', 'n4-forged', true)).to.equal('unknown');
    expect(await ledger.reserve(record, 'n5')).to.equal(true);
    now = 1_001;
    expect(await ledger.reserve(record, 'n6')).to.equal(false);
    expect(await store.get('api', 'as', 's1')).to.equal(undefined);
  });
});

describe('notification obligations end to end: the example grant, refusing and unreachable receivers, pacing', function () {
  this.timeout(180_000);
  const reader = new TestMetricReader();
  let mesh: TestMesh;
  let operator: MeshClient<AuthenticationServiceClient>;
  let audit: AuditReader;
  let receiver: Server;
  let port: number;
  let downReceiver: Server | undefined;
  let downPort: number;
  let fleet: T8As;
  let fleetClient: T8Client;
  const dir = tempDir('aese-obligations');
  const received: Received[] = [];
  /** Statuses to answer on a path, in order; then 204. */
  const answers = new Map<string, number[]>();
  let receiverOptions: { cert: string; key: string; ca: string; requestCert: true; rejectUnauthorized: true };

  const listener = (req: IncomingMessage, res: ServerResponse): void => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = `https://${String(req.headers.host)}${req.url}`;
      const path = new URL(url).pathname;
      const status = answers.get(path)?.shift() ?? 204;
      const peer = (req.socket as TLSSocket).getPeerCertificate();
      received.push({ url, path, headers: req.headers as Record<string, string>, body: Buffer.concat(chunks), peer: String(peer.subject?.CN ?? ''), atMs: Date.now(), status });
      res.statusCode = status;
      res.end();
    });
  };
  const listen = async (server: Server, at = 0): Promise<number> => {
    await new Promise<void>(r => server.listen(at, '127.0.0.1', r));
    return (server.address() as AddressInfo).port;
  };
  const at = (path: string, status?: number): Received[] => received.filter(r => r.path === path && (status === undefined || r.status === status));
  const subscriptionGone = async (c: T8Client, scsAsId: string, location: string): Promise<boolean> =>
    (await c.call({ method: 'GET', path: `${ME}/${scsAsId}/subscriptions/${location.split('/').pop()!}` })).reply.status === 404;
  const delivered = async (api: string, outcome: string, reason?: string): Promise<number> => {
    const { resourceMetrics } = await reader.collect();
    let n = 0;
    for (const scope of resourceMetrics.scopeMetrics) {
      for (const m of scope.metrics) {
        if (m.descriptor.name !== DELIVERIES_METRIC) continue;
        for (const p of m.dataPoints) {
          const a = p.attributes;
          if (a['api'] === api && a['outcome'] === outcome && (reason === undefined || a['reason'] === reason)) n += p.value as number;
        }
      }
    }
    return n;
  };
  const subscribe = async (c: T8Client, scsAsId: string, who: Record<string, string>, path: string, reports: number, destinationPort = port): Promise<string> => {
    const body = { ...who, notificationDestination: `https://127.0.0.1:${destinationPort}${path}`, monitoringType: 'LOCATION_REPORTING', maximumNumberOfReports: reports };
    const { reply } = await c.call({ method: 'POST', path: `${ME}/${scsAsId}/subscriptions`, body });
    expect(reply.status, reply.text).to.equal(201);
    return String(reply.headers['location']);
  };
  const fleetTarget = (): string => {
    const grants = JSON.parse(readFileSync(EXAMPLE_GRANTS, 'utf8')) as Entity[];
    const fleetGrant = grants.find(e => e.uid.id === FLEET)!.tags![MONITORING_EVENT];
    return fleetGrant.targets.find(t => t.startsWith('externalId:'))!.slice('externalId:'.length);
  };

  before(async function () {
    this.timeout(120_000);
    expect(metrics.setGlobalMeterProvider(new MeterProvider({ readers: [reader] })), 'the test owns the global meter provider').to.equal(true);
    const tls = await receiverTls(dir.path);
    mesh = await startTestMesh({
      edge: startEdgeService,
      extraEnv: {
        AESE_ISSUER: T8_ISSUER,
        SIM_TICK_MS: '100',
        NOTIFICATION_DESTINATION_ALLOWLIST: '127.0.0.1/32',
        NOTIFICATION_DESTINATION_PORTS: '1024-65535',
        NOTIFICATION_CA_FILE: tls.caFile,
        // An unreachable receiver is given up after two attempts (half a second apart).
        NOTIFICATION_MAX_ATTEMPTS: '2',
      },
    });
    receiverOptions = { cert: tls.certPem, key: tls.keyPem, ca: readFileSync(mesh.layout.t8Ca.cert, 'utf8'), requestCert: true, rejectUnauthorized: true };
    receiver = createServer(receiverOptions, listener);
    port = await listen(receiver);
    // A port that answers nothing: a receiver started and stopped again.
    const probe = createServer(receiverOptions, listener);
    downPort = await listen(probe);
    await new Promise(r => probe.close(r));
    operator = operatorAuthClient(mesh);
    audit = await AuditReader.open(mesh);
    fleet = await onboardT8As(mesh, operator, FLEET, { scopes: [MONITORING_EVENT] });
    fleetClient = T8Client.forMesh(mesh, fleet);
  });
  after(async () => {
    await fleetClient?.close();
    await audit?.close();
    operator?.close();
    receiver?.close();
    downReceiver?.close();
    await mesh?.stop();
    metrics.disable();
    dir.remove();
  });

  it('the policy in force is the shipped example grant, as version 1 of a fresh store', async () => {
    const authz = createMeshClient(AuthorizationServiceClient, { address: mesh.env['AUTHORIZATION_ADDR'], tls: mesh.tls('operator'), serverId: mesh.id('authorization') });
    try {
      const current = await authz.getPolicies({});
      expect(current.version).to.equal(1);
      expect(JSON.parse(current.entitiesJson)).to.deep.equal(JSON.parse(readFileSync(EXAMPLE_GRANTS, 'utf8')));
      const fleetEntity = (JSON.parse(current.entitiesJson) as Entity[]).find(e => e.uid.id === FLEET)!;
      expect(fleetEntity.attrs['rateLimitPerSecond'], 'the grant carries a rate limit').to.be.a('number');
    } finally {
      authz.close();
    }
  });

  it('with the example grant (rate limit, encrypted location) the AS gets all N reports, each signed and a JWE it decrypts; then the subscription ends', async () => {
    const N = 3;
    const path = '/fleet/all';
    const ue = fleetTarget();
    const location = await subscribe(fleetClient, FLEET, { externalId: ue }, path, N);
    await until('the subscription to end', () => subscriptionGone(fleetClient, FLEET, location));
    const got = at(path);
    expect(got, 'exactly N reports, none dropped, none beyond the limit').to.have.length(N);
    const schemas = await loadT8Schemas();
    const valid = schemas.validator('monitoring-event', 'MonitoringNotification', 'response');
    for (const r of got) {
      expect(r.peer).to.match(/^notifications\./);
      expect(await verifyNotificationSignature(fleetClient, r), 'notification signature (RFC 9421)').to.equal(true);
      expect(await verifyNotificationSignature(fleetClient, { ...r, url: `${r.url}?tampered` }), 'a moved copy does not verify').to.equal(false);
      expect(r.headers['content-type']).to.equal('application/jose');
      expect(r.body.toString()).not.to.include(ue);
      const { plaintext } = await compactDecrypt(r.body.toString(), fleet.decryption!.privateKey);
      const json = JSON.parse(Buffer.from(plaintext).toString()) as {
        subscription: string;
        monitoringEventReports: { externalId: string; locationInfo: Record<string, unknown> }[];
      };
      expect(valid(json), JSON.stringify(valid.violations())).to.equal(true);
      expect(json.subscription).to.equal(location);
      expect(json.monitoringEventReports[0].externalId).to.equal(ue);
      // Coarsened to the cell by capability exposure: no geographic point.
      expect(json.monitoringEventReports[0].locationInfo).to.have.property('cellId');
      expect(json.monitoringEventReports[0].locationInfo).not.to.have.property('geographicArea');
    }
    expect(await delivered(MONITORING_EVENT, 'delivered')).to.be.at.least(N);
    expect(await delivered(MONITORING_EVENT, 'dropped', 'UNKNOWN_OBLIGATION')).to.equal(0);
    expect((await audit.all()).filter(e => e.action === 'notification.deliver' && e.actor === FLEET)).to.deep.equal([]);
  });

  it('a receiver that answers 4xx: each refused notification is logged, audited and counted as dropped, and uses up no report', async () => {
    const N = 2;
    const path = '/fleet/refusing';
    answers.set(path, [404, 404]);
    const droppedBefore = await delivered(MONITORING_EVENT, 'dropped', 'HTTP_404');
    const location = await subscribe(fleetClient, FLEET, { externalId: fleetTarget() }, path, N);
    await until('the subscription to end', () => subscriptionGone(fleetClient, FLEET, location));
    expect(at(path, 404), 'refused twice').to.have.length(2);
    expect(at(path, 204), 'and still every report arrived').to.have.length(N);
    const drops = await audit.waitFor(e => e.action === 'notification.deliver' && e.actor === FLEET && e.reason === 'HTTP_404', 2);
    expect(drops).to.have.length(2);
    expect(await delivered(MONITORING_EVENT, 'dropped', 'HTTP_404')).to.equal(droppedBefore + 2);
    const lines = mesh.logs.filter(l => l.includes('"notification not delivered"') && l.includes('HTTP_404'));
    expect(lines).to.have.length(2);
    for (const l of [...lines, ...drops.map(d => JSON.stringify(d))]) {
      expect(l).not.to.include(fleetTarget());
      expect(l).not.to.include('monitoringEventReports');
      expect(l).not.to.include(path);
    }
  });

  it('an unreachable receiver: the notification is given up, logged and audited, the subscription keeps its reports; a later report arrives when the receiver is back', async () => {
    const N = 1;
    const path = '/fleet/unreachable';
    const location = await subscribe(fleetClient, FLEET, { externalId: fleetTarget() }, path, N + 1, downPort);
    const gaveUp = await audit.waitFor(e => e.action === 'notification.deliver' && e.actor === FLEET && e.reason === 'NETWORK_ERROR', 1, 30_000);
    expect(gaveUp.length).to.be.at.least(1);
    expect(mesh.logs.some(l => l.includes('"notification not delivered"') && l.includes('NETWORK_ERROR'))).to.equal(true);
    expect(await delivered(MONITORING_EVENT, 'dropped', 'NETWORK_ERROR')).to.be.at.least(1);
    // The undelivered notifications used up nothing: the subscription is still there.
    expect(await subscriptionGone(fleetClient, FLEET, location)).to.equal(false);
    downReceiver = createServer(receiverOptions, listener);
    await listen(downReceiver, downPort);
    await until('the subscription to end', () => subscriptionGone(fleetClient, FLEET, location));
    expect(at(path, 204)).to.have.length(N + 1);
  });

  it('the rate limit paces notifications to perSecond and drops none', async () => {
    const scsAsId = 'paced-tracker';
    const perSecond = 4;
    const group = 'group1@scef.test';
    const paced = await onboardT8As(mesh, operator, scsAsId, { scopes: [MONITORING_EVENT], encryption: false });
    await grantAccess(mesh, {
      [scsAsId]: {
        rateLimitPerSecond: perSecond,
        apis: {
          [MONITORING_EVENT]: {
            operations: ['create', 'read', 'delete', 'notify'],
            categories: ['location'],
            targets: [`externalGroupId:${group}`],
            anyTarget: false,
            locationGranularity: 'cell',
          },
        },
      },
    });
    const c = T8Client.forMesh(mesh, paced);
    try {
      const N = 6;
      const path = '/paced/group';
      // A group moves several UEs per network step: a burst of notifications for one AS.
      const location = await subscribe(c, scsAsId, { externalGroupId: group }, path, N);
      await until('the subscription to end', () => subscriptionGone(c, scsAsId, location));
      const got = at(path);
      expect(got, 'every report, none dropped').to.have.length(N);
      expect((await audit.all()).filter(e => e.action === 'notification.deliver' && e.actor === scsAsId)).to.deep.equal([]);
      // Each POST starts 1/perSecond after the previous one and after it was answered, so the
      // first and last arrivals lie more than N-2 intervals apart however fast the network is;
      // unpaced, the burst would arrive within a few milliseconds.
      expect(got[N - 1].atMs - got[0].atMs).to.be.above(((N - 2) * 1000) / perSecond);
    } finally {
      await c.close();
    }
  });

  it('an outcome the edge did not sign changes no count and is audited', async () => {
    const admin = await mesh.natsConnect('nats-admin');
    try {
      const outcome = NotificationOutcome.encode({
        notificationId: 'forged',
        scsAsId: FLEET,
        api: MONITORING_EVENT,
        subscriptionId: 'x',
        outcome: 'dropped',
        reason: 'HTTP_404',
        attempts: 1,
        decidedAtMs: Date.now(),
      }).finish();
      const forged = SignedEvent.encode({
        payload: Buffer.from(outcome),
        type: 'aese.events.v1.NotificationOutcome',
        version: Date.now(),
        kid: 'nobody',
        signature: Buffer.alloc(64, 1),
        traceparent: '',
        prevPublishedAtMs: 0,
      }).finish();
      await admin.jetstream().publish(notificationOutcomeSubject(FLEET), forged);
      const refused = await audit.waitFor(e => e.service === 'capability-exposure' && e.action === 'notification.outcome' && e.reason === 'BAD_SIGNATURE', 1, 10_000);
      expect(refused).to.have.length(1);
      // Positive control: the edge's own outcomes were applied all along (no refusal among them).
      expect((await audit.all()).filter(e => e.action === 'notification.outcome')).to.have.length(1);
    } finally {
      await admin.close();
    }
  });
});
