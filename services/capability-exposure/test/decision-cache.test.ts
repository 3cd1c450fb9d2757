import { expect } from 'chai';
import { connect } from 'nats';
import { createLogger } from '@aese/logger';
import { openKv } from '@aese/nats';
import { startNatsServer } from '@aese/testing';
import type { NatsServerProcess } from '@aese/testing';
import { startTestMesh } from '../../../test/support/mesh.ts';
import type { TestMesh } from '../../../test/support/mesh.ts';
import { grantAccess, MONITORING_EVENT } from '../../../test/support/t8-client.ts';
import type { Decision, DecisionRequest } from '../src/domain/decision.ts';
import { DecisionCache } from '../src/domain/decision-cache.ts';
import { KvPolicyVersion, POLICY_BUCKET, POLICY_KEY } from '../src/kv-policy-version.ts';
import { simulatedUeIdentifiers } from '../src/network/simulated-core.ts';
import type { RunningCapabilityExposure } from '../src/server.ts';
import { edgeClient, startInstance, t8 } from './support.ts';

const ME = '/3gpp-monitoring-event/v1';
const UE1 = simulatedUeIdentifiers(1);
const UE2 = simulatedUeIdentifiers(2);

async function waitFor(what: string, probe: () => boolean, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!probe()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise(r => setTimeout(r, 20));
  }
}

