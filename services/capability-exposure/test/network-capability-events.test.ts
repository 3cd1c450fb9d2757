/**
 * A module's simulated capability sends its events through the network adapter's `emit`: in
 * process they go straight to the listeners; over NATS they are signed, published and handed by
 * the shared consumer to exactly one replica. The codec carries them strictly validated.
 */
import { expect } from 'chai';
import { connect } from 'nats';
import type { NatsConnection } from 'nats';
import { AuditLog, JwksEventVerifier, NETWORK_EVENTS_STREAM, networkEventSubject, signNetworkEvent } from '@aese/events';
import type { AuditEvent } from '@aese/events';
import { ecdsaEventSigner, eventually, startNatsServer } from '@aese/testing';
import type { NatsServerProcess } from '@aese/testing';
import { MAX_CAPABILITY_PAYLOAD_BYTES } from '../src/network/capability-event.ts';
import { NETWORK_EVENT_CONSUMER, NatsNetworkFeed } from '../src/network/nats-network-feed.ts';
import type { CapabilityEvent, NetworkEvent } from '../src/network/network-adapter.ts';
import { decodeNetworkRecord, encodeNetworkRecord } from '../src/network/network-event-codec.ts';
import type { NetworkRecord } from '../src/network/network-event-codec.ts';
import { SimulatedCore, simulatedUeIdentifiers } from '../src/network/simulated-core.ts';
import { captureLogger } from './support.ts';

const NOW = 1_700_000_000_000;
const DEVICE_TRIGGERING = '3gpp-device-triggering';
const UE1 = simulatedUeIdentifiers(1);

const eventOf = (record: NetworkRecord | undefined): NetworkEvent | undefined => (record && 'event' in record ? record.event : undefined);
const capabilityEvents = (events: readonly NetworkEvent[]): CapabilityEvent[] => events.filter((e): e is CapabilityEvent => e.kind === 'capability');

async function rejection(call: () => Promise<unknown>): Promise<unknown> {
  try {
    await call();
  } catch (err) {
    return err;
  }
  throw new Error('not rejected');
}

