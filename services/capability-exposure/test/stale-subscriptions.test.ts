/**
 * The subscriptions are read from this replica's copy of a signed KV bucket. Cut off from NATS,
 * the copy keeps answering for the staleness bound, then every read and write is refused (503
 * RESOURCES_UNAVAILABLE at the T8 level, nothing executed) until NATS is back and the copy has
 * caught up with what other replicas wrote meanwhile.
 */
import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import { Events, connect } from 'nats';
import type { NatsConnection } from 'nats';
import { JwksEventVerifier } from '@aese/events';
import type { KvTamperFinding } from '@aese/events';
import { ecdsaEventSigner, eventually, startNatsServer, startTcpGate } from '@aese/testing';
import type { NatsServerProcess, TcpGate } from '@aese/testing';
import { loadT8Schemas } from '@aese/t8-openapi';
import type { T8Schemas } from '@aese/t8-openapi';
import type { Decide } from '../src/domain/decision.ts';
import { Invoker } from '../src/domain/invoke.ts';
import type { InvokeOutput } from '../src/domain/invoke.ts';
import { newStoredResource, ResourcesUnavailable } from '../src/domain/resource-store.ts';
import type { StoredResource } from '../src/domain/resource-store.ts';
import { KvResourceStore } from '../src/kv-resource-store.ts';
import { ModuleRegistry } from '../src/modules/registry.ts';
import { simulatedUeIdentifiers, SimulatedCore } from '../src/network/simulated-core.ts';
import { API_ROOT, AS_DESTINATION, builtinModules, captureLogger } from './support.ts';

const API = '3gpp-monitoring-event';
const ME = `/${API}/v1`;
const UE1 = simulatedUeIdentifiers(1);
const STALE_LINE = 'subscriptions unconfirmed beyond the staleness bound';
const CAUGHT_UP_LINE = 'subscriptions caught up with the bucket again';

/** What a refusal for staleness looks like from the store. */
function expectStale(err: unknown): void {
  expect(err).to.be.instanceOf(ResourcesUnavailable);
  expect(err).to.include({ code: 'UNAVAILABLE', message: 'the aese_subscriptions copy is older than the staleness bound' });
}

async function refusal(call: () => Promise<unknown>): Promise<unknown> {
  try {
    await call();
  } catch (err) {
    return err;
  }
  throw new Error('not refused');
}