describe('capability-exposure decision cache', function () {
  this.timeout(60_000);

  describe('against the real authorization service', () => {
    let mesh: TestMesh;
    let svc: RunningCapabilityExposure;
    let client: ReturnType<typeof edgeClient>;
    const logs: string[] = [];
    const oneTime = (externalId: string) =>
      t8(client, {
        scsAsId: 'as-cache',
        method: 'POST',
        path: `${ME}/as-cache/subscriptions`,
        body: { externalId, notificationDestination: 'https://as1.example.com/notify', monitoringType: 'LOCATION_REPORTING', maximumNumberOfReports: 1 },
      });
    const seenVersion = (v: number) => logs.some(l => l.includes('policy version seen') && l.includes(`"policyVersion":${v}`));

    before(async () => {
      mesh = await startTestMesh({ extraEnv: { SIM_TICK_MS: '0' } });
      svc = await startInstance(mesh, logs, undefined);
      client = edgeClient(mesh, svc.port);
    });
    after(async () => {
      client?.close();
      await svc?.stop();
      await mesh?.stop();
    });

    it('answers a repeated allowed request without a Decide call, asks again for every denial (so each is audited), and never serves a cached allow after a new version denies', async () => {
      const granted = (categories: string[]) => ({
        apis: { [MONITORING_EVENT]: { operations: ['create', 'read'], categories, targets: [`externalId:${UE1.externalId}`], anyTarget: false } },
      });
      const v1 = await grantAccess(mesh, { 'as-cache': granted(['location']) });
      await waitFor(`policy version ${v1} on the watch`, () => seenVersion(v1));
      const start = svc.decisionCacheStats()!;

      expect((await oneTime(UE1.externalId)).status).to.equal(200);
      expect(svc.decisionCacheStats()).to.deep.equal({ asked: start.asked + 1, hits: start.hits });
      expect((await oneTime(UE1.externalId)).status).to.equal(200);
      expect(svc.decisionCacheStats(), 'the second identical request made no Decide call').to.deep.equal({ asked: start.asked + 1, hits: start.hits + 1 });
      // A deny is not cached: each one is decided (and audited) by the authorization service.
      expect((await oneTime(UE2.externalId)).status).to.equal(403);
      expect((await oneTime(UE2.externalId)).status).to.equal(403);
      expect(svc.decisionCacheStats()).to.deep.equal({ asked: start.asked + 3, hits: start.hits + 1 });

      // The operator withdraws the location category: a new version that denies.
      const v2 = await grantAccess(mesh, { 'as-cache': granted(['reachability']) });
      expect(v2).to.be.greaterThan(v1);
      await waitFor(`policy version ${v2} on the watch`, () => seenVersion(v2));
      const denied = await oneTime(UE1.externalId);
      expect(denied.status, 'the cached allow of the old version is not served').to.equal(403);
      expect(svc.decisionCacheStats()!.asked, 'authorization was asked again').to.equal(start.asked + 4);

      // Positive control: granting it back allows again, through a fresh Decide.
      const v3 = await grantAccess(mesh, { 'as-cache': granted(['location']) });
      await waitFor(`policy version ${v3} on the watch`, () => seenVersion(v3));
      expect((await oneTime(UE1.externalId)).status).to.equal(200);
      expect(svc.decisionCacheStats()!.asked).to.equal(start.asked + 5);
    });
  });

  describe('the policy-version watch', () => {
    let nats: NatsServerProcess;
    before(async () => {
      nats = await startNatsServer();
    });
    after(async () => {
      await nats?.dispose();
    });

    it('follows the version key, reports every change, and stops vouching for it once NATS is gone beyond the staleness bound', async () => {
      const writer = await connect({ servers: nats.url });
      const kv = await openKv(writer, POLICY_BUCKET, { history: 4 });
      await kv.put(POLICY_KEY, new TextEncoder().encode(JSON.stringify({ version: 4, payload: '{}' })));
      const reader = await connect({ servers: nats.url, reconnectTimeWait: 100, maxReconnectAttempts: -1 });
      let changes = 0;
      const versions = await KvPolicyVersion.start(reader, () => (changes += 1), createLogger({ service: 'test', level: 'silent' }), 300);
      try {
        expect(versions.current()).to.equal(4);
        const before = changes;
        await kv.put(POLICY_KEY, new TextEncoder().encode(JSON.stringify({ version: 5, payload: '{}' })));
        await waitFor('version 5', () => versions.current() === 5);
        expect(changes).to.be.greaterThan(before);
        await writer.close();
        await nats.stop();
        await new Promise(r => setTimeout(r, 150));
        expect(versions.current(), 'inside the staleness bound the last version still holds').to.equal(5);
        await waitFor('the staleness bound to pass', () => versions.current() === undefined, 3_000);
        await nats.restart();
        await waitFor('the watch to be trusted again', () => versions.current() === 5, 10_000);
      } finally {
        versions.stop();
        await reader.close();
      }
    });
  });

  describe('DecisionCache', () => {
    const req: DecisionRequest = { scsAsId: 'a', api: 'x', operation: 'read', dataCategories: ['location', 'qos'], targets: ['externalId:b', 'externalId:a'], pathScsAsId: 'a' };
    const allow = (policyVersion: number): Decision => ({
      allowed: true,
      obligations: [{ type: 'coarsen-location', parameters: { level: 'cell' } }],
      policyVersion,
      denyCause: '',
    });

    it('keys on the sorted request, serves only under the current version, and steps aside while the version is unknown', async () => {
      let version: number | undefined = 3;
      let answerWith = 3;
      let calls = 0;
      const cache = new DecisionCache(async () => (calls++, allow(answerWith)), { current: () => version }, 10);
      await cache.decide(req);
      expect(await cache.decide({ ...req, dataCategories: ['qos', 'location'], targets: ['externalId:a', 'externalId:b'] })).to.deep.equal(allow(3));
      expect(calls, 'same question in another order').to.equal(1);
      expect(await cache.decide({ ...req, pathScsAsId: 'b' })).to.deep.equal(allow(3));
      expect(calls, 'a different path AS is a different question').to.equal(2);
      version = 4; // the watch moved; the decision point still answers under 3 (it lags)
      await cache.decide(req);
      await cache.decide(req);
      expect(calls, 'a version-3 entry is never served under version 4, nor remembered').to.equal(4);
      answerWith = 4;
      await cache.decide(req);
      await cache.decide(req);
      expect(calls).to.equal(5);
      version = undefined; // the watch is down beyond the staleness bound
      await cache.decide(req);
      await cache.decide(req);
      expect(calls).to.equal(7);
    });

    it('evicts the least recently used entry beyond its bound, and clear() forgets everything', async () => {
      let calls = 0;
      const cache = new DecisionCache(async () => (calls++, allow(1)), { current: () => 1 }, 2);
      const q = (s: string) => ({ ...req, scsAsId: s });
      await cache.decide(q('a'));
      await cache.decide(q('b'));
      await cache.decide(q('a'));
      await cache.decide(q('c')); // evicts b
      expect(calls).to.equal(3);
      await cache.decide(q('a'));
      expect(calls).to.equal(3);
      await cache.decide(q('b'));
      expect(calls).to.equal(4);
      cache.clear();
      expect(cache.size).to.equal(0);
      await cache.decide(q('a'));
      expect(calls).to.equal(5);
    });

    it('does not remember a failure: the next request asks again', async () => {
      let calls = 0;
      const cache = new DecisionCache(
        async () => {
          calls++;
          throw new Error('authorization unreachable');
        },
        { current: () => 1 },
      );
      for (let i = 0; i < 2; i++) await cache.decide(req).catch(() => undefined);
      expect(calls).to.equal(2);
    });
  });
});