describe('capability events through the simulated core', () => {
  it('reach a subscribed listener with their payload, timed by the core clock, without an id', async () => {
    const core = new SimulatedCore({ seed: 7, ueCount: 5, now: () => NOW });
    const seen: NetworkEvent[] = [];
    core.subscribe(e => void seen.push(e));
    const payload = { externalId: UE1.externalId, deliveryResult: 'SUCCESS', attempts: [1, 2], detail: { cause: null } };

    await core.emit({ capability: DEVICE_TRIGGERING, type: 'delivery-report', payload });
    await core.emit({ capability: DEVICE_TRIGGERING, type: 'delivery-report', payload: { n: 2 }, atMs: NOW - 5 });

    expect(seen).to.deep.equal([
      { kind: 'capability', capability: DEVICE_TRIGGERING, type: 'delivery-report', payload, atMs: NOW },
      { kind: 'capability', capability: DEVICE_TRIGGERING, type: 'delivery-report', payload: { n: 2 }, atMs: NOW - 5 },
    ]);
    expect((seen[0] as CapabilityEvent).payload, 'a copy: a listener never holds the sender object').to.not.equal(payload);
    await core.stop();
  });

  it('draws nothing from the generator: the ticks around an emit are those of a core that never emitted', async () => {
    const quiet = new SimulatedCore({ seed: 3, ueCount: 20, now: () => NOW });
    const emitting = new SimulatedCore({ seed: 3, ueCount: 20, now: () => NOW });
    const quietEvents: NetworkEvent[] = [];
    const emittingEvents: NetworkEvent[] = [];
    quiet.subscribe(e => void quietEvents.push(e));
    emitting.subscribe(e => void emittingEvents.push(e));

    await quiet.advance(3);
    await emitting.advance(1);
    await emitting.emit({ capability: DEVICE_TRIGGERING, type: 'delivery-report', payload: {} });
    await emitting.advance(2);

    expect(quietEvents.length, 'the ticks produced events').to.be.above(0);
    expect(emittingEvents.filter(e => e.kind !== 'capability')).to.deep.equal(quietEvents);
    expect(capabilityEvents(emittingEvents)).to.have.length(1);
  });

  it('a listener error goes to onListenerError and the other listeners still get the event', async () => {
    const errors: unknown[] = [];
    const core = new SimulatedCore({ seed: 1, ueCount: 1, now: () => NOW, onListenerError: err => void errors.push(err) });
    const seen: NetworkEvent[] = [];
    core.subscribe(() => {
      throw new Error('listener failed');
    });
    core.subscribe(e => void seen.push(e));

    await core.emit({ capability: DEVICE_TRIGGERING, type: 'delivery-report', payload: { ok: true } });

    expect(errors.map(e => (e as Error).message)).to.deep.equal(['listener failed']);
    expect(capabilityEvents(seen).map(e => e.payload)).to.deep.equal([{ ok: true }]);
  });

  it('a listener handling a tick event may emit and wait for it (no deadlock behind the tick)', async () => {
    const core = new SimulatedCore({ seed: 2, ueCount: 10, now: () => NOW });
    const reports: CapabilityEvent[] = [];
    let emitted = 0;
    core.subscribe(async e => {
      if (e.kind === 'capability') reports.push(e);
      else if (e.kind === 'reachability' && e.reachable && emitted === 0) {
        emitted++;
        await core.emit({ capability: DEVICE_TRIGGERING, type: 'delivery-report', payload: { externalId: e.ue.externalId } });
      }
    });

    for (let i = 0; i < 20 && emitted === 0; i++) await core.advance(1);

    expect(emitted, 'some UE became reachable').to.equal(1);
    expect(reports).to.have.length(1);
    await core.stop();
  });

  it('refuses, delivering nothing, an event no replica would accept', async () => {
    const core = new SimulatedCore({ seed: 1, ueCount: 1, now: () => NOW });
    const seen: NetworkEvent[] = [];
    core.subscribe(e => void seen.push(e));
    const bad = [
      { capability: 'Device-Triggering', type: 'delivery-report', payload: {} },
      { capability: DEVICE_TRIGGERING, type: 'delivery report', payload: {} },
      { capability: DEVICE_TRIGGERING, type: 'delivery-report', payload: { at: new Date(NOW) } },
      { capability: DEVICE_TRIGGERING, type: 'delivery-report', payload: { n: Number.NaN } },
      { capability: DEVICE_TRIGGERING, type: 'delivery-report', payload: { gone: undefined } },
      { capability: DEVICE_TRIGGERING, type: 'delivery-report', payload: ['not', 'an', 'object'] as unknown as Record<string, unknown> },
      { capability: DEVICE_TRIGGERING, type: 'delivery-report', payload: { data: 'x'.repeat(MAX_CAPABILITY_PAYLOAD_BYTES) } },
      { capability: DEVICE_TRIGGERING, type: 'delivery-report', payload: {}, atMs: Number.POSITIVE_INFINITY },
    ];
    for (const input of bad) {
      const err = await rejection(() => core.emit(input));
      expect(err, JSON.stringify(input).slice(0, 80)).to.be.instanceOf(TypeError);
    }
    const cyclic: Record<string, unknown> = {};
    cyclic['self'] = cyclic;
    expect(await rejection(() => core.emit({ capability: DEVICE_TRIGGERING, type: 'loop', payload: cyclic }))).to.be.instanceOf(TypeError);
    expect(seen).to.deep.equal([]);
  });
});

