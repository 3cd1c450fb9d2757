import { expect } from 'chai';
import { MAX_REUSABLE_ANSWER_BYTES, MAX_REUSABLE_ANSWERS_PER_AS, MAX_REUSABLE_BYTES, ReusableAnswers } from '../src/domain/reusable-answers.js';
import type { InvokeCall } from '../src/t8-handler.js';

const get = (scsAsId: string, path: string, extra: Partial<InvokeCall> = {}): InvokeCall => ({
  scsAsId,
  method: 'GET',
  path,
  contentType: '',
  body: new Uint8Array(),
  scopes: ['a', 'b'],
  apiRoot: 'https://scef.test',
  ...extra,
});

describe('edge reusable answers', () => {
  let clock = 0;
  const answers = (maxAgeMs = 1_000, maxEntries = 100): ReusableAnswers<string> => new ReusableAnswers<string>(maxAgeMs, maxEntries, () => clock);
  beforeEach(() => (clock = 0));

  it('keys body-less GETs only, by everything that decides the answer', () => {
    const key = ReusableAnswers.keyOf(get('as1', '/p'))!;
    expect(key).to.be.a('string');
    expect(ReusableAnswers.keyOf(get('as1', '/p', { method: 'PUT' }))).to.equal(undefined);
    expect(ReusableAnswers.keyOf(get('as1', '/p', { body: new Uint8Array([1]) }))).to.equal(undefined);
    expect(ReusableAnswers.keyOf(get('as1', '/p', { scopes: ['b', 'a'] })), 'scope order does not matter').to.equal(key);
    for (const other of [
      get('as2', '/p'),
      get('as1', '/q'),
      get('as1', '/p', { scopes: ['a'] }),
      get('as1', '/p', { apiRoot: 'https://x.test' }),
      get('as1', '/p', { contentType: 'x' }),
    ]) {
      expect(ReusableAnswers.keyOf(other)).to.not.equal(key);
    }
  });

  it('gives a kept answer until its age bound, then asks again', () => {
    const r = answers(1_000);
    const key = ReusableAnswers.keyOf(get('as1', '/p'))!;
    expect(r.lookup(key)).to.equal(undefined);
    r.offer(key, 'as1', 'answer', r.epochOf('as1'), 10);
    clock = 1_000;
    expect(r.lookup(key)).to.equal('answer');
    clock = 1_001;
    expect(r.lookup(key)).to.equal(undefined);
    expect(r.stats).to.deep.equal({ hits: 1, misses: 2 });
  });

  it("does not keep an answer to a call sent before a withdrawal of its AS or of everything; another AS's does not matter", () => {
    const r = answers();
    const key = ReusableAnswers.keyOf(get('as1', '/p'))!;
    let sentAt = r.epochOf('as1');
    r.withdrawAs(['as1']);
    r.offer(key, 'as1', 'stale?', sentAt, 10);
    expect(r.lookup(key)).to.equal(undefined);
    sentAt = r.epochOf('as1');
    r.withdrawAll();
    r.offer(key, 'as1', 'stale?', sentAt, 10);
    expect(r.lookup(key)).to.equal(undefined);
    sentAt = r.epochOf('as1');
    r.withdrawAs(['as2']);
    r.offer(key, 'as1', 'fresh', sentAt, 10);
    expect(r.lookup(key), "another AS's withdrawal").to.equal('fresh');
  });

  it('holds at most its bound per AS: one AS filling it evicts only its own oldest', () => {
    const r = answers(1_000, 100_000);
    const other = ReusableAnswers.keyOf(get('as2', '/p'))!;
    r.offer(other, 'as2', 'other', r.epochOf('as2'), 10);
    const keys = Array.from({ length: MAX_REUSABLE_ANSWERS_PER_AS + 1 }, (_, i) => ReusableAnswers.keyOf(get('as1', `/p?n=${i}`))!);
    for (const k of keys) r.offer(k, 'as1', k, r.epochOf('as1'), 10);
    expect(r.lookup(keys[0])).to.equal(undefined);
    expect(r.lookup(keys[1])).to.equal(keys[1]);
    expect(r.lookup(other)).to.equal('other');
  });

  it("withdraws one AS's answers and leaves the others'; withdraws everything at once", () => {
    const r = answers();
    const a1 = ReusableAnswers.keyOf(get('as1', '/p'))!;
    const a2 = ReusableAnswers.keyOf(get('as1', '/q'))!;
    const b1 = ReusableAnswers.keyOf(get('as2', '/p'))!;
    r.offer(a1, 'as1', 'a1', r.epochOf('as1'), 10);
    r.offer(a2, 'as1', 'a2', r.epochOf('as1'), 10);
    r.offer(b1, 'as2', 'b1', r.epochOf('as2'), 10);
    r.withdrawAs(['as1']);
    expect([r.lookup(a1), r.lookup(a2), r.lookup(b1)]).to.deep.equal([undefined, undefined, 'b1']);
    r.withdrawAll();
    expect(r.lookup(b1)).to.equal(undefined);
  });

  it('keeps no answer larger than its bound and holds at most its byte bound, the oldest making room', () => {
    const r = answers(1_000, 10_000);
    const big = ReusableAnswers.keyOf(get('as1', '/big'))!;
    r.offer(big, 'as1', 'big', r.epochOf('as1'), MAX_REUSABLE_ANSWER_BYTES + 1);
    expect(r.lookup(big)).to.equal(undefined);
    const count = Math.floor(MAX_REUSABLE_BYTES / MAX_REUSABLE_ANSWER_BYTES);
    const keys = Array.from({ length: count + 1 }, (_, i) => ReusableAnswers.keyOf(get('as1', `/${i}`))!);
    for (const k of keys) r.offer(k, 'as1', k, r.epochOf('as1'), MAX_REUSABLE_ANSWER_BYTES);
    expect(r.lookup(keys[0]), 'the oldest made room').to.equal(undefined);
    expect(r.lookup(keys[1])).to.equal(keys[1]);
    expect(r.lookup(keys[count])).to.equal(keys[count]);
    r.withdrawAs(['as1']);
    r.offer(big, 'as1', 'fits again', r.epochOf('as1'), MAX_REUSABLE_ANSWER_BYTES);
    expect(r.lookup(big), 'withdrawals give their bytes back').to.equal('fits again');
  });

  it('holds at most its bound, the oldest making room; a zero age keeps nothing', () => {
    const r = answers(1_000, 2);
    const keys = ['/1', '/2', '/3'].map(p => ReusableAnswers.keyOf(get('as1', p))!);
    for (const k of keys) r.offer(k, 'as1', k, r.epochOf('as1'), 10);
    expect(keys.map(k => r.lookup(k))).to.deep.equal([undefined, keys[1], keys[2]]);
    const off = answers(0);
    off.offer(keys[0], 'as1', 'x', off.epochOf('as1'), 10);
    expect(off.lookup(keys[0])).to.equal(undefined);
  });
});
