import { expect } from 'chai';
import type { NatsConnection } from 'nats';
import { readAuditTrail } from '@aese/events';
import type { AuditEvent, SignedRecord } from '@aese/events';
import type { AeseError } from '@aese/errors';
import { createMeshClient } from '@aese/grpc-client';
import { createMeshHealthClient } from '@aese/grpc-client/health';
import type { MeshClient } from '@aese/grpc-client';
import { KV_BUCKETS } from '@aese/nats';
import { AuthenticationServiceClient } from '@aese/protos/authentication/v1';
import { AuthorizationServiceClient } from '@aese/protos/authorization/v1';
import type { MeshServiceName } from '@aese/runtime';
import { simulatedUeIdentifiers } from '../services/capability-exposure/src/network/simulated-core.ts';
import { startCapabilityExposureService } from '../services/capability-exposure/src/server.ts';
import type { RunningCapabilityExposure } from '../services/capability-exposure/src/server.ts';
import { AS_DESTINATION, captureLogger, edgeClient, startInstance, t8, TestPolicy, testResolver } from '../services/capability-exposure/test/support.ts';
import { startTestMesh } from './support/mesh.ts';
import type { TestMesh } from './support/mesh.ts';
import { onboardAs } from './support/onboarding.ts';
import { eventuallyValue } from '@aese/testing';

const ACTIVE = 1;
const SUSPENDED = 2;
const INTEGRITY_LINE = /failed its integrity check/;

/** Polls until `probe` returns a value (not undefined); bounded, so a broken service fails the test. */
function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  return eventuallyValue(probe, timeoutMs, what);
}

/** The health status of a mesh service at an address ('UNREACHABLE' when it does not answer). */
async function health(mesh: TestMesh, service: MeshServiceName, address: string): Promise<string> {
  const client = createMeshHealthClient({ address, tls: mesh.tls('edge'), serverId: mesh.id(service) });
  try {
    return await client.check();
  } catch {
    return 'UNREACHABLE';
  } finally {
    client.close();
  }
}

const healthBecomes = (mesh: TestMesh, service: MeshServiceName, address: () => string, status: string): Promise<string> =>
  until(`${service} ${status}`, async () => ((await health(mesh, service, address())) === status ? status : undefined));

/** The integrity lines a service logged for a bucket. */
const integrityLines = (mesh: TestMesh, bucket: string): string[] => mesh.logs.filter(l => INTEGRITY_LINE.test(l) && l.includes(bucket));

async function auditWith(nc: NatsConnection, action: string): Promise<AuditEvent> {
  return until(`an audit event ${action}`, async () => (await readAuditTrail(nc)).find(e => e.action === action));
}

/** Restarts crypto and authentication; authentication is waited for only until it listens. */
async function restartAuthentication(mesh: TestMesh): Promise<void> {
  await mesh.stopServices();
  await mesh.startService('crypto');
  await mesh.startService('authentication', { waitReady: false });
}