describe('capability events in the network-event codec', () => {
  const event: CapabilityEvent = {
    kind: 'capability',
    capability: DEVICE_TRIGGERING,
    type: 'delivery-report',
    payload: { externalId: UE1.externalId, result: 'SUCCESS', nested: { list: [1, 'two', true, null, { deep: 1.5 }] } },
    atMs: NOW,
    id: 'c7a9a2a4-5d4b-4c1b-9a0e-1f2f3e4d5c6b',
  };
  let lookups = 0;
  const findUe = async (): Promise<undefined> => {
    lookups++;
    return undefined;
  };
  const decode = (bytes: Uint8Array): Promise<NetworkRecord | undefined> => decodeNetworkRecord(bytes, findUe);
  const wire = (e: Record<string, unknown>): Uint8Array => Buffer.from(JSON.stringify({ origin: 'replica-a', event: e }), 'utf8');
  const withPayload = (payload: unknown): Uint8Array => wire({ ...event, payload });

  beforeEach(() => {
    lookups = 0;
  });

  it('round-trips a capability event as it is, without resolving any UE', async () => {
    const record: NetworkRecord = { origin: 'replica-a', event };
    expect(await decode(encodeNetworkRecord(record))).to.deep.equal(record);
    const { id: _id, ...withoutId } = event;
    expect(await decode(encodeNetworkRecord({ origin: 'replica-a', event: withoutId }))).to.deep.equal({ origin: 'replica-a', event: withoutId });
    expect(lookups, 'a UE lookup').to.equal(0);
  });

  it('refuses names that are not short lowercase names', async () => {
    for (const name of ['', 'Device', '-lead', '.lead', 'with space', 'a/b', 'a_b', 'é', 'x'.repeat(65), 7, null]) {
      expect(await decode(wire({ ...event, capability: name })), `capability ${String(name)}`).to.equal(undefined);
      expect(await decode(wire({ ...event, type: name })), `type ${String(name)}`).to.equal(undefined);
    }
    const longest = 'a'.repeat(64);
    expect(eventOf(await decode(wire({ ...event, capability: longest, type: '0.x-y' })))).to.include({ capability: longest, type: '0.x-y' });
  });

  it('refuses payloads that are not a plain JSON object', async () => {
    for (const payload of [[], [{ a: 1 }], 'text', 12, true, null, undefined]) {
      expect(await decode(withPayload(payload)), `payload ${JSON.stringify(payload)}`).to.equal(undefined);
    }
    const prototypeReaching = Buffer.from(`{"origin":"replica-a","event":{"kind":"capability","capability":"x","type":"y","atMs":1,"payload":{"__proto__":{"admin":true}}}}`);
    expect(await decode(prototypeReaching), '__proto__ member').to.equal(undefined);
    const repeated = Buffer.from(`{"origin":"replica-a","event":{"kind":"capability","capability":"x","type":"y","atMs":1,"payload":{"a":1,"a":2}}}`);
    expect(await decode(repeated), 'repeated member').to.equal(undefined);
    let deep: unknown = 1;
    for (let i = 0; i < 20; i++) deep = { d: deep };
    expect(await decode(withPayload(deep)), 'nested too deep').to.equal(undefined);
    expect(await decode(wire({ ...event, atMs: 'now' })), 'time not a number').to.equal(undefined);
  });

  it('refuses a payload whose encoding exceeds 16 KiB, and takes one of exactly 16 KiB', async () => {
    const empty = JSON.stringify({ data: '' }).length;
    const atLimit = { data: 'x'.repeat(MAX_CAPABILITY_PAYLOAD_BYTES - empty) };
    expect(Buffer.byteLength(JSON.stringify(atLimit))).to.equal(16 * 1024);
    expect(eventOf(await decode(withPayload(atLimit)))).to.deep.include({ payload: atLimit });
    expect(await decode(withPayload({ data: `${atLimit.data}x` }))).to.equal(undefined);
    // Multi-byte characters count as their UTF-8 bytes.
    expect(await decode(withPayload({ data: 'é'.repeat((MAX_CAPABILITY_PAYLOAD_BYTES - empty) / 2 + 1) }))).to.equal(undefined);
  });
});