describe('capability-exposure subscriptions past the staleness bound', function () {
  this.timeout(60_000);
  let nats: NatsServerProcess;
  let gate: TcpGate;
  const connections: NatsConnection[] = [];
  const stores: KvResourceStore[] = [];
  const findings: KvTamperFinding[] = [];
  const owner = ecdsaEventSigner('event-key-1');
  const verifier = new JwksEventVerifier(async () => [owner.jwk]);

  beforeEach(async () => {
    findings.length = 0;
    nats = await startNatsServer();
    gate = await startTcpGate(nats.port);
  });
  afterEach(async () => {
    for (const s of stores.splice(0)) s.close();
    for (const nc of connections.splice(0)) await nc.close();
    await gate?.dispose();
    await nats?.dispose();
  });

  /** A replica's store on a connection of its own (through the gate when asked), loaded. */
  async function replica(boundMs: number, logs: string[], throughGate = false): Promise<{ store: KvResourceStore; nc: NatsConnection }> {
    const nc = await connect({ servers: throughGate ? gate.url : nats.url, reconnectTimeWait: 50, maxReconnectAttempts: -1 });
    connections.push(nc);
    const store = await KvResourceStore.open(nc, { signer: owner.signer, verifier, logger: captureLogger(logs), onTampered: f => void findings.push(f) }, boundMs);
    stores.push(store);
    expect(await store.settled()).to.equal('READY');
    return { store, nc };
  }

  /** Resolves on the connection's next status event of `type`, with when it came. */
  async function next(nc: NatsConnection, type: Events): Promise<number> {
    for await (const s of nc.status()) if (s.type === type) return Date.now();
    throw new Error(`connection closed before ${type}`);
  }

  const subscription = (scsAsId: string, note: string): StoredResource =>
    newStoredResource(API, scsAsId, randomUUID(), { note }, { targets: [`externalId:${UE1.externalId}`], dataCategories: ['location'] }, {}, Date.now());

  describe('KvResourceStore', () => {
    const BOUND_MS = 1_500;

    it('serves within the bound, refuses after it, and serves again only once it holds what another replica wrote meanwhile', async () => {
      const logsA: string[] = [];
      const { store: a, nc: ncA } = await replica(BOUND_MS, logsA, true);
      const { store: b } = await replica(BOUND_MS, []);
      const kept = subscription('as1', 'kept');
      const removed = subscription('as1', 'removed');
      await b.put(kept);
      await b.put(removed);
      await eventually(async () => (await a.list(API, 'as1')).length === 2, 5_000, 'replica A to see both subscriptions');

      // Replica A is cut off; then the server stops for everyone.
      const disconnected = next(ncA, Events.Disconnect);
      gate.shut();
      const cutAt = await disconnected;
      expect((await a.get(API, 'as1', kept.id))?.resource, 'within the bound').to.deep.equal({ note: 'kept' });
      expect(a.all(API).map(r => r.id)).to.have.members([kept.id, removed.id]);
      expect(Date.now() - cutAt, 'those reads were inside the bound').to.be.below(BOUND_MS);
      await nats.stop();

      let refusedAt = 0;
      await eventually(
        async () => {
          try {
            await a.get(API, 'as1', kept.id);
            return false;
          } catch (err) {
            expectStale(err);
            refusedAt = Date.now();
            return true;
          }
        },
        BOUND_MS + 5_000,
        'the read to be refused',
      );
      expect(refusedAt - cutAt, 'not refused before the bound').to.be.at.least(BOUND_MS - 50);
      expectStale(await refusal(() => a.list(API, 'as1')));
      expectStale(await refusal(() => a.put(subscription('as1', 'new'))));
      expectStale(await refusal(() => a.update(API, 'as1', kept.id, r => r)));
      expectStale(await refusal(() => a.delete(API, 'as1', kept.id)));
      // Notification matching is refused too: the feed hands the event back and it is matched after the catch-up.
      expectStale(await refusal(async () => a.all(API)));
      expect(a.fresh).to.equal(false);
      await eventually(() => logsA.some(l => l.includes(STALE_LINE)), 2_000, 'the staleness line');

      // The server is back, but replica A is still cut off while replica B changes both subscriptions.
      await nats.restart();
      await eventually(
        async () =>
          b.delete(API, 'as1', removed.id).then(
            () => true,
            () => false,
          ),
        20_000,
        'replica B to delete once it has caught up itself',
      );
      await b.update(API, 'as1', kept.id, r => (r ? { ...r, resource: { note: 'changed by B' } } : undefined));
      expectStale(await refusal(() => a.get(API, 'as1', kept.id)));

      // Back in touch: every read is refused or already shows B's changes, never the old copy.
      gate.open();
      await eventually(
        async () => {
          try {
            const [k, r] = [await a.get(API, 'as1', kept.id), await a.get(API, 'as1', removed.id)];
            expect(k?.resource, "the first read served has B's change").to.deep.equal({ note: 'changed by B' });
            expect(r, "the first read served has B's deletion").to.equal(undefined);
            return true;
          } catch (err) {
            if (!(err instanceof ResourcesUnavailable)) throw err;
            return false;
          }
        },
        20_000,
        'replica A to serve again',
      );
      expect((await a.list(API, 'as1')).map(r => r.resource)).to.deep.equal([{ note: 'changed by B' }]);
      expect(a.all(API).map(r => r.id)).to.deep.equal([kept.id]);
      expect(logsA.filter(l => l.includes(STALE_LINE))).to.have.length(1);
      await eventually(() => logsA.some(l => l.includes(CAUGHT_UP_LINE)), 2_000, 'the caught-up line');
      expect(a.ready).to.equal(true);
      expect(findings).to.deep.equal([]);
    });
  });

  describe('Invoke', () => {
    const BOUND_MS = 500;
    let schemas: T8Schemas;
    before(async () => {
      schemas = await loadT8Schemas();
    });

    it('a GET while the copy is stale is a 503 RESOURCES_UNAVAILABLE: no handler ran, nothing was decided; served again once NATS is back', async () => {
      const { store, nc } = await replica(BOUND_MS, []);
      const network = new SimulatedCore({ seed: 1, ueCount: 10, groupCount: 1, tickMs: 0 });
      const handled: string[] = [];
      const errors: string[] = [];
      let decisions = 0;
      const decide: Decide = async () => (decisions++, { allowed: true, obligations: [], policyVersion: 1, denyCause: '' });
      const registry = new ModuleRegistry();
      for (const m of builtinModules({ network, store, schemas, decide })) {
        registry.register({ ...m, routes: m.routes.map(r => ({ ...r, handler: req => (handled.push(`${r.method} ${r.path}`), r.handler(req)) })) });
      }
      const invoker = new Invoker({ registry, schemas, store, decide, onError: (_err, where) => errors.push(where) });
      const call = (method: string, path: string, body?: unknown): Promise<InvokeOutput> =>
        invoker.invoke({
          scsAsId: 'as1',
          method,
          path: `${ME}/as1/${path}`,
          contentType: body === undefined ? '' : 'application/json',
          body: Buffer.from(body === undefined ? '' : JSON.stringify(body)),
          scopes: [API],
          apiRoot: API_ROOT,
        });
      const json = (out: InvokeOutput): Record<string, unknown> => JSON.parse(Buffer.from(out.body).toString('utf8')) as Record<string, unknown>;
      try {
        const created = await call('POST', 'subscriptions', {
          externalId: UE1.externalId,
          notificationDestination: AS_DESTINATION,
          monitoringType: 'LOCATION_REPORTING',
          maximumNumberOfReports: 5,
        });
        expect(created.status, JSON.stringify(json(created))).to.equal(201);
        const id = String(created.headers['location']).split('/').pop()!;
        expect((await call('GET', `subscriptions/${id}`)).status, 'positive control').to.equal(200);

        const disconnected = next(nc, Events.Disconnect);
        await nats.stop();
        await disconnected;
        await eventually(() => !store.fresh, BOUND_MS + 5_000, 'the copy to go stale');
        const before = { handled: handled.length, decisions };
        for (const [method, path] of [
          ['GET', `subscriptions/${id}`],
          ['GET', 'subscriptions'],
          ['DELETE', `subscriptions/${id}`],
        ]) {
          const out = await call(method, path);
          expect(out.status, `${method} ${path}`).to.equal(503);
          expect(out.headers).to.deep.equal({ 'content-type': 'application/problem+json' });
          expect(json(out)).to.deep.equal({
            status: 503,
            title: 'Service Unavailable',
            detail: 'the subscriptions cannot be confirmed current; the request was not executed',
            cause: 'RESOURCES_UNAVAILABLE',
          });
        }
        expect(handled.length, 'no module handler ran').to.equal(before.handled);
        expect(decisions, 'nothing was decided').to.equal(before.decisions);
        expect(errors, 'an expected refusal, not a fault').to.deep.equal([]);

        await nats.restart();
        await eventually(async () => (await call('GET', `subscriptions/${id}`)).status === 200, 20_000, 'the GET to be served again');
        expect(json(await call('GET', `subscriptions/${id}`))['monitoringType'], 'the DELETE refused while stale deleted nothing').to.equal('LOCATION_REPORTING');
        expect(handled.length).to.be.greaterThan(before.handled);
      } finally {
        await network.stop();
      }
    });
  });
});
