/**
 * The quick structured-field reader and writers against structured-headers, the reference: on
 * every generated input the quick reader either steps aside (undefined) or returns exactly what
 * structured-headers returns, and the writers print exactly its bytes (or throw as it does).
 */
import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import {
  DisplayString,
  parseDictionary,
  serializeBareItem,
  serializeDictionary,
  serializeInnerList,
  serializeItem,
  serializeParameters,
  serializeString,
  Token,
} from 'structured-headers';
import type { BareItem, InnerList, Item, Parameters } from 'structured-headers';
import { computeContentDigest, createNonce, signMessage } from '../src/index.js';
import { serializeBytesMember, serializeInnerListQuick, serializeItemQuick, serializeParametersQuick, serializeStringQuick } from '../src/quick-serialize.js';
import { parseSimpleDictionary } from '../src/simple-dictionary.js';
import { DictionaryParseError, parseDictionaryStrict } from '../src/structured-fields.js';
import { asKey, NOW, T8_REQUEST_COMPONENTS, t8Request } from './t8-fixtures.js';

/** A small deterministic generator, so a failure can be reproduced. */
function randomSource(seed: number): { int(below: number): number; pick<T>(items: readonly T[]): T; chance(p: number): boolean } {
  let state = seed >>> 0;
  const next = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    int: below => Math.floor(next() * below),
    pick: items => items[Math.floor(next() * items.length)],
    chance: p => next() < p,
  };
}

/** A parse result as plain data: types spelled out, so two results compare exactly. */
function described(value: unknown): unknown {
  if (value instanceof Map) return ['map', [...(value as Map<unknown, unknown>)].map(([key, member]) => [key, described(member)])];
  if (Array.isArray(value)) return ['array', value.map(described)];
  if (value instanceof ArrayBuffer) return ['array-buffer', Buffer.from(value).toString('hex')];
  if (ArrayBuffer.isView(value)) return ['view', value.constructor.name];
  if (value instanceof Token) return ['token', value.toString()];
  if (value instanceof DisplayString) return ['display-string', value.toString()];
  if (value instanceof Date) return ['date', value.getTime()];
  if (typeof value === 'number') return ['number', Object.is(value, -0) ? '-0' : String(value)];
  return [typeof value, value];
}

function referenceParse(input: string): { ok: true; value: unknown } | { ok: false } {
  try {
    return { ok: true, value: described(parseDictionary(input)) };
  } catch {
    return { ok: false };
  }
}

function signedT8Fields(): { signatureInput: string; signature: string; contentDigest: string } {
  const { message, body } = t8Request();
  const key = asKey('as-1-quick-sf', 'ecdsa-p256-sha256');
  const out = signMessage(message, {
    label: 'sig1',
    components: T8_REQUEST_COMPONENTS,
    params: { created: NOW, nonce: createNonce(), keyid: key.kid, tag: 't8-request' },
    key: key.privateKey,
    alg: key.alg,
  });
  return { signatureInput: out.signatureInput, signature: out.signature, contentDigest: computeContentDigest(body) };
}

const KEYS = ['sig1', 'sha-256', 'sha-512', 'a', '*x', 'a_b.c-d*', 'A', '1a', 'sig1 ', ''];
const BASE64 = [
  randomBytes(64).toString('base64'),
  randomBytes(32).toString('base64'),
  randomBytes(1).toString('base64'),
  randomBytes(2).toString('base64'),
  '',
  'AB==',
  'AAB=',
  'YQ',
  'YQ=',
  'A===',
  '====',
  'YW=J',
  'a-b_',
  'YWJj ZA==',
  'YWJj\tZA==',
  randomBytes(33).toString('base64url'),
];

function bareItemText(r: ReturnType<typeof randomSource>): string {
  switch (r.int(12)) {
    case 0:
      return `:${r.pick(BASE64)}:`;
    case 1:
      return r.pick(['"@method"', '"authorization"', '"t8-request"', '"k1"', '""', '"a,b"', '"a;b=c"', '"x y"']);
    case 2:
      return r.pick(['"a\\"b"', '"a\\\\b"', '"a\\b"', '"é"', '"a\tb"', '"a\u0001b"', '"unterminated']);
    case 3:
      return r.pick(['0', '7', '007', '1760000000', '999999999999999', '1000000000000000', '-1', '-0']);
    case 4:
      return r.pick(['1.5', '1.', '12.345', '1.2345', '1234567890123.1']);
    case 5:
      return r.pick(['abc', '*x', 'ecdsa-p256-sha256', 'a:b/c']);
    case 6:
      return r.pick(['?1', '?0', '?2']);
    case 7:
      return r.pick(['@1700000000', '%"caf%c3%a9"']);
    default:
      return `"${createNonce()}"`;
  }
}

