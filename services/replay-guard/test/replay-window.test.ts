import { expect } from 'chai';
import { AeseError } from '@aese/errors';
import { nonceKey } from '@aese/replay-window';
import type { ReplayCheck } from '@aese/replay-window';
import { nonceTtlMs, ReplayGuard } from '@aese/replay-window';
import type { NonceStore } from '@aese/replay-window';

/** An in-memory store that records every call, so tests can assert what was (not) written. */
class MemoryStore implements NonceStore {
  readonly keys = new Map<string, number>();
  readonly calls: string[] = [];
  since: number | undefined;
  failWith: Error | undefined;

  async recordOnce(key: string, ttlMs: number): Promise<boolean> {
    this.calls.push(key);
    if (this.failWith !== undefined) throw this.failWith;
    if (this.keys.has(key)) return false;
    this.keys.set(key, ttlMs);
    return true;
  }

  historySinceMs(): number | undefined {
    return this.since;
  }
}

const T = Date.parse('2026-03-01T12:00:00Z') / 1000;
const NONCE = 'bm9uY2Utb2YtMTI4LWJpdHM';
const KV_KEY = /^[-/=.\w]+$/;

async function codeOf(p: Promise<unknown>): Promise<string | undefined> {
  return p.then(
    () => undefined,
    (e: unknown) => (e instanceof AeseError ? e.code : `not an AeseError: ${String(e)}`),
  );
}

