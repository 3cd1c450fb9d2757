import { expect } from 'chai';
import { parseStrictJson } from '../src/domain/strict-json.ts';
import { T8Problem } from '../src/domain/problem.ts';

const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);

function problemOf(fn: () => unknown): T8Problem {
  try {
    fn();
  } catch (err) {
    if (err instanceof T8Problem) return err;
    throw err;
  }
  throw new Error('expected a T8Problem');
}

describe('capability-exposure strict JSON', () => {
  it('parses what JSON.parse parses (positive control)', () => {
    const text = '{"a":1,"b":[true,false,null,"x\\u00e9\\n"],"c":{"d":-1.5e3},"e":""}';
    expect(parseStrictJson(bytes(text))).to.deep.equal(JSON.parse(text));
    expect(parseStrictJson(bytes(' [ ] '))).to.deep.equal([]);
  });

  it('refuses duplicate member names at any depth, naming the member', () => {
    const p = problemOf(() => parseStrictJson(bytes('{"a":{"x":1,"x":2}}')));
    expect(p.status).to.equal(400);
    expect(p.causeCode).to.equal('DUPLICATE_JSON_MEMBER');
    expect(p.invalidParams).to.deep.equal([{ param: 'x', reason: 'duplicate member' }]);
    // The same name escaped differently is still the same name.
    expect(problemOf(() => parseStrictJson(bytes('{"ab":1,"a\\u0062":2}'))).causeCode).to.equal('DUPLICATE_JSON_MEMBER');
    expect(parseStrictJson(bytes('{"a":{"x":1},"b":{"x":2}}'))).to.deep.equal({ a: { x: 1 }, b: { x: 2 } });
  });

  it('refuses __proto__, constructor and prototype members and never touches Object.prototype', () => {
    for (const name of ['__proto__', 'constructor', 'prototype', '__pro\\u0074o__']) {
      const p = problemOf(() => parseStrictJson(bytes(`{"a":{"${name}":{"polluted":true}}}`)));
      expect(p.causeCode, name).to.equal('FORBIDDEN_JSON_MEMBER');
    }
    expect(({} as Record<string, unknown>)['polluted']).to.equal(undefined);
  });

  it('caps nesting depth and container sizes without a stack overflow', () => {
    const deep = '['.repeat(100_000) + ']'.repeat(100_000);
    expect(problemOf(() => parseStrictJson(bytes(deep))).causeCode).to.equal('JSON_TOO_DEEP');
    expect(parseStrictJson(bytes('['.repeat(32) + ']'.repeat(32)))).to.be.an('array');
    expect(problemOf(() => parseStrictJson(bytes(`[${'1,'.repeat(20)}1]`), { maxContainerItems: 10 })).causeCode).to.equal('INVALID_JSON');
  });

  it('refuses invalid UTF-8, trailing data, control characters, NaN and comments', () => {
    expect(problemOf(() => parseStrictJson(new Uint8Array([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d]))).detail).to.match(/UTF-8/);
    for (const bad of ['{"a":1}x', '{"a":"\u0001"}', '{"a":NaN}', '{"a":1,}', '{/*c*/"a":1}', "{'a':1}", '01', '{"a":1e999}', '']) {
      expect(problemOf(() => parseStrictJson(bytes(bad))).causeCode, bad).to.equal('INVALID_JSON');
    }
  });

  it('never echoes values in its messages', () => {
    const p = problemOf(() => parseStrictJson(bytes('{"externalId":"ue1@scef.test","externalId":"ue2@scef.test"}')));
    expect(JSON.stringify(p.toBody())).to.not.include('scef.test');
  });
});