function parametersText(r: ReturnType<typeof randomSource>): string {
  let out = '';
  for (let i = r.int(4); i > 0; i--) {
    out += r.chance(0.1) ? '; ' : ';';
    out += r.pick(['req', 'key', 'created', 'nonce', 'keyid', 'tag', 'name', 'Key', '1x', 'a*']);
    if (r.chance(0.7)) out += '=' + bareItemText(r);
  }
  return out;
}

function itemText(r: ReturnType<typeof randomSource>): string {
  return bareItemText(r) + parametersText(r);
}

function memberText(r: ReturnType<typeof randomSource>): string {
  if (r.chance(0.5)) {
    const items: string[] = [];
    for (let i = r.int(6); i > 0; i--) items.push(itemText(r));
    const separator = r.chance(0.1) ? '  ' : ' ';
    const open = r.chance(0.1) ? '( ' : '(';
    const close = r.chance(0.1) ? ' )' : ')';
    return open + items.join(separator) + close + parametersText(r);
  }
  return itemText(r);
}

function dictionaryText(r: ReturnType<typeof randomSource>): string {
  let out = (r.chance(0.1) ? ' ' : '') + r.pick(KEYS);
  out += r.chance(0.9) ? '=' + memberText(r) : parametersText(r);
  if (r.chance(0.1)) out += r.pick([' ', '\t', ' \t', ',', ', b=1', ' x']);
  return out;
}

/** One character inserted, removed or replaced, to probe the edges of a valid value. */
function mutated(value: string, r: ReturnType<typeof randomSource>): string {
  const at = r.int(value.length + 1);
  const char = r.pick([' ', '\t', '"', '\\', ':', ';', '=', '(', ')', ',', 'A', 'a', '0', '-', '.', '*', '/', '+', 'é', '\u0000']);
  switch (r.int(3)) {
    case 0:
      return value.slice(0, at) + char + value.slice(at);
    case 1:
      return value.slice(0, at) + value.slice(at + 1);
    default:
      return value.slice(0, at) + char + value.slice(at + 1);
  }
}

function generatedInputs(): string[] {
  const r = randomSource(9421);
  const fields = signedT8Fields();
  const inputs = [fields.signatureInput, fields.signature, fields.contentDigest];
  for (let i = 0; i < 20_000; i++) inputs.push(dictionaryText(r));
  for (let i = 0; i < 20_000; i++) inputs.push(mutated(r.pick([fields.signatureInput, fields.signature, fields.contentDigest]), r));
  return inputs;
}

describe('http-signatures: quick structured-field reading', () => {
  const inputs = generatedInputs();

  it('reads the T8 Signature-Input, Signature and Content-Digest itself, exactly as structured-headers does', () => {
    const fields = signedT8Fields();
    for (const value of [fields.signatureInput, fields.signature, fields.contentDigest]) {
      const quick = parseSimpleDictionary(value);
      expect(quick, value).to.not.equal(undefined);
      expect(described(quick)).to.deep.equal(described(parseDictionary(value)));
    }
  });

  it('returns, whenever it answers, what structured-headers returns, on generated and mutated values', () => {
    let answered = 0;
    let steppedAside = 0;
    for (const input of inputs) {
      const quick = parseSimpleDictionary(input);
      if (quick === undefined) {
        steppedAside++;
        continue;
      }
      answered++;
      const reference = referenceParse(input);
      expect(reference.ok, `structured-headers refuses ${JSON.stringify(input)}`).to.equal(true);
      expect(described(quick), JSON.stringify(input)).to.deep.equal(reference.ok && reference.value);
    }
    // Both paths are exercised, or this test proves nothing.
    expect(answered).to.be.greaterThan(2_000);
    expect(steppedAside).to.be.greaterThan(2_000);
  });

  it('hands out byte sequences as fresh ArrayBuffers of exactly their length, never a shared pool', () => {
    const dictionary = parseSimpleDictionary(`sig1=:${randomBytes(64).toString('base64')}:`);
    const bytes: unknown = (dictionary?.get('sig1') as unknown[])[0];
    expect(bytes).to.be.instanceOf(ArrayBuffer);
    expect((bytes as ArrayBuffer).byteLength).to.equal(64);
  });

  it('leaves parseDictionaryStrict as it was on one-member values: structured-headers result, or refused as malformed', () => {
    for (const input of inputs) {
      if (input.includes(',')) continue;
      const reference = referenceParse(input);
      let actual: { ok: true; value: unknown } | { ok: false };
      try {
        actual = { ok: true, value: described(parseDictionaryStrict(input)) };
      } catch (err) {
        expect(err).to.be.instanceOf(DictionaryParseError).with.property('problem', 'malformed');
        actual = { ok: false };
      }
      expect(actual, JSON.stringify(input)).to.deep.equal(reference);
    }
  });
});

