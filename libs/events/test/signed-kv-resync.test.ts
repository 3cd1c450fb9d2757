/**
 * SignedKvStore.resync: after a reconnect, a copy is trusted again only once it holds what other
 * writers put in the bucket meanwhile; with NATS unreachable it gives up within its bound.
 */
import { expect } from 'chai';
import { Events, connect } from 'nats';
import type { NatsConnection } from 'nats';
import { AeseError } from '@aese/errors';
import { createLogger } from '@aese/logger';
import { openKv } from '@aese/nats';
import { ecdsaEventSigner, eventually, startNatsServer, startTcpGate } from '@aese/testing';
import type { NatsServerProcess, TcpGate } from '@aese/testing';
import { JwksEventVerifier, SIGNED_KV_STATES, SignedKvStore } from '../src/index.ts';
import type { EventVerifier, KvTamperFinding } from '../src/index.ts';

const BUCKET = 'aese_resync_test';
/** How long a lagging reader takes per record: its copy is behind while the writer is done. */
const VERIFY_DELAY_MS = 150;

describe('SignedKvStore.resync', function () {
  this.timeout(30_000);
  let nats: NatsServerProcess;
  let gate: TcpGate;
  const connections: NatsConnection[] = [];
  const stores: SignedKvStore<string>[] = [];
  const findings: KvTamperFinding[] = [];
  const owner = ecdsaEventSigner('event-key-1');
  const verifier = new JwksEventVerifier(async () => [owner.jwk]);
  const logger = createLogger({ service: 'test', level: 'silent' });
  /** The real verifier, slowed down: a reader whose copy lags behind the stream. */
  const slow: EventVerifier = {
    verify: async (kid, data, signature) => {
      await new Promise(r => setTimeout(r, VERIFY_DELAY_MS));
      return verifier.verify(kid, data, signature);
    },
  };

  beforeEach(async () => {
    findings.length = 0;
    nats = await startNatsServer();
    gate = await startTcpGate(nats.port);
  });
  afterEach(async () => {
    for (const s of stores.splice(0)) s.stop();
    for (const nc of connections.splice(0)) await nc.close();
    await gate?.dispose();
    await nats?.dispose();
  });

  /** A store on its own connection (through the gate when asked), loaded. */
  async function replica(options: { throughGate?: boolean; verifier?: EventVerifier } = {}): Promise<{ store: SignedKvStore<string>; nc: NatsConnection }> {
    const nc = await connect({ servers: options.throughGate ? gate.url : nats.url, reconnectTimeWait: 50, maxReconnectAttempts: -1 });
    connections.push(nc);
    const store = new SignedKvStore<string>({
      nc,
      kv: await openKv(nc, BUCKET, { history: 1 }),
      bucket: BUCKET,
      signer: owner.signer,
      verifier: options.verifier ?? verifier,
      logger,
      onTampered: f => void findings.push(f),
      minBackoffMs: 50,
      maxBackoffMs: 200,
    });
    stores.push(store);
    store.start();
    expect(await store.settled()).to.equal(SIGNED_KV_STATES.ready);
    return { store, nc };
  }

  /** Resolves on the connection's next status event of `type`. */
  async function next(nc: NatsConnection, type: Events): Promise<void> {
    for await (const s of nc.status()) if (s.type === type) return;
  }

  it('resolves only once records another writer made are in a copy that lags behind', async () => {
    const writer = await replica();
    const { store: reader } = await replica({ verifier: slow });
    for (const [k, v] of [
      ['a', 'a1'],
      ['b', 'b1'],
      ['c', 'c1'],
    ])
      await writer.store.put(k, v);
    // The reader's copy is behind the stream: the last record is not in yet.
    expect(reader.get('c')).to.equal(undefined);
    await reader.resync();
    expect([reader.get('a'), reader.get('b'), reader.get('c')]).to.deep.equal(['a1', 'b1', 'c1']);
    expect(findings).to.deep.equal([]);
  });

  it('after a partition, resolves only once the writes made meanwhile by another writer are in the copy', async () => {
    const writer = await replica();
    const { store: reader, nc } = await replica({ throughGate: true, verifier: slow });
    await writer.store.put('sub', 'v1');
    await eventually(() => reader.get('sub') === 'v1', 5_000, 'the reader to see v1');

    const disconnected = next(nc, Events.Disconnect);
    gate.shut();
    await disconnected;
    await writer.store.put('sub', 'v2');
    await writer.store.put('other', 'w1');
    // Cut off, the reader's copy still has the old value.
    expect(reader.get('sub')).to.equal('v1');
    expect(reader.get('other')).to.equal(undefined);

    const reconnected = next(nc, Events.Reconnect);
    gate.open();
    await reconnected;
    // Back, but its copy takes its time over the records it missed.
    expect(reader.get('other')).to.equal(undefined);
    await reader.resync();
    expect(reader.get('sub')).to.equal('v2');
    expect(reader.get('other')).to.equal('w1');
    expect(reader.state).to.equal(SIGNED_KV_STATES.ready);
    expect(findings).to.deep.equal([]);
  });

  it('a copy loaded again after a server restart tells every change it took, deletions included', async () => {
    const { store: writer, nc: writerNc } = await replica();
    const { store: reader, nc } = await replica({ throughGate: true });
    await writer.put('kept', 'k1');
    await writer.put('sub', 'v1');
    await writer.put('gone', 'g1');
    await eventually(() => reader.get('gone') === 'g1', 5_000, 'the reader to see every record');
    const told: [string, string | undefined][] = [];
    reader.onChange((key, value) => told.push([key, value]));

    // The reader is cut off; the server restarts (its watch's consumer is gone with it), and the
    // writer changes and deletes records the reader holds before the reader is back.
    const disconnected = next(nc, Events.Disconnect);
    gate.shut();
    await disconnected;
    const writerBack = next(writerNc, Events.Reconnect);
    await nats.stop();
    await nats.restart();
    await writerBack;
    await writer.resync();
    await writer.put('sub', 'v2');
    await writer.delete('gone');
    const reconnected = next(nc, Events.Reconnect);
    gate.open();
    await reconnected;
    await reader.resync();
    expect([reader.get('sub'), reader.get('gone'), reader.get('kept')]).to.deep.equal(['v2', undefined, 'k1']);
    expect(told).to.deep.include(['sub', 'v2']);
    expect(told).to.deep.include(['gone', undefined]);
    expect(
      told.map(([k]) => k),
      'a record that did not change is not told',
    ).to.not.include('kept');
    expect(findings).to.deep.equal([]);
  });

  it('rejects within its bound while the server is unreachable, and resolves once it is back', async () => {
    const { store, nc } = await replica();
    await store.put('sub', 'v1');
    const disconnected = next(nc, Events.Disconnect);
    await nats.stop();
    await disconnected;
    const started = Date.now();
    let failure: unknown;
    try {
      await store.resync(400);
    } catch (err) {
      failure = err;
    }
    const tookMs = Date.now() - started;
    expect(failure).to.be.instanceOf(AeseError);
    expect(failure).to.include({ code: 'UNAVAILABLE', message: `cannot read the ${BUCKET} bucket's stream to catch up with it` });
    expect(tookMs, 'gave up within its bound').to.be.below(1_000);

    await nats.restart();
    await eventually(
      () =>
        store.resync(400).then(
          () => true,
          () => false,
        ),
      10_000,
      'a resync once the server is reachable',
    );
    expect(store.get('sub')).to.equal('v1');
    expect(findings).to.deep.equal([]);
  });
});
