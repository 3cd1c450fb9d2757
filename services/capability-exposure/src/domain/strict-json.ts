import { PROBLEM_CAUSES, T8Problem } from './problem.js';

/** Deepest nesting accepted; T8 bodies are a handful of levels deep. */
export const DEFAULT_MAX_JSON_DEPTH = 32;
/** Most members or elements accepted in one object or array. */
export const DEFAULT_MAX_JSON_CONTAINER_ITEMS = 10_000;

/** Member names refused anywhere in a body: they reach object prototypes in JavaScript. */
const FORBIDDEN_MEMBERS: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype']);

export interface StrictJsonLimits {
  readonly maxDepth?: number;
  readonly maxContainerItems?: number;
}

/**
 * Parses JSON (RFC 8259) strictly: duplicate member names, `__proto__`/`constructor`/`prototype`
 * members, nesting beyond a depth cap, invalid UTF-8 and trailing data are refused with a 400
 * T8Problem. `JSON.parse` keeps the last of duplicate members silently, which lets a body say
 * one thing to a signature checker or logger and another to the handler; this parser does not.
 * Objects are built without a prototype chain and then copied to plain objects with
 * defineProperty, so no member can reach Object.prototype.
 */
export function parseStrictJson(bytes: Uint8Array, limits: StrictJsonLimits = {}): unknown {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false }).decode(bytes);
  } catch {
    throw new T8Problem(400, PROBLEM_CAUSES.invalidJson, 'the body is not valid UTF-8');
  }
  return new StrictParser(text, limits.maxDepth ?? DEFAULT_MAX_JSON_DEPTH, limits.maxContainerItems ?? DEFAULT_MAX_JSON_CONTAINER_ITEMS).parseDocument();
}

class StrictParser {
  private pos = 0;
  constructor(
    private readonly text: string,
    private readonly maxDepth: number,
    private readonly maxItems: number,
  ) {}

  parseDocument(): unknown {
    this.ws();
    const value = this.value(0);
    this.ws();
    if (this.pos !== this.text.length) this.fail('unexpected data after the JSON value');
    return value;
  }

  private fail(why: string): never {
    throw new T8Problem(400, PROBLEM_CAUSES.invalidJson, `the body is not valid JSON: ${why} at offset ${this.pos}`);
  }

  private ws(): void {
    for (;;) {
      const c = this.text.charCodeAt(this.pos);
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) this.pos++;
      else return;
    }
  }

  private value(depth: number): unknown {
    if (depth > this.maxDepth) throw new T8Problem(400, PROBLEM_CAUSES.jsonTooDeep, `the body nests deeper than ${this.maxDepth} levels`);
    const c = this.text[this.pos];
    switch (c) {
      case '{':
        return this.object(depth);
      case '[':
        return this.array(depth);
      case '"':
        return this.string();
      case 't':
        return this.literal('true', true);
      case 'f':
        return this.literal('false', false);
      case 'n':
        return this.literal('null', null);
      default:
        if (c === '-' || (c !== undefined && c >= '0' && c <= '9')) return this.number();
        return this.fail('unexpected character');
    }
  }

  private literal<T>(word: string, value: T): T {
    if (this.text.startsWith(word, this.pos)) {
      this.pos += word.length;
      return value;
    }
    return this.fail('invalid literal');
  }

  private number(): number {
    const m = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/.exec(this.text.slice(this.pos, this.pos + 400));
    if (!m) return this.fail('invalid number');
    this.pos += m[0].length;
    const n = Number(m[0]);
    if (!Number.isFinite(n)) this.fail('number out of range');
    return n;
  }

  private string(): string {
    // Find the closing quote, then let JSON.parse decode escapes of this one string.
    const start = this.pos;
    this.pos++;
    for (;;) {
      const c = this.text.charCodeAt(this.pos);
      if (Number.isNaN(c)) this.fail('unterminated string');
      if (c === 0x22) break;
      if (c < 0x20) this.fail('control character in string');
      if (c === 0x5c) this.pos++;
      this.pos++;
    }
    this.pos++;
    try {
      return JSON.parse(this.text.slice(start, this.pos)) as string;
    } catch {
      return this.fail('invalid string escape');
    }
  }

  private array(depth: number): unknown[] {
    this.pos++;
    const out: unknown[] = [];
    this.ws();
    if (this.text[this.pos] === ']') {
      this.pos++;
      return out;
    }
    for (;;) {
      this.ws();
      out.push(this.value(depth + 1));
      if (out.length > this.maxItems) this.fail('too many array elements');
      this.ws();
      const c = this.text[this.pos++];
      if (c === ']') return out;
      if (c !== ',') this.fail('expected , or ]');
    }
  }

  private object(depth: number): Record<string, unknown> {
    this.pos++;
    const out: Record<string, unknown> = {};
    const seen = new Set<string>();
    this.ws();
    if (this.text[this.pos] === '}') {
      this.pos++;
      return out;
    }
    for (;;) {
      this.ws();
      if (this.text[this.pos] !== '"') this.fail('expected a member name');
      const name = this.string();
      if (FORBIDDEN_MEMBERS.has(name)) {
        throw new T8Problem(400, PROBLEM_CAUSES.forbiddenMember, 'the body contains a member name that is not allowed', [{ param: name, reason: 'member name not allowed' }]);
      }
      if (seen.has(name)) {
        throw new T8Problem(400, PROBLEM_CAUSES.duplicateMember, 'the body repeats a member name', [{ param: name.slice(0, 128), reason: 'duplicate member' }]);
      }
      seen.add(name);
      if (seen.size > this.maxItems) this.fail('too many object members');
      this.ws();
      if (this.text[this.pos++] !== ':') this.fail('expected :');
      this.ws();
      Object.defineProperty(out, name, { value: this.value(depth + 1), enumerable: true, writable: true, configurable: true });
      this.ws();
      const c = this.text[this.pos++];
      if (c === '}') return out;
      if (c !== ',') this.fail('expected , or }');
    }
  }
}
