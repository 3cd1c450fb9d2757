import type { Dictionary, InnerList, Item, Parameters } from 'structured-headers';

/**
 * A quick reader for the one-member dictionaries signatures are made of: `sig1=("@method" ...);created=...`,
 * `sig1=:<base64>:` and `sha-256=:<base64>:`. structured-headers reads character by character
 * through regular expressions, which costs more per request than the rest of the signature code.
 *
 * It follows structured-headers' parser step by step for a subset: one member with a value, inner
 * lists, sf-strings without escapes, non-negative integers, byte sequences in canonical base64, and
 * parameters of those. Whatever falls outside that subset, valid or not, gives `undefined` and the
 * caller parses with structured-headers, which stays the reference: a result from here is always
 * the one structured-headers returns (the tests compare both on many generated inputs).
 */
export function parseSimpleDictionary(input: string): Dictionary | undefined {
  const reader = new Reader(input);
  reader.skipSpaces();
  const key = reader.key();
  if (key === undefined || !reader.take(EQUALS)) return undefined;
  const member = reader.peek() === OPEN ? reader.innerList() : reader.item();
  if (member === undefined) return undefined;
  reader.skipOptionalWhitespace();
  if (!reader.atEnd()) return undefined;
  return new Map([[key, member]]);
}

/** The bare items read here (a parameter without a value is `true`). */
type SimpleBareItem = string | number | boolean | ArrayBuffer;

const SPACE = 0x20;
const TAB = 0x09;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN = 0x28;
const CLOSE = 0x29;
const SEMICOLON = 0x3b;
const EQUALS = 0x3d;
const COLON = 0x3a;
const PERIOD = 0x2e;
const END = -1;

/** Most digits structured-headers reads in an integer. */
const MAX_INTEGER_DIGITS = 15;

function isDigit(code: number): boolean {
  return code >= 0x30 && code <= 0x39;
}

function isKeyStart(code: number): boolean {
  return (code >= 0x61 && code <= 0x7a) || code === 0x2a;
}

function isKeyChar(code: number): boolean {
  return isKeyStart(code) || isDigit(code) || code === 0x5f || code === 0x2d || code === PERIOD;
}

class Reader {
  private pos = 0;

  constructor(private readonly input: string) {}

  peek(): number {
    return this.pos < this.input.length ? this.input.charCodeAt(this.pos) : END;
  }

  atEnd(): boolean {
    return this.pos >= this.input.length;
  }

  take(code: number): boolean {
    if (this.peek() !== code) return false;
    this.pos++;
    return true;
  }

  skipSpaces(): void {
    while (this.peek() === SPACE) this.pos++;
  }

  skipOptionalWhitespace(): void {
    for (let code = this.peek(); code === SPACE || code === TAB; code = this.peek()) this.pos++;
  }

  key(): string | undefined {
    const start = this.pos;
    if (!isKeyStart(this.peek())) return undefined;
    this.pos++;
    while (isKeyChar(this.peek())) this.pos++;
    return this.input.slice(start, this.pos);
  }

  innerList(): InnerList | undefined {
    this.pos++;
    const items: Item[] = [];
    for (;;) {
      this.skipSpaces();
      if (this.take(CLOSE)) break;
      const item = this.item();
      if (item === undefined) return undefined;
      items.push(item);
      const next = this.peek();
      if (next !== SPACE && next !== CLOSE) return undefined;
    }
    const params = this.parameters();
    return params === undefined ? undefined : [items, params];
  }

  item(): Item | undefined {
    const value: SimpleBareItem | undefined = this.bareItem();
    if (value === undefined) return undefined;
    const params = this.parameters();
    return params === undefined ? undefined : [value, params];
  }

  parameters(): Parameters | undefined {
    const params: Parameters = new Map();
    while (this.take(SEMICOLON)) {
      this.skipSpaces();
      const key = this.key();
      if (key === undefined) return undefined;
      let value: SimpleBareItem | undefined = true;
      if (this.take(EQUALS)) {
        value = this.bareItem();
        if (value === undefined) return undefined;
      }
      params.set(key, value);
    }
    return params;
  }

  private bareItem(): SimpleBareItem | undefined {
    const code = this.peek();
    if (code === QUOTE) return this.string();
    if (isDigit(code)) return this.integer();
    if (code === COLON) return this.byteSequence();
    return undefined;
  }

  private string(): string | undefined {
    const start = ++this.pos;
    for (let code = this.peek(); code !== QUOTE; code = this.peek()) {
      if (code < 0x20 || code > 0x7e || code === BACKSLASH) return undefined;
      this.pos++;
    }
    const value = this.input.slice(start, this.pos);
    this.pos++;
    return value;
  }

  private integer(): number | undefined {
    const start = this.pos;
    while (isDigit(this.peek())) this.pos++;
    if (this.pos - start > MAX_INTEGER_DIGITS || this.peek() === PERIOD) return undefined;
    return parseInt(this.input.slice(start, this.pos), 10);
  }

  private byteSequence(): ArrayBuffer | undefined {
    const start = this.pos + 1;
    const end = this.input.indexOf(':', start);
    if (end === -1) return undefined;
    const text = this.input.slice(start, end);
    if (text.length % 4 !== 0) return undefined;
    const padding = text.endsWith('==') ? 2 : text.endsWith('=') ? 1 : 0;
    // Decoded straight into a buffer of exactly its length, as structured-headers returns.
    const bytes = new ArrayBuffer((text.length / 4) * 3 - padding);
    const view = Buffer.from(bytes);
    view.write(text, 'base64');
    // Only base64 exactly as it would be printed (alphabet, padding, zero spare bits) is kept:
    // atob, which structured-headers uses, reads such text as these same bytes.
    if (view.toString('base64') !== text) return undefined;
    this.pos = end + 1;
    return bytes;
  }
}