function outcome(serialize: () => string): { value: string } | { error: string } {
  try {
    return { value: serialize() };
  } catch (err) {
    return { error: (err as Error).constructor.name };
  }
}

function bareItems(r: ReturnType<typeof randomSource>): BareItem[] {
  const pooled = Buffer.from(randomBytes(40));
  const slice = Buffer.from('prefix-bytes-that-are-not-part-of-it').subarray(7, 19);
  return [
    'plain',
    '',
    'with "quotes" and \\ backslash',
    'non-ascii é',
    'tab\there',
    'del\u007f',
    createNonce(),
    r.int(1_000_000),
    1_760_000_000,
    999_999_999_999_999,
    1_000_000_000_000_000,
    -5,
    1.5,
    -0.25,
    true,
    false,
    new Token('ecdsa-p256-sha256'),
    new ArrayBuffer(0),
    new Uint8Array(randomBytes(32)).buffer,
    pooled,
    slice,
    new Uint8Array(randomBytes(16)).subarray(3, 9),
    new DataView(new Uint8Array(randomBytes(8)).buffer, 2, 4),
    new Date(1_700_000_000_000),
    new DisplayString('café'),
  ];
}

function withoutParameters(value: BareItem): Item {
  const params: Parameters = new Map();
  return [value, params];
}

function randomParameters(r: ReturnType<typeof randomSource>, pool: BareItem[]): Parameters {
  const params: Parameters = new Map();
  for (let i = r.int(5); i > 0; i--) params.set(r.pick(['req', 'key', 'name', 'created', 'a*b', 'Bad', '']), r.pick(pool));
  return params;
}

describe('http-signatures: quick structured-field writing', () => {
  const r = randomSource(8941);
  const pool = bareItems(r);

  it('prints sf-strings as structured-headers does, and refuses the same ones', () => {
    for (const value of pool.filter(item => typeof item === 'string')) {
      expect(outcome(() => serializeStringQuick(value))).to.deep.equal(outcome(() => serializeString(value)));
    }
  });

  it('prints parameters, items and inner lists byte for byte as structured-headers does', () => {
    for (let i = 0; i < 5_000; i++) {
      const params = randomParameters(r, pool);
      expect(outcome(() => serializeParametersQuick(params))).to.deep.equal(outcome(() => serializeParameters(params)));
      const item: Item = [r.pick(pool), randomParameters(r, pool)];
      expect(outcome(() => serializeItemQuick(item))).to.deep.equal(outcome(() => serializeItem(item)));
      const list: InnerList = [Array.from({ length: r.int(4) }, (): Item => [r.pick(pool), randomParameters(r, pool)]), randomParameters(r, pool)];
      expect(outcome(() => serializeInnerListQuick(list))).to.deep.equal(outcome(() => serializeInnerList(list)));
    }
  });

  it('prints a one-member byte-sequence dictionary (Signature, Content-Digest) as serializeDictionary does', () => {
    for (const key of ['sig1', 'sha-256', 'sha-512', 'Sig1', '1x', '']) {
      for (const bytes of [randomBytes(64), randomBytes(32).subarray(5, 20), new Uint8Array(0), Buffer.from(randomBytes(70)).subarray(1)]) {
        expect(outcome(() => serializeBytesMember(key, bytes))).to.deep.equal(outcome(() => serializeDictionary(new Map([[key, [bytes, new Map()]]]))));
      }
    }
  });

  it('agrees with structured-headers on every bare item type it passes through', () => {
    for (const value of pool) {
      expect(outcome(() => serializeItemQuick(withoutParameters(value)))).to.deep.equal(outcome(() => serializeBareItem(value)));
    }
  });
});