describe('replay guard domain (frozen clock)', () => {
  const setup = (nowMs: number, windowS = 60, skewS = 10) => {
    const store = new MemoryStore();
    const clock = { now: nowMs };
    const guard = new ReplayGuard({ store, windowS, skewS, now: () => clock.now });
    const check = (created: number, nonce = Buffer.from(`nonce-of-128-bits-${created}`).toString('base64url'), scsAsId = 'as-1') => guard.check({ scsAsId, nonce, created });
    return { store, clock, guard, check };
  };

  for (const [label, offsetMs] of [
    ['on a whole second', 0],
    ['999 ms into the second', 999],
  ] as const) {
    it(`accepts created exactly at now-60 and now+10 and refuses now-61 and now+11 (${label})`, async () => {
      const { store, check } = setup(T * 1000 + offsetMs);
      expect(await check(T - 61)).to.equal('stale');
      expect(await check(T + 11)).to.equal('future');
      expect(store.calls, 'stale and future never reach the store').to.deep.equal([]);
      expect(await check(T - 60)).to.equal('accepted');
      expect(await check(T + 10)).to.equal('accepted');
      expect(await check(T)).to.equal('accepted');
      expect(store.calls).to.have.length(3);
    });
  }

  it('honours configured window and skew, including a zero skew', async () => {
    const { store, check } = setup(T * 1000, 5, 0);
    expect(await check(T - 6)).to.equal('stale');
    expect(await check(T + 1)).to.equal('future');
    expect(store.calls).to.deep.equal([]);
    expect(await check(T - 5)).to.equal('accepted');
    expect(await check(T)).to.equal('accepted');
  });

  it('accepts a nonce once per AS; the same nonce from another AS is accepted (namespacing)', async () => {
    const { store, guard } = setup(T * 1000);
    const req: ReplayCheck = { scsAsId: 'as-1', nonce: NONCE, created: T };
    expect(await guard.check(req)).to.equal('accepted');
    expect(await guard.check(req)).to.equal('replayed');
    expect(await guard.check({ ...req, created: T - 5 }), 'a new created does not launder a used nonce').to.equal('replayed');
    expect(await guard.check({ ...req, scsAsId: 'as-2' })).to.equal('accepted');
    expect(await guard.check({ ...req, scsAsId: 'as-2' })).to.equal('replayed');
    expect([...store.keys.keys()]).to.deep.equal([nonceKey('as-1', NONCE), nonceKey('as-2', NONCE)]);
    for (const ttl of store.keys.values()) expect(ttl).to.equal(guard.ttlMs);
  });

  it('keeps a nonce at least as long as it can be accepted: window + skew + 1 s of rounding', () => {
    expect(nonceTtlMs(60, 10)).to.be.at.least((60 + 10 + 1) * 1000);
    expect(new ReplayGuard({ store: new MemoryStore(), windowS: 60, skewS: 10 }).ttlMs).to.equal(nonceTtlMs(60, 10));
  });

  it('builds one-token, KV-safe keys that never echo the nonce, with ids containing dots kept apart', () => {
    const k = nonceKey('a.', NONCE);
    expect(k).to.match(KV_KEY);
    expect(k.split('.')).to.have.length(2);
    expect(k).not.to.include(NONCE);
    expect(nonceKey('a.b', NONCE)).not.to.equal(nonceKey('a_b', NONCE));
    expect(nonceKey('a..b', NONCE).split('.')).to.have.length(2);
    expect(nonceKey('as-1', NONCE)).not.to.equal(nonceKey('as-1', `${NONCE}x`));
    expect(nonceKey('as-1', NONCE)).to.equal(nonceKey('as-1', NONCE));
  });

  it('refuses malformed input with INVALID_INPUT and touches nothing; a well-formed twin passes', async () => {
    const { store, guard } = setup(T * 1000);
    const bad: ReplayCheck[] = [
      { scsAsId: 'as-1', nonce: '', created: T },
      { scsAsId: 'as-1', nonce: 'x'.repeat(15), created: T },
      // The T8 profile's nonce: at least 128 bits, unpadded base64url, at most 128 characters.
      { scsAsId: 'as-1', nonce: 'x'.repeat(16), created: T },
      { scsAsId: 'as-1', nonce: `${NONCE}:/=`, created: T },
      { scsAsId: 'as-1', nonce: `${NONCE}+~`, created: T },
      { scsAsId: 'as-1', nonce: 'x'.repeat(132), created: T },
      { scsAsId: 'as-1', nonce: 'A'.repeat(10 * 1024), created: T },
      { scsAsId: 'as-1', nonce: `${NONCE} with space`, created: T },
      { scsAsId: 'as-1', nonce: `${NONCE}\n`, created: T },
      { scsAsId: 'as-1', nonce: `${NONCE}"`, created: T },
      { scsAsId: '', nonce: NONCE, created: T },
      { scsAsId: '*', nonce: NONCE, created: T },
      { scsAsId: '>', nonce: NONCE, created: T },
      { scsAsId: 'as 1', nonce: NONCE, created: T },
      { scsAsId: 'a'.repeat(65), nonce: NONCE, created: T },
      { scsAsId: 'as-1', nonce: NONCE, created: -1 },
      { scsAsId: 'as-1', nonce: NONCE, created: 0 },
      { scsAsId: 'as-1', nonce: NONCE, created: T + 0.5 },
      { scsAsId: 'as-1', nonce: NONCE, created: Number.NaN },
    ];
    for (const b of bad) expect(await codeOf(guard.check(b)), JSON.stringify(b).slice(0, 80)).to.equal('INVALID_INPUT');
    expect(store.calls).to.deep.equal([]);
    expect(await guard.check({ scsAsId: 'a'.repeat(64), nonce: 'x'.repeat(128), created: T })).to.equal('accepted');
    expect(await guard.check({ scsAsId: 'as-1', nonce: Buffer.alloc(16, 7).toString('base64url'), created: T })).to.equal('accepted');
  });

  it('fails closed with UNAVAILABLE when the store fails, whatever it throws; never accepted', async () => {
    const { store, check } = setup(T * 1000);
    store.failWith = new Error('connection reset');
    expect(await codeOf(check(T))).to.equal('UNAVAILABLE');
    store.failWith = new AeseError('UNAVAILABLE', 'store timeout');
    expect(await codeOf(check(T))).to.equal('UNAVAILABLE');
    expect(store.keys.size).to.equal(0);
    store.failWith = undefined;
    expect(await check(T)).to.equal('accepted');
  });

  it('refuses to decide requests the store cannot vouch for after it lost its history (barrier)', async () => {
    const { store, clock, check } = setup(T * 1000 + 400);
    store.since = T * 1000 + 400;
    // Anything created up to loss + skew could have been recorded before the loss.
    for (const created of [T - 30, T, T + 10]) expect(await codeOf(check(created)), String(created)).to.equal('UNAVAILABLE');
    expect(store.calls).to.deep.equal([]);
    expect(await check(T - 61), 'the window still comes first').to.equal('stale');
    clock.now = (T + 11) * 1000;
    expect(await codeOf(check(T + 10))).to.equal('UNAVAILABLE');
    expect(await check(T + 11)).to.equal('accepted');
    expect(store.calls).to.have.length(1);
  });

  it('does not touch the store when the call was already abandoned', async () => {
    const { store, guard } = setup(T * 1000);
    const ac = new AbortController();
    ac.abort();
    expect(await codeOf(guard.check({ scsAsId: 'as-1', nonce: NONCE, created: T }, ac.signal))).to.equal('UNAVAILABLE');
    expect(store.calls).to.deep.equal([]);
    expect(await guard.check({ scsAsId: 'as-1', nonce: NONCE, created: T }, new AbortController().signal)).to.equal('accepted');
  });

  it('rejects nonsensical settings at construction', () => {
    expect(() => new ReplayGuard({ store: new MemoryStore(), windowS: 0, skewS: 10 })).to.throw(TypeError);
    expect(() => new ReplayGuard({ store: new MemoryStore(), windowS: 60, skewS: -1 })).to.throw(TypeError);
  });
});