describe('capability events through the shared network over NATS', function () {
  this.timeout(60_000);
  let nats: NatsServerProcess;
  const connections: NatsConnection[] = [];
  const feeds: NatsNetworkFeed[] = [];
  const owner = ecdsaEventSigner('event-key-1');
  const forger = ecdsaEventSigner('event-key-1'); // the real kid, another key
  const verifier = new JwksEventVerifier(async () => [owner.jwk]);

  beforeEach(async () => {
    nats = await startNatsServer();
  });
  afterEach(async () => {
    for (const f of feeds.splice(0)) await f.stop();
    for (const nc of connections.splice(0)) await nc.close();
    await nats?.dispose();
  });

  /** One capability-exposure replica: its connection, its copy of the network, its feed and what its listeners got. */
  async function replica(name: string): Promise<{ feed: NatsNetworkFeed; handled: CapabilityEvent[]; audited: AuditEvent[]; nc: NatsConnection }> {
    const nc = await connect({ servers: nats.url });
    connections.push(nc);
    const audited: AuditEvent[] = [];
    const feed = await NatsNetworkFeed.open({
      nc,
      core: new SimulatedCore({ seed: 1, ueCount: 5 }),
      signer: owner.signer,
      verifier,
      logger: captureLogger([]),
      audit: new AuditLog('capability-exposure', { write: async e => void audited.push(e) }),
      tickMs: 0,
      leaseMs: 5_000,
      replicaId: name,
    });
    feeds.push(feed);
    const handled: CapabilityEvent[] = [];
    feed.subscribe(e => {
      if (e.kind === 'capability') handled.push(e);
    });
    return { feed, handled, audited, nc };
  }

  /** The shared consumer has nothing left to deliver, nothing unacknowledged, nothing delivered twice. */
  async function expectConsumerSettled(nc: NatsConnection, delivered: number): Promise<void> {
    const jsm = await nc.jetstreamManager();
    await eventually(async () => (await jsm.consumers.info(NETWORK_EVENTS_STREAM, NETWORK_EVENT_CONSUMER)).num_ack_pending === 0, 5_000, 'every event acknowledged');
    const info = await jsm.consumers.info(NETWORK_EVENTS_STREAM, NETWORK_EVENT_CONSUMER);
    expect({ pending: info.num_pending, ackPending: info.num_ack_pending, redelivered: info.num_redelivered, delivered: info.delivered.consumer_seq }).to.deep.equal({
      pending: 0,
      ackPending: 0,
      redelivered: 0,
      delivered,
    });
  }

  it('an emitted event is handled exactly once across two replicas, never also directly where it was emitted', async () => {
    const a = await replica('replica-a');
    const b = await replica('replica-b');
    const count = 8;
    for (let n = 0; n < count; n++) {
      const from = n % 2 === 0 ? a : b;
      await from.feed.emit({ capability: DEVICE_TRIGGERING, type: 'delivery-report', payload: { externalId: UE1.externalId, n } });
    }
    await eventually(() => a.handled.length + b.handled.length >= count, 10_000, 'every event handled');
    await expectConsumerSettled(a.nc, count);

    const all = [...a.handled, ...b.handled];
    expect(all.map(e => e.payload['n']).sort((x, y) => Number(x) - Number(y))).to.deep.equal([...Array(count).keys()]);
    expect(new Set(all.map(e => e.id)).size, 'each with an id of its own').to.equal(count);
    expect(all.every(e => e.capability === DEVICE_TRIGGERING && e.type === 'delivery-report' && e.payload['externalId'] === UE1.externalId)).to.equal(true);
    expect(a.feed.stats()).to.include({ published: count / 2, refused: 0 });
    expect(b.feed.stats()).to.include({ published: count / 2, refused: 0 });
    expect(a.feed.stats().handled + b.feed.stats().handled).to.equal(count);
  });

  it('an invalid event is refused at emit and nothing is published', async () => {
    const a = await replica('replica-a');
    const err = await rejection(() => a.feed.emit({ capability: 'No Such', type: 'x', payload: {} }));
    expect(err).to.be.instanceOf(TypeError);
    expect(a.feed.stats().published).to.equal(0);
    const stream = await (await a.nc.jetstreamManager()).streams.info(NETWORK_EVENTS_STREAM);
    expect(stream.state.messages, 'stream messages').to.equal(0);
  });

  it('a forged or unsigned capability record changes nothing', async () => {
    const a = await replica('replica-a');
    const b = await replica('replica-b');
    const subject = networkEventSubject('event.capability');
    const record = (n: string): Uint8Array =>
      encodeNetworkRecord({ origin: 'replica-a', event: { kind: 'capability', capability: DEVICE_TRIGGERING, type: 'delivery-report', payload: { n }, atMs: Date.now(), id: n } });
    const js = a.nc.jetstream();
    await js.publish(subject, record('unsigned'));
    await js.publish(subject, await signNetworkEvent(forger.signer, subject, record('forged'), Date.now()));
    // Signed by the real key, but for another subject: the binding does not hold here.
    await js.publish(subject, await signNetworkEvent(owner.signer, networkEventSubject('event.location'), record('moved'), Date.now()));

    await eventually(() => a.feed.stats().refused + b.feed.stats().refused === 3, 10_000, 'the three records refused');
    await expectConsumerSettled(a.nc, 3);
    expect(a.handled.length + b.handled.length, 'events handled').to.equal(0);
    const denials = [...a.audited, ...b.audited].filter(e => e.action === 'network.event' && e.decision === 'deny');
    expect(denials.map(e => e.reason).sort()).to.deep.equal(['BAD_SIGNATURE', 'BAD_SIGNATURE', 'MALFORMED']);

    // The consumer is still serving: a genuine event after them is handled, once.
    await b.feed.emit({ capability: DEVICE_TRIGGERING, type: 'delivery-report', payload: { n: 'genuine' } });
    await eventually(() => a.handled.length + b.handled.length === 1, 10_000, 'the genuine event handled');
    await expectConsumerSettled(a.nc, 4);
    expect([...a.handled, ...b.handled].map(e => e.payload)).to.deep.equal([{ n: 'genuine' }]);
  });
});
