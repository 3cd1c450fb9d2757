/**
 * Freshness: a replica's state is trusted while NATS answers and every consumer is caught up, for
 * the staleness bound after that stops being known, and again only after a catch-up that no
 * later outage interrupted. Real NATS behind a TCP gate that can drop the connection (the client
 * sees it close) or stall it (a partition that loses packets: the client sees nothing).
 */
import { expect } from 'chai';
import { connect } from 'nats';
import type { NatsConnection } from 'nats';
import { eventually, startNatsServer, startTcpGate } from '@aese/testing';
import type { NatsServerProcess, TcpGate } from '@aese/testing';
import { Freshness } from '../src/index.ts';

const BOUND_MS = 1_000;

/** A consumer whose catch-ups the test finishes by hand, counting them. */
class ManualConsumer {
  calls = 0;
  private pending: { resolve: () => void; reject: (err: Error) => void }[] = [];

  resync(): Promise<void> {
    this.calls++;
    return new Promise((resolve, reject) => this.pending.push({ resolve, reject }));
  }

  get waiting(): number {
    return this.pending.length;
  }

  finishAll(): void {
    for (const p of this.pending.splice(0)) p.resolve();
  }
}

describe('Freshness', function () {
  this.timeout(30_000);
  let nats: NatsServerProcess;
  let gate: TcpGate;
  let nc: NatsConnection;

  beforeEach(async () => {
    nats = await startNatsServer();
    gate = await startTcpGate(nats.port);
    nc = await connect({ servers: gate.url, reconnectTimeWait: 50, maxReconnectAttempts: -1 });
  });
  afterEach(async () => {
    await nc?.close();
    await gate?.dispose();
    await nats?.dispose();
  });

  it('stays fresh on a healthy connection well past the bound (its round trips are answered)', async () => {
    const consumer = new ManualConsumer();
    const freshness = new Freshness(nc, [consumer], BOUND_MS);
    const flips: boolean[] = [];
    freshness.onChange(f => flips.push(f));
    await new Promise(r => setTimeout(r, 3 * BOUND_MS));
    expect(freshness.isFresh()).to.equal(true);
    expect(flips, 'never told stale').to.deep.equal([]);
    expect(consumer.calls, 'no catch-up needed').to.equal(0);
  });

  it('goes stale within the bound (and a probe interval) of a silent partition, and is fresh again only after the catch-up that follows', async () => {
    const consumer = new ManualConsumer();
    const freshness = new Freshness(nc, [consumer], BOUND_MS);
    const flips: boolean[] = [];
    freshness.onChange(f => flips.push(f));
    const stalledAt = Date.now();
    gate.stall();
    await eventually(() => !freshness.isFresh(), 5_000, 'stale after a silent partition');
    const staleAfter = Date.now() - stalledAt;
    expect(staleAfter, 'not before the bound from the last answered round trip').to.be.at.least(BOUND_MS - BOUND_MS / 3 - 50);
    expect(staleAfter, 'within the bound and two probe intervals').to.be.below(BOUND_MS + (2 * BOUND_MS) / 3 + 300);
    // Listeners hear of it at the next probe tick (a third of the bound later at most).
    await eventually(() => flips.length > 0, BOUND_MS, 'told stale');
    expect(flips).to.deep.equal([false]);

    gate.open();
    await eventually(() => consumer.waiting > 0, 5_000, 'a catch-up started once NATS answers again');
    await new Promise(r => setTimeout(r, 200));
    expect(freshness.isFresh(), 'not before the catch-up is done').to.equal(false);
    consumer.finishAll();
    await eventually(() => freshness.isFresh(), 5_000, 'fresh after the catch-up');
    await eventually(() => flips.length > 1, BOUND_MS, 'told fresh');
    expect(flips).to.deep.equal([false, true]);
  });

  it('a dropped connection: usable for the bound, then stale; a reconnect is trusted after its catch-up', async () => {
    const consumer = new ManualConsumer();
    const freshness = new Freshness(nc, [consumer], BOUND_MS);
    gate.shut();
    await new Promise(r => setTimeout(r, BOUND_MS / 4));
    expect(freshness.isFresh(), 'within the bound').to.equal(true);
    await eventually(() => !freshness.isFresh(), 5_000, 'stale past the bound');
    gate.open();
    await eventually(() => consumer.waiting > 0, 10_000, 'a catch-up started after the reconnect');
    expect(freshness.isFresh()).to.equal(false);
    consumer.finishAll();
    await eventually(() => freshness.isFresh(), 5_000, 'fresh after the catch-up');
  });

  it('a catch-up interrupted by a second outage counts for nothing: stale through the second outage, fresh only after a catch-up that ran undisturbed', async () => {
    const consumer = new ManualConsumer();
    const freshness = new Freshness(nc, [consumer], BOUND_MS);
    gate.shut();
    await eventually(() => !freshness.isFresh(), 5_000, 'stale past the bound');
    gate.open();
    await eventually(() => consumer.waiting > 0, 10_000, 'the first catch-up started');
    // The link drops again while the catch-up runs; the catch-up then finishes from what had arrived.
    gate.shut();
    await new Promise(r => setTimeout(r, 100));
    consumer.finishAll();
    for (let i = 0; i < 6; i++) {
      await new Promise(r => setTimeout(r, BOUND_MS / 2));
      expect(freshness.isFresh(), `stale during the second outage (${(i + 1) * (BOUND_MS / 2)} ms in)`).to.equal(false);
    }
    gate.open();
    await eventually(() => consumer.calls >= 2 && consumer.waiting > 0, 10_000, 'a second catch-up started');
    expect(freshness.isFresh()).to.equal(false);
    consumer.finishAll();
    await eventually(() => freshness.isFresh(), 5_000, 'fresh after the undisturbed catch-up');
  });
});