describe('signed control-plane KV buckets through a running mesh', function () {
  this.timeout(180_000);

  describe('AS registry', () => {
    let mesh: TestMesh;
    let edge: MeshClient<AuthenticationServiceClient>;
    let operator: MeshClient<AuthenticationServiceClient>;
    const authAddress = (): string => mesh.env['AUTHENTICATION_ADDR'];
    const clients = (): void => {
      edge?.close();
      operator?.close();
      const opts = (identity: 'edge' | 'operator') => ({ address: authAddress(), tls: mesh.tls(identity), serverId: mesh.id('authentication') });
      edge = createMeshClient(AuthenticationServiceClient, opts('edge'));
      operator = createMeshClient(AuthenticationServiceClient, opts('operator'));
    };
    const resolve = (der: Buffer): Promise<number | string> =>
      edge.resolveClient({ certificateDer: der }).then(
        r => r.applicationServer!.status,
        (e: AeseError) => e.code,
      );

    beforeEach(async () => {
      mesh = await startTestMesh();
      clients();
    });
    afterEach(async () => {
      edge?.close();
      operator?.close();
      await mesh?.stop();
    });

    it('an older, validly signed entry re-published to undo a suspension is refused: NOT_SERVING, one line, audited, never the older state', async () => {
      const victim = await onboardAs(mesh, 'victim', ['3gpp-monitoring-event']);
      await operator.suspendApplicationServer({ scsAsId: 'victim' });
      // Positive control: a restart keeps the suspension and serves.
      await restartAuthentication(mesh);
      clients();
      expect(await healthBecomes(mesh, 'authentication', authAddress, 'SERVING')).to.equal('SERVING');
      expect(await resolve(victim.der)).to.equal(SUSPENDED);
      expect(integrityLines(mesh, KV_BUCKETS.applicationServers)).to.have.length(0);

      const nc = await mesh.natsConnect('authentication');
      try {
        const kv = await nc.jetstream().views.kv(KV_BUCKETS.applicationServers);
        const older: Uint8Array[] = [];
        for await (const e of await kv.history({ key: 'victim' })) if (e.operation === 'PUT') older.push(e.value);
        expect(older.length).to.be.greaterThan(1);
        const active = JSON.parse(Buffer.from(older[0]).toString()) as SignedRecord;
        expect((JSON.parse(active.payloadJson) as { value: { status: string } }).value.status).to.equal('active');
        await kv.put('victim', older[0]);

        expect(await healthBecomes(mesh, 'authentication', authAddress, 'NOT_SERVING')).to.equal('NOT_SERVING');
        expect(await resolve(victim.der)).to.equal('UNAVAILABLE');
        const lines = integrityLines(mesh, KV_BUCKETS.applicationServers);
        expect(lines).to.have.length(1);
        expect(lines[0]).to.match(/KV bucket aese_application_servers key victim failed its integrity check \(ROLLED_BACK\)/);
        const operatorNc = await mesh.natsConnect('operator');
        try {
          expect(await auditWith(operatorNc, 'registry.integrity')).to.deep.include({ decision: 'deny', reason: 'ROLLED_BACK' });
        } finally {
          await operatorNc.close();
        }

        // After a restart the older entry is still refused; the service listens and says NOT_SERVING.
        await restartAuthentication(mesh);
        clients();
        expect(await healthBecomes(mesh, 'authentication', authAddress, 'NOT_SERVING')).to.equal('NOT_SERVING');
        await until('the integrity line after the restart', async () => (integrityLines(mesh, KV_BUCKETS.applicationServers).length === 2 ? true : undefined));
        expect(await resolve(victim.der)).to.equal('UNAVAILABLE');
      } finally {
        await nc.close();
      }
    });

    it("deleting one AS's newest registry message: authentication listens after a restart, NOT_SERVING, naming the bucket; no hang", async () => {
      const victim = await onboardAs(mesh, 'victim', ['3gpp-monitoring-event']);
      const other = await onboardAs(mesh, 'other', ['3gpp-monitoring-event']);
      await operator.suspendApplicationServer({ scsAsId: 'victim' });
      // Positive control: a plain restart serves, suspension kept, the other AS active.
      await restartAuthentication(mesh);
      clients();
      expect(await healthBecomes(mesh, 'authentication', authAddress, 'SERVING')).to.equal('SERVING');
      expect(await resolve(victim.der)).to.equal(SUSPENDED);
      expect(await resolve(other.der)).to.equal(ACTIVE);

      const insider = await mesh.natsConnect('authentication');
      const admin = await mesh.natsConnect('nats-admin');
      try {
        const kv = await insider.jetstream().views.kv(KV_BUCKETS.applicationServers);
        const newest = (await kv.get('victim'))!.revision;
        const jsm = await admin.jetstreamManager();
        expect(await jsm.streams.deleteMessage(`KV_${KV_BUCKETS.applicationServers}`, newest)).to.equal(true);
        // The older (ACTIVE) entry is still in the stream's history.
        const left: number[] = [];
        for await (const e of await kv.history({ key: 'victim' })) left.push(e.revision);
        expect(left).to.not.include(newest).and.to.not.be.empty;
      } finally {
        await admin.close();
        await insider.close();
      }
      await restartAuthentication(mesh);
      clients();
      expect(await healthBecomes(mesh, 'authentication', authAddress, 'NOT_SERVING')).to.equal('NOT_SERVING');
      const lines = await until('the integrity line', async () => {
        const l = integrityLines(mesh, KV_BUCKETS.applicationServers);
        return l.length > 0 ? l : undefined;
      });
      expect(lines).to.have.length(1);
      expect(lines[0]).to.match(/aese_application_servers.*\(MISSING\)/);
      // Never the older state: the victim is not ACTIVE again, and nobody is served.
      expect(await resolve(victim.der)).to.equal('UNAVAILABLE');
      expect(await resolve(other.der)).to.equal('UNAVAILABLE');
    });

    it("deleting an AS's newest entry under a later write of another AS is found from the signed bucket head", async () => {
      const victim = await onboardAs(mesh, 'victim', ['3gpp-monitoring-event']);
      await operator.suspendApplicationServer({ scsAsId: 'victim' });
      const other = await onboardAs(mesh, 'other', ['3gpp-monitoring-event']);
      const insider = await mesh.natsConnect('authentication');
      const admin = await mesh.natsConnect('nats-admin');
      try {
        const kv = await insider.jetstream().views.kv(KV_BUCKETS.applicationServers);
        const suspended = (await kv.get('victim'))!.revision;
        // Positive control: the suspension is not the stream's newest message, so no tail gap is left.
        expect((await kv.status()).streamInfo.state.last_seq).to.be.greaterThan(suspended);
        expect(await (await admin.jetstreamManager()).streams.deleteMessage(`KV_${KV_BUCKETS.applicationServers}`, suspended)).to.equal(true);
      } finally {
        await admin.close();
        await insider.close();
      }
      await restartAuthentication(mesh);
      clients();
      expect(await healthBecomes(mesh, 'authentication', authAddress, 'NOT_SERVING')).to.equal('NOT_SERVING');
      const lines = await until('the integrity line', async () => {
        const l = integrityLines(mesh, KV_BUCKETS.applicationServers);
        return l.length > 0 ? l : undefined;
      });
      expect(lines).to.have.length(1);
      expect(lines[0]).to.match(/aese_application_servers.*\(MISSING\).*do not match the head signed by the newest record/);
      expect(await resolve(victim.der)).to.equal('UNAVAILABLE');
      expect(await resolve(other.der)).to.equal('UNAVAILABLE');
    });

    it('a certificate-index entry written by an insider (the attacker certificate bound to the victim) is refused', async () => {
      await onboardAs(mesh, 'victim', ['3gpp-monitoring-event']);
      const attacker = await onboardAs(mesh, 'attacker', ['3gpp-monitoring-event']);
      // Positive control: the attacker's certificate resolves to the attacker.
      expect((await edge.resolveClient({ certificateDer: attacker.der })).applicationServer!.scsAsId).to.equal('attacker');
      const nc = await mesh.natsConnect('authentication');
      try {
        const kv = await nc.jetstream().views.kv(KV_BUCKETS.certificateIndex);
        const genuine = JSON.parse(Buffer.from((await kv.get(attacker.thumbprint))!.value).toString()) as SignedRecord;
        // The attacker's own signed index record, its payload pointed at the victim.
        const payload = JSON.parse(genuine.payloadJson) as { value: string; head: string };
        await kv.put(attacker.thumbprint, Buffer.from(JSON.stringify({ ...genuine, payloadJson: JSON.stringify({ ...payload, value: 'victim' }) })));
      } finally {
        await nc.close();
      }
      expect(await healthBecomes(mesh, 'authentication', authAddress, 'NOT_SERVING')).to.equal('NOT_SERVING');
      const lines = integrityLines(mesh, KV_BUCKETS.certificateIndex);
      expect(lines).to.have.length(1);
      expect(lines[0]).to.match(/aese_certificate_index key [A-Za-z0-9_-]+ failed its integrity check \(UNSIGNED\)/);
      const answer = await edge.resolveClient({ certificateDer: attacker.der }).then(
        r => r.applicationServer!.scsAsId,
        (e: AeseError) => e.code,
      );
      expect(answer).to.equal('UNAVAILABLE');
    });
  });

  describe('policy versions', () => {
    let mesh: TestMesh;
    after(async () => mesh?.stop());

    it('deleting the newest policy version: after a restart authorization is NOT_SERVING, never the older version', async () => {
      mesh = await startTestMesh();
      const address = (): string => mesh.env['AUTHORIZATION_ADDR'];
      const client = (identity: 'operator' | 'capability-exposure') =>
        createMeshClient(AuthorizationServiceClient, { address: address(), tls: mesh.tls(identity), serverId: mesh.id('authorization') });
      const restart = async (waitReady: boolean): Promise<void> => {
        await mesh.stopServices();
        await mesh.startService('crypto');
        await mesh.startService('authorization', { waitReady });
      };
      let operator = client('operator');
      const v1 = await operator.getPolicies({});
      const v2 = await operator.applyPolicies({ policies: v1.policies, entitiesJson: v1.entitiesJson, expectedVersion: v1.version });
      expect(v2.version).to.be.greaterThan(v1.version);
      operator.close();
      // Positive control: a restart keeps the newest version in force.
      await restart(true);
      operator = client('operator');
      expect((await operator.getPolicies({})).version).to.equal(v2.version);
      operator.close();

      const insider = await mesh.natsConnect('authorization');
      const admin = await mesh.natsConnect('nats-admin');
      try {
        const kv = await insider.jetstream().views.kv(KV_BUCKETS.policies);
        const newest = (await kv.get('current'))!.revision;
        expect(await (await admin.jetstreamManager()).streams.deleteMessage(`KV_${KV_BUCKETS.policies}`, newest)).to.equal(true);
      } finally {
        await admin.close();
        await insider.close();
      }
      await restart(false);
      expect(await healthBecomes(mesh, 'authorization', address, 'NOT_SERVING')).to.equal('NOT_SERVING');
      const lines = await until('the integrity line', async () => {
        const l = integrityLines(mesh, KV_BUCKETS.policies);
        return l.length > 0 ? l : undefined;
      });
      expect(lines).to.have.length(1);
      expect(lines[0]).to.match(/aese_policies key current failed its integrity check \(MISSING\)/);
      const decider = client('capability-exposure');
      operator = client('operator');
      try {
        const code = await decider.decide({ scsAsId: 'as1', api: '3gpp-monitoring-event', operation: 'read', dataCategories: ['location'], targets: [], pathScsAsId: 'as1' }).then(
          r => `version ${r.policyVersion}`,
          (e: AeseError) => e.code,
        );
        expect(code).to.equal('UNAVAILABLE');
        expect((await operator.getPolicies({})).version).to.not.equal(v1.version);
      } finally {
        decider.close();
        operator.close();
      }
    });
  });

  describe('T8 subscriptions while crypto is late', () => {
    let mesh: TestMesh;
    const running: RunningCapabilityExposure[] = [];
    const policy = new TestPolicy();
    const UE1 = simulatedUeIdentifiers(1);
    after(async () => {
      for (const r of running) await r.stop();
      await mesh?.stop();
    });

    it('a replica started before crypto is NOT_SERVING, waits quietly, and serves the full bucket once crypto is up', async () => {
      mesh = await startTestMesh({ extraEnv: { SIM_TICK_MS: '0' } });
      policy.grants.set('victim', { targets: [`externalId:${UE1.externalId}`], categories: ['location'] });
      const logs: string[] = [];
      const first = await startInstance(mesh, logs, policy.decide);
      running.push(first);
      const client = edgeClient(mesh, first.port);
      const created = await t8(client, {
        scsAsId: 'victim',
        method: 'POST',
        path: '/3gpp-monitoring-event/v1/victim/subscriptions',
        body: { externalId: UE1.externalId, notificationDestination: AS_DESTINATION, monitoringType: 'LOCATION_REPORTING', maximumNumberOfReports: 5 },
      });
      client.close();
      expect(created.status, created.text).to.equal(201);
      await first.stop();
      running.pop();
      await mesh.stopServices();

      const lateLogs: string[] = [];
      // Started by hand: startInstance waits for SERVING, which needs crypto.
      const late = await startCapabilityExposureService({ ...mesh.env, PORT: '0', SIM_TICK_MS: '0' }, captureLogger(lateLogs), {
        decide: policy.decide,
        resolveHost: testResolver,
      });
      running.push(late);
      const address = (): string => `localhost:${late.port}`;
      await until('the replica to wait for the keys', async () => (lateLogs.some(l => l.includes('waiting for the event-signing keys')) ? true : undefined));
      expect(await health(mesh, 'capability-exposure', address())).to.equal('NOT_SERVING');

      await mesh.startService('crypto');
      expect(await healthBecomes(mesh, 'capability-exposure', address, 'SERVING')).to.equal('SERVING');
      const lateClient = edgeClient(mesh, late.port);
      try {
        const list = await t8(lateClient, { scsAsId: 'victim', method: 'GET', path: '/3gpp-monitoring-event/v1/victim/subscriptions' });
        expect(list.status).to.equal(200);
        expect((list.json as { self: string }[]).map(x => x.self)).to.deep.equal([created.headers['location']]);
      } finally {
        lateClient.close();
      }
      // No false alarm: no integrity line, no audit event for the bucket.
      expect([...lateLogs, ...mesh.logs].filter(l => INTEGRITY_LINE.test(l))).to.deep.equal([]);
      const operatorNc = await mesh.natsConnect('operator');
      try {
        expect((await readAuditTrail(operatorNc)).filter(e => e.action === 'subscriptions.integrity')).to.deep.equal([]);
      } finally {
        await operatorNc.close();
      }
    });
  });

  describe('T8 subscriptions', () => {
    let mesh: TestMesh;
    let svc: RunningCapabilityExposure;
    const policy = new TestPolicy();
    const logs: string[] = [];
    const UE1 = simulatedUeIdentifiers(1);
    const ATTACKER_DESTINATION = 'https://attacker.example.com/notify';

    before(async () => {
      mesh = await startTestMesh({ extraEnv: { SIM_TICK_MS: '0' } });
      policy.grants.set('victim', { targets: [`externalId:${UE1.externalId}`], categories: ['location'] });
      svc = await startInstance(mesh, logs, policy.decide);
    });
    after(async () => {
      await svc?.stop();
      await mesh?.stop();
    });

    it("a copy of another AS's subscription with another destination is refused: no report reaches the attacker", async () => {
      const address = (): string => `localhost:${svc.port}`;
      const client = edgeClient(mesh, svc.port);
      // Reports as published for each AS (the raw messages: who they go to is the subject).
      const watcherNc = await mesh.natsConnect('nats-admin');
      const published: Record<string, number> = { victim: 0, attacker: 0 };
      const sub = watcherNc.subscribe('aese.notifications.v1.*');
      void (async () => {
        for await (const m of sub) {
          const who = m.subject.split('.').pop()!;
          published[who] = (published[who] ?? 0) + 1;
        }
      })();
      const nc = await mesh.natsConnect('capability-exposure');
      try {
        const a = await t8(client, {
          scsAsId: 'victim',
          method: 'POST',
          path: '/3gpp-monitoring-event/v1/victim/subscriptions',
          body: { externalId: UE1.externalId, notificationDestination: AS_DESTINATION, monitoringType: 'LOCATION_REPORTING', maximumNumberOfReports: 1000 },
        });
        expect(a.status, a.text).to.equal(201);
        const id = a.headers['location'].split('/').pop()!;
        // Positive control: the victim's reports are published while the bucket is intact.
        expect(await healthBecomes(mesh, 'capability-exposure', address, 'SERVING')).to.equal('SERVING');
        await until('a report for the victim', async () => {
          await svc.simulator!.advance();
          await watcherNc.flush();
          return published['victim'] > 0 ? true : undefined;
        });

        const kv = await nc.jetstream().views.kv(KV_BUCKETS.subscriptions);
        const genuine = JSON.parse(Buffer.from((await kv.get(`3gpp-monitoring-event.victim.${id}`))!.value).toString()) as SignedRecord;
        const payload = JSON.parse(genuine.payloadJson) as { value: Record<string, unknown> & { resource: Record<string, unknown> }; head: string };
        const copy = {
          ...payload,
          value: { ...payload.value, scsAsId: 'attacker', resource: { ...payload.value.resource, notificationDestination: ATTACKER_DESTINATION } },
        };
        await kv.put(`3gpp-monitoring-event.attacker.${id}`, Buffer.from(JSON.stringify({ ...genuine, payloadJson: JSON.stringify(copy) })));

        expect(await healthBecomes(mesh, 'capability-exposure', address, 'NOT_SERVING')).to.equal('NOT_SERVING');
        const before = published['attacker'];
        for (let i = 0; i < 20; i++) await svc.simulator!.advance();
        await watcherNc.flush();
        expect(published['attacker']).to.equal(before).and.to.equal(0);
        // One line per instance following the bucket (the mesh's and this test's), naming the key, no UE identifier.
        const lines = [...logs, ...mesh.logs].filter(l => INTEGRITY_LINE.test(l));
        expect(lines.length).to.be.within(1, 2);
        for (const l of lines) {
          expect(l).to.match(new RegExp(`aese_subscriptions key 3gpp-monitoring-event\\.attacker\\.${id} failed its integrity check \\(UNSIGNED\\)`));
          expect(l).to.not.include(UE1.externalId);
        }
        // The edge is refused too (UNAVAILABLE), rather than answered from a store it cannot trust.
        const list = await t8(client, { scsAsId: 'victim', method: 'GET', path: '/3gpp-monitoring-event/v1/victim/subscriptions' });
        expect(list.status).to.be.oneOf([500, 503]);
      } finally {
        client.close();
        await nc.close();
        await watcherNc.close();
      }
    });
  });
});
