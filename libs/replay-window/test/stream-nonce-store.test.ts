/**
 * StreamNonceStore against a real, secured nats-server: two deciders on the same AS never both call
 * a nonce fresh, appends are batched, history survives a restart of the store and of NATS, and
 * nothing is called fresh while NATS is down.
 */
import { expect } from 'chai';
import { createHash, randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { connect } from 'nats';
import type { NatsConnection } from 'nats';
import { AeseError } from '@aese/errors';
import { createLogger } from '@aese/logger';
import type { NatsIdentity } from '@aese/nats-trust';
import { initPki } from '@aese/pki';
import { asTokenOf, nonceKey, nonceTtlMs, REPLAY_WINDOW_STREAM, REPLAY_WINDOW_SUBJECT_PREFIX, StreamNonceStore } from '@aese/replay-window';
import { connectNatsAs, eventually, natsTlsOptions, startNatsServer, tempDir } from '@aese/testing';
import type { NatsServerProcess } from '@aese/testing';

const TD = 'scef.test';
const TTL_MS = nonceTtlMs(60, 10);
const DIGEST_BYTES = 32;

const nonce = (): string => randomBytes(16).toString('base64url');
const nonces = (n: number): string[] => Array.from({ length: n }, nonce);

/** Resolves to the AeseError code a call failed with, 'fresh'/'replayed' when it did not fail. */
async function outcome(p: Promise<boolean>): Promise<string> {
  return p.then(
    fresh => (fresh ? 'fresh' : 'replayed'),
    (err: unknown) => (err instanceof AeseError ? err.code : `not an AeseError: ${String(err)}`),
  );
}

/** Which comes first: the nonce's verdict, or `ms` (half a linger, in the tests that use it). */
function verdictBefore(call: Promise<boolean>, ms: number): Promise<string> {
  return Promise.race([call.then(fresh => `decided ${fresh ? 'fresh' : 'replayed'}`), new Promise<string>(r => setTimeout(() => r('half the linger'), ms))]);
}

interface Opened {
  readonly store: StreamNonceStore;
  readonly nc: NatsConnection;
  /** Nonce counts of the appends this store made, in order. */
  readonly appends: number[];
}

describe('StreamNonceStore (real nats-server, secured)', function () {
  this.timeout(60_000);
  let dir: ReturnType<typeof tempDir>;
  const logs: string[] = [];
  const logger = createLogger({
    service: 'replay-window-test',
    level: 'info',
    destination: new Writable({
      write(chunk: Buffer, _enc, cb) {
        logs.push(...chunk.toString('utf8').split('\n').filter(Boolean));
        cb();
      },
    }),
  });
  const opened: Opened[] = [];

  /** A connection that keeps reconnecting, as the services' connections do. */
  const connectAs = (url: string, identity: NatsIdentity): Promise<NatsConnection> =>
    connect({ servers: url, maxReconnectAttempts: -1, reconnectTimeWait: 100, ...natsTlsOptions(dir.path, identity) });

  async function openStore(url: string, identity: NatsIdentity, options: { timeoutMs?: number; lingerMs?: number; quietMs?: number } = {}): Promise<Opened> {
    const nc = await connectAs(url, identity);
    const appends: number[] = [];
    const store = await StreamNonceStore.open(nc, {
      ttlMs: TTL_MS,
      timeoutMs: options.timeoutMs ?? 10_000,
      logger,
      onAppend: n => appends.push(n),
      ...(options.lingerMs === undefined ? {} : { lingerMs: options.lingerMs }),
      ...(options.quietMs === undefined ? {} : { quietMs: options.quietMs }),
    });
    const o = { store, nc, appends };
    opened.push(o);
    return o;
  }

  /** Every nonce the stream holds, as nonceKey()s, read as the JetStream administrator. */
  async function storedKeys(url: string): Promise<string[]> {
    const nc = await connectNatsAs(url, dir.path, 'nats-admin');
    try {
      const info = await (await nc.jetstreamManager()).streams.info(REPLAY_WINDOW_STREAM);
      const keys: string[] = [];
      if (info.state.messages === 0) return keys;
      const consumer = await nc.jetstream().consumers.get(REPLAY_WINDOW_STREAM);
      let seq = 0;
      while (seq < info.state.last_seq) {
        let got = 0;
        for await (const m of await consumer.fetch({ max_messages: 1000, expires: 5_000 })) {
          got++;
          seq = m.seq;
          expect(m.subject.startsWith(`${REPLAY_WINDOW_SUBJECT_PREFIX}.`), m.subject).to.equal(true);
          expect(m.data.length % DIGEST_BYTES, 'a message is a batch of whole digests').to.equal(0);
          const token = m.subject.slice(REPLAY_WINDOW_SUBJECT_PREFIX.length + 1);
          for (let i = 0; i < m.data.length; i += DIGEST_BYTES) keys.push(`${token}.${Buffer.from(m.data.subarray(i, i + DIGEST_BYTES)).toString('base64url')}`);
          if (seq >= info.state.last_seq) break;
        }
        if (got === 0) throw new Error(`the stream read stalled at ${seq} of ${info.state.last_seq}`);
      }
      return keys;
    } finally {
      await nc.close();
    }
  }

  before(async function () {
    this.timeout(60_000);
    dir = tempDir('aese-replay-window');
    await initPki({ stateDir: dir.path, trustDomain: TD });
  });
  afterEach(async () => {
    for (const o of opened.splice(0)) {
      o.store.close();
      await o.nc.close().catch(() => undefined);
    }
  });
  after(() => dir?.remove());

  describe('on one NATS', () => {
    let nats: NatsServerProcess;
    before(async () => {
      nats = await startNatsServer({ secured: { stateDir: dir.path, trustDomain: TD } });
    });
    after(async () => {
      await nats?.dispose();
    });

    it('two stores on two connections offered the same nonces at once: exactly one true per nonce, and the stream holds each once', async () => {
      const a = await openStore(nats.url, 'replay-guard');
      const b = await openStore(nats.url, 'edge');
      const scsAsId = 'as.race';
      const ROUNDS = 4;
      const N = 500;
      const all: string[] = [];
      for (let round = 0; round < ROUNDS; round++) {
        const keys = nonces(N).map(n => nonceKey(scsAsId, n));
        all.push(...keys);
        const calls: { key: string; store: 'a' | 'b'; p: Promise<boolean> }[] = [];
        const offer = (store: 'a' | 'b', key: string): void => {
          calls.push({ key, store, p: (store === 'a' ? a : b).store.recordOnce(key, TTL_MS) });
        };
        // Offered in slices across event-loop turns, so both stores have batches in flight at once
        // and the later append of each pair is fenced off; the stores take turns to be offered a
        // nonce first, one round offers B the nonces in reverse order, and the third round offers
        // each nonce twice to A (a twin inside one store).
        for (let i = 0; i < N; i += 50) {
          for (let j = i; j < Math.min(N, i + 50); j++) {
            const [first, second] = round % 2 === 0 ? (['a', 'b'] as const) : (['b', 'a'] as const);
            offer(first, keys[j]);
            offer(second, round % 4 === 1 ? keys[N - 1 - j] : keys[j]);
            if (round === 2) offer('a', keys[j]);
          }
          await new Promise(r => setImmediate(r));
        }
        const results = await Promise.all(calls.map(c => c.p));
        const fresh = new Map<string, number>(keys.map(k => [k, 0]));
        results.forEach((r, i) => {
          if (r) fresh.set(calls[i].key, fresh.get(calls[i].key)! + 1);
        });
        const wrong = [...fresh].filter(([, n]) => n !== 1);
        expect(wrong, `round ${round}: nonces not fresh exactly once`).to.deep.equal([]);
        const freshBy = (s: 'a' | 'b') => results.filter((r, i) => r && calls[i].store === s).length;
        expect(freshBy('a') + freshBy('b')).to.equal(N);
      }
      const appended = [...a.appends, ...b.appends].reduce((x, y) => x + y, 0);
      expect(appended, 'every fresh nonce appended once, no other').to.equal(ROUNDS * N);

      const stored = (await storedKeys(nats.url)).filter(k => k.startsWith(`${asTokenOf(scsAsId)}.`));
      expect(stored).to.have.length(ROUNDS * N);
      expect(new Set(stored).size, 'no nonce stored twice').to.equal(ROUNDS * N);
      expect([...stored].sort()).to.deep.equal([...all].sort());
    });

    it('batches concurrent calls into few appends (group commit); sequential calls append one each (control)', async () => {
      const { store, appends } = await openStore(nats.url, 'replay-guard');
      const N = 2000;
      const keys = nonces(N).map(n => nonceKey('as-batch', n));
      const results = await Promise.all(keys.map(k => store.recordOnce(k, TTL_MS)));
      expect(results.every(r => r)).to.equal(true);
      expect(appends.reduce((x, y) => x + y, 0)).to.equal(N);
      expect(appends.length, `appends for ${N} concurrent nonces: ${appends.join(', ')}`).to.be.at.most(N / 20);
      expect(Math.max(...appends)).to.be.greaterThan(1);

      // Positive control: the counter counts appends; one at a time, each nonce is its own append.
      appends.length = 0;
      for (const n of nonces(20)) expect(await store.recordOnce(nonceKey('as-batch', n), TTL_MS)).to.equal(true);
      expect(appends).to.deep.equal(Array<number>(20).fill(1));
    });

    it('lingers only on a busy lane: nonces after a quiet spell go at the end of their turn, together; nonces close behind another wait to share an append', async () => {
      const LINGER_MS = 1_000;
      const QUIET_MS = 1_500;
      const { store, appends } = await openStore(nats.url, 'replay-guard', { lingerMs: LINGER_MS, quietMs: QUIET_MS });
      const before = (call: Promise<boolean>) => verdictBefore(call, LINGER_MS / 2);
      await store.prepare(asTokenOf('as-linger'));

      // Quiet lane (no nonce came for it yet): the three nonces of this turn go at its end, in one append.
      const first = nonces(3).map(n => store.recordOnce(nonceKey('as-linger', n), TTL_MS));
      expect(await before(first[0])).to.equal('decided fresh');
      expect(await Promise.all(first)).to.deep.equal([true, true, true]);
      expect(appends).to.deep.equal([3]);

      // Busy lane: nonces came just before, so these wait for the linger and go together.
      const next = nonces(2).map(n => store.recordOnce(nonceKey('as-linger', n), TTL_MS));
      expect(await before(next[0])).to.equal('half the linger');
      expect(await Promise.all(next)).to.deep.equal([true, true]);
      expect(appends).to.deep.equal([3, 2]);

      // Quiet again once the quiet spell has passed with no nonce.
      await new Promise(r => setTimeout(r, QUIET_MS));
      expect(await before(store.recordOnce(nonceKey('as-linger', nonce()), TTL_MS))).to.equal('decided fresh');
      expect(appends).to.deep.equal([3, 2, 1]);
    });

    it('by default a lane is quiet only after ten lingers without a nonce: three lingers after one, the next still waits', async () => {
      const LINGER_MS = 200;
      const { store, appends } = await openStore(nats.url, 'replay-guard', { lingerMs: LINGER_MS });
      await store.prepare(asTokenOf('as-default-quiet'));
      expect(await store.recordOnce(nonceKey('as-default-quiet', nonce()), TTL_MS)).to.equal(true);
      await new Promise(r => setTimeout(r, 3 * LINGER_MS));
      const call = store.recordOnce(nonceKey('as-default-quiet', nonce()), TTL_MS);
      expect(await verdictBefore(call, LINGER_MS / 2)).to.equal('half the linger');
      expect(await call).to.equal(true);
      expect(appends).to.deep.equal([1, 1]);
    });

    it('a new store on a fresh connection (a restart) answers replayed for every nonce recorded before, per AS; the same nonce for another AS is fresh', async () => {
      const first = await openStore(nats.url, 'replay-guard');
      const shared = nonces(300);
      const onlyAs1 = nonces(100);
      const recorded = [...shared.map(n => nonceKey('as-r1', n)), ...shared.map(n => nonceKey('as.r2', n)), ...onlyAs1.map(n => nonceKey('as-r1', n))];
      expect((await Promise.all(recorded.map(k => first.store.recordOnce(k, TTL_MS)))).every(r => r)).to.equal(true);
      first.store.close();
      await first.nc.close();

      const next = await openStore(nats.url, 'edge');
      const again = await Promise.all(recorded.map(k => next.store.recordOnce(k, TTL_MS)));
      expect(
        again.filter(r => r),
        'nonces called fresh again after the restart',
      ).to.have.length(0);
      expect(next.appends, 'replays append nothing').to.deep.equal([]);
      // Namespacing: another AS's (or a new AS's) use of the same nonces is fresh.
      const otherAs = [...onlyAs1.map(n => nonceKey('as.r2', n)), ...shared.map(n => nonceKey('as-r3', n))];
      expect((await Promise.all(otherAs.map(k => next.store.recordOnce(k, TTL_MS)))).every(r => r)).to.equal(true);
      expect(next.appends.reduce((x, y) => x + y, 0)).to.equal(otherAs.length);
      expect(next.store.historySinceMs()).to.equal(undefined);
    });

    it('a store that missed another store’s appends catches up: all those are replays, a new nonce is fresh', async () => {
      const a = await openStore(nats.url, 'edge');
      const b = await openStore(nats.url, 'replay-guard');
      const scsAsId = 'as-catch-up';
      // A reads the AS's history (empty) and appends once: its view is now current, then goes stale.
      expect(await a.store.recordOnce(nonceKey(scsAsId, nonce()), TTL_MS)).to.equal(true);
      const missed = nonces(1000).map(n => nonceKey(scsAsId, n));
      expect((await Promise.all(missed.map(k => b.store.recordOnce(k, TTL_MS)))).every(r => r)).to.equal(true);
      a.appends.length = 0;
      const atA = await Promise.all(missed.map(k => a.store.recordOnce(k, TTL_MS)));
      expect(
        atA.filter(r => r),
        'nonces B recorded called fresh at A',
      ).to.have.length(0);
      expect(a.appends, 'A appended none of them').to.deep.equal([]);
      const fresh = nonceKey(scsAsId, nonce());
      expect(await a.store.recordOnce(fresh, TTL_MS)).to.equal(true);
      expect(a.appends).to.deep.equal([1]);
      // And B, now behind A, catches up the same way.
      expect(await b.store.recordOnce(fresh, TTL_MS)).to.equal(false);
    });

    it('prepare(asToken) loads the AS’s history: known nonces are then answered from memory, without appending or any NATS traffic', async () => {
      const writer = await openStore(nats.url, 'replay-guard');
      const scsAsId = 'as.prepared';
      const known = nonces(200).map(n => nonceKey(scsAsId, n));
      expect((await Promise.all(known.map(k => writer.store.recordOnce(k, TTL_MS)))).every(r => r)).to.equal(true);

      const owner = await openStore(nats.url, 'edge');
      await owner.store.prepare(asTokenOf(scsAsId));
      await owner.nc.flush();
      const before = owner.nc.stats().outMsgs;
      const answers = await Promise.all(known.map(k => owner.store.recordOnce(k, TTL_MS)));
      expect(answers.filter(r => r)).to.have.length(0);
      expect(owner.appends).to.deep.equal([]);
      expect(owner.nc.stats().outMsgs - before, 'messages sent to NATS for nonces prepare() loaded').to.equal(0);
      // Positive control: a fresh nonce does go to NATS, as one append.
      expect(await owner.store.recordOnce(nonceKey(scsAsId, nonce()), TTL_MS)).to.equal(true);
      expect(owner.appends).to.deep.equal([1]);
      expect(owner.nc.stats().outMsgs).to.be.greaterThan(before);
      // An AS without history prepares too (nothing to read).
      await owner.store.prepare(asTokenOf('as-never-seen'));
    });

    it('refuses malformed keys and a TTL beyond the stream’s with TypeError, before touching NATS', async () => {
      const { store, nc, appends } = await openStore(nats.url, 'replay-guard');
      const digest = createHash('sha256').update('some nonce').digest('base64url');
      expect(digest).to.have.length(43);
      const bad = [
        '',
        digest,
        `.${digest}`,
        'as-1.',
        `as-1.${digest.slice(0, 42)}`,
        `as-1.${digest}AA`,
        `as-1.${digest.slice(0, 20)}`,
        // Other spellings of the same 32 bytes would be other nonces in memory but one in the stream.
        `as-1.${digest}=`,
        `as-1.${digest.slice(0, 20)}!!${digest.slice(20)}`,
        `as-1.${digest.slice(0, 20)} ${digest.slice(20)}`,
        `as-1.${digest.slice(0, 20)}.${digest.slice(20)}`,
        `as-1.${Buffer.from(digest, 'base64url').toString('base64')}`,
        `as-1.${digest.slice(0, 42)}${digest[42] === 'B' ? 'C' : 'B'}`,
        // Tokens that are not one plain subject token.
        `*.${digest}`,
        `>.${digest}`,
        `as 1.${digest}`,
        `${'a'.repeat(65)}.${digest}`,
      ];
      for (const options of [{ lingerMs: -1 }, { lingerMs: Number.NaN }, { quietMs: Number.POSITIVE_INFINITY }, { quietMs: -5 }]) {
        const err = await StreamNonceStore.open(nc, { ttlMs: TTL_MS, timeoutMs: 10_000, logger, ...options }).then(
          opened => {
            opened.close();
            return undefined;
          },
          (e: unknown) => e,
        );
        expect(err, JSON.stringify(options)).to.be.instanceOf(TypeError);
      }
      await nc.flush();
      const before = nc.stats().outMsgs;
      for (const key of bad) {
        const err = await store.recordOnce(key, TTL_MS).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(err, JSON.stringify(key)).to.be.instanceOf(TypeError);
      }
      const tooLong = await store.recordOnce(`as-1.${digest}`, TTL_MS + 1).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(tooLong).to.be.instanceOf(TypeError);
      for (const token of ['', '*', '>', 'a.b', 'as 1']) {
        const err = await store.prepare(token).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(err, JSON.stringify(token)).to.be.instanceOf(TypeError);
      }
      expect(nc.stats().outMsgs).to.equal(before);
      expect(appends).to.deep.equal([]);
      // Positive control: the well-formed key of that digest is recorded, once.
      expect(await store.recordOnce(`as-1.${digest}`, TTL_MS)).to.equal(true);
      expect(await store.recordOnce(`as-1.${digest}`, TTL_MS)).to.equal(false);
      expect(await store.recordOnce(nonceKey('a'.repeat(64), 'some nonce'), TTL_MS)).to.equal(true);
    });
  });

  describe('when NATS stops and starts again', () => {
    let nats: NatsServerProcess;
    before(async () => {
      nats = await startNatsServer({ secured: { stateDir: dir.path, trustDomain: TD } });
    });
    after(async () => {
      await nats?.dispose();
    });

    it('never calls a nonce fresh while NATS is down (UNAVAILABLE); after NATS restarts on the same store, old nonces are still replays', async function () {
      this.timeout(90_000);
      const scsAsId = 'as-outage';
      const s = await openStore(nats.url, 'replay-guard', { timeoutMs: 2_000 });
      const old = nonces(50).map(n => nonceKey(scsAsId, n));
      expect((await Promise.all(old.map(k => s.store.recordOnce(k, TTL_MS)))).every(r => r)).to.equal(true);

      await nats.stop();
      // At once, whether or not the client has noticed yet: a new nonce cannot be made durable.
      const rushed = nonces(20).map(n => nonceKey(scsAsId, n));
      const atStop = await Promise.all([...rushed, ...old].map(k => outcome(s.store.recordOnce(k, TTL_MS))));
      expect(atStop.slice(0, rushed.length), 'new nonces right after the stop').to.deep.equal(Array<string>(rushed.length).fill('UNAVAILABLE'));
      expect(
        atStop.slice(rushed.length).filter(o => o !== 'UNAVAILABLE' && o !== 'replayed'),
        'old nonces right after the stop',
      ).to.deep.equal([]);

      await eventually(() => !s.store.isAvailable, 10_000, 'the store noticing the outage');
      const down = nonces(20).map(n => nonceKey(scsAsId, n));
      const whileDown = await Promise.all([...down, ...old].map(k => outcome(s.store.recordOnce(k, TTL_MS))));
      expect(new Set(whileDown)).to.deep.equal(new Set(['UNAVAILABLE']));
      expect(await outcome(s.store.prepare(asTokenOf(scsAsId)).then(() => true))).to.equal('UNAVAILABLE');

      await nats.restart();
      await eventually(() => s.store.isAvailable, 30_000, 'the store deciding again after NATS restarted');
      expect((await Promise.all(old.map(k => s.store.recordOnce(k, TTL_MS)))).filter(r => r)).to.have.length(0);
      // Nonces refused while NATS was down were never called fresh, so they may be fresh now.
      expect(await s.store.recordOnce(down[0], TTL_MS)).to.equal(true);
      expect(s.store.historySinceMs(), 'the stream kept its history across the restart: no barrier').to.equal(undefined);

      // A store that starts after the restart reads the history from NATS's disk.
      const later = await openStore(nats.url, 'edge');
      expect((await Promise.all([...old, down[0]].map(k => later.store.recordOnce(k, TTL_MS)))).filter(r => r)).to.have.length(0);
      expect(later.appends).to.deep.equal([]);
      expect(await later.store.recordOnce(nonceKey(scsAsId, nonce()), TTL_MS)).to.equal(true);
    });
  });
});
