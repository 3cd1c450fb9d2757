import { isInnerList, parseItem, serializeInnerList, serializeItem, serializeParameters, serializeString } from 'structured-headers';
import type { Item, Parameters } from 'structured-headers';
import { SignatureError } from './errors.js';
import { combinedFieldValue, isResponse } from './message.js';
import type { HttpMessageView } from './message.js';
import { parseDictionaryStrict } from './structured-fields.js';

/**
 * Derived components of RFC 9421 section 2.2 that this library computes. `@signature-params`
 * is not here: it may never be covered (section 2.3).
 */
export const DERIVED_COMPONENTS = ['@method', '@target-uri', '@authority', '@scheme', '@request-target', '@path', '@query', '@query-param', '@status'] as const;

/** A covered component: a name (derived `@...` or a lower-case field name) and its parameters. */
export interface ComponentIdentifier {
  readonly name: string;
  readonly params: Parameters;
}

const FIELD_NAME = /^[!#$%&'*+\-.^_`|~0-9a-z]+$/;
/** What a component value may contain to enter a signature base: HTAB, SP and visible ASCII. */
const BASE_SAFE = /^[\t\x20-\x7e]*$/;

function malformed(message: string): SignatureError {
  return new SignatureError('SIGNATURE_MALFORMED', message);
}

/**
 * Checks an identifier against what this library supports, before any value is derived:
 * known derived names, lower-case field names, and only the parameters `req` (all),
 * `name` (`@query-param`) and `key` (fields). `sf`, `bs`, `tr` and unknown parameters are
 * refused: silently ignoring a parameter would sign or verify a different value than meant.
 */
export function checkComponent(component: ComponentIdentifier): void {
  const { name, params } = component;
  if (name === '@signature-params') throw malformed('"@signature-params" cannot be covered');
  if (name.startsWith('@')) {
    if (!(DERIVED_COMPONENTS as readonly string[]).includes(name)) {
      throw new SignatureError('COMPONENT_UNSUPPORTED', 'a covered derived component is not supported');
    }
  } else if (!FIELD_NAME.test(name)) {
    throw malformed('covered field names must be lower-case tokens');
  }
  for (const [param, value] of params) {
    const ok =
      (param === 'req' && value === true) ||
      (param === 'name' && name === '@query-param' && typeof value === 'string') ||
      (param === 'key' && !name.startsWith('@') && typeof value === 'string');
    if (!ok) {
      throw new SignatureError('COMPONENT_UNSUPPORTED', 'a covered component parameter is not supported');
    }
  }
  if (name === '@query-param' && !params.has('name')) {
    throw malformed('"@query-param" needs a name parameter');
  }
}

/**
 * Reads a component identifier from one item of a `Signature-Input` inner list.
 * @throws SignatureError when the item is not an sf-string or not supported
 */
export function componentFromItem(item: Item): ComponentIdentifier {
  const [name, params] = item;
  if (typeof name !== 'string' || name === '') throw malformed('component identifiers must be strings');
  const component = { name, params };
  checkComponent(component);
  return component;
}

/**
 * Reads a component given by application code, as `@method`, `content-digest;req`,
 * `@query-param;name="Pet"`, `signature;req;key="sig1"`, or in sf form (`"@method";req`).
 * @throws TypeError when the text is not a valid, supported identifier (a programming mistake)
 */
export function parseComponentSpec(spec: string): ComponentIdentifier {
  try {
    const semicolon = spec.indexOf(';');
    const text = spec.startsWith('"') ? spec : serializeString(semicolon < 0 ? spec : spec.slice(0, semicolon)) + (semicolon < 0 ? '' : spec.slice(semicolon));
    return componentFromItem(parseItem(text));
  } catch (err) {
    throw new TypeError(`invalid component identifier ${JSON.stringify(spec)}`, { cause: err });
  }
}

/** The identifier as it starts a signature base line and appears in `Signature-Input`. */
export function serializeComponent(component: ComponentIdentifier): string {
  return serializeItem([component.name, component.params]);
}

/** The identifier in the form {@link parseComponentSpec} reads: `content-digest;req`. */
export function componentSpec(component: ComponentIdentifier): string {
  return component.name + serializeParameters(component.params);
}

/** A key equal for identifiers that differ only in parameter order, to find duplicates. */
export function componentKey(component: ComponentIdentifier): string {
  const sorted = new Map([...component.params].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  return component.name + serializeParameters(sorted);
}

function absent(what: string): SignatureError {
  return new SignatureError('COMPONENT_NOT_PRESENT', `covered component ${what} is not in the message`);
}

/**
 * A target URI split as received: `scheme://authority` then the path and query exactly as the
 * message carries them. Nothing in the path or query is normalised (no dot-segment removal, no
 * percent-decoding or re-encoding, no case folding): a signature covers the request target that
 * was sent, so another spelling of "the same" resource is another target (RFC 9421 section 2.2).
 */
interface RawTarget {
  /** WHATWG-parsed, for the scheme, the host and `@query-param`; never for the path. */
  readonly url: URL;
  /** The path as sent; `/` when empty (RFC 9421 section 2.2.6). */
  readonly path: string;
  /** The query as sent, with its leading `?`; `''` when there is none. */
  readonly query: string;
}

/** `scheme://authority`, then path and query; no fragment (a request target never has one). */
const ABSOLUTE_URI = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?#]*([^?#]*)(\?[^#]*)?$/;

function rawTarget(context: HttpMessageView): RawTarget {
  if (context.targetUri === undefined) throw absent('target URI');
  const parts = ABSOLUTE_URI.exec(context.targetUri);
  let url: URL;
  try {
    if (!parts) throw new TypeError('not scheme://authority/path?query');
    url = new URL(context.targetUri);
  } catch (err) {
    throw new SignatureError('COMPONENT_NOT_PRESENT', 'the target URI is not an absolute URI', { cause: err });
  }
  return { url, path: parts[1] || '/', query: parts[2] ?? '' };
}

/** Scheme and authority, case-folded as RFC 3986 section 6.2.2.1 allows, default port dropped. */
function origin(target: RawTarget): string {
  return `${target.url.protocol}//${target.url.host}`;
}

function authorityOf(context: HttpMessageView): string {
  const { url } = rawTarget(context);
  if (context.authority === undefined) return url.host;
  try {
    // WHATWG host parsing: lower-cases and drops the scheme's default port (RFC 9110 4.2.3).
    return new URL(`${url.protocol}//${context.authority}`).host;
  } catch (err) {
    throw new SignatureError('COMPONENT_NOT_PRESENT', 'the authority is not a valid host', { cause: err });
  }
}

/**
 * RFC 9421 section 2.2.8 step 2: "percent-encode after encoding" with the
 * application/x-www-form-urlencoded percent-encode set, a space as %20 (as the RFC's examples).
 */
function formEncode(text: string): string {
  let out = '';
  for (const byte of Buffer.from(text, 'utf8')) {
    const char = String.fromCharCode(byte);
    out += /[A-Za-z0-9*\-._]/.test(char) ? char : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

function derivedValues(name: string, params: Parameters, context: HttpMessageView): string[] {
  if (name === '@status') {
    const status = context.status;
    if (status === undefined) throw absent('"@status"');
    if (!Number.isInteger(status) || status < 100 || status > 999) throw absent('"@status"');
    return [String(status)];
  }
  if (isResponse(context)) throw absent(`"${name}" (a response has no request target)`);
  switch (name) {
    case '@method':
      if (context.method === undefined || context.method === '') throw absent('"@method"');
      return [context.method];
    case '@target-uri': {
      const target = rawTarget(context);
      return [origin(target) + target.path + target.query];
    }
    case '@authority':
      return [authorityOf(context)];
    case '@scheme':
      return [rawTarget(context).url.protocol.slice(0, -1)];
    case '@request-target': {
      const target = rawTarget(context);
      return [target.path + target.query];
    }
    case '@path':
      return [rawTarget(context).path];
    case '@query':
      return [rawTarget(context).query || '?'];
    case '@query-param': {
      const wanted = params.get('name');
      const values = [...new URLSearchParams(rawTarget(context).query)].filter(([key]) => formEncode(key) === wanted).map(([, value]) => formEncode(value));
      if (values.length === 0) throw absent('"@query-param"');
      return values;
    }
    default:
      throw new SignatureError('COMPONENT_UNSUPPORTED', 'a covered derived component is not supported');
  }
}

function fieldValue(name: string, params: Parameters, context: HttpMessageView): string {
  const value = combinedFieldValue(context, name);
  if (value === undefined) throw absent(`"${name}"`);
  const key = params.get('key');
  if (typeof key !== 'string') return value;
  // RFC 9421 section 2.1.2: one member of a dictionary field, re-serialized.
  let member;
  try {
    member = parseDictionaryStrict(value).get(key);
  } catch (err) {
    throw new SignatureError('COMPONENT_INVALID', `covered field "${name}" is not a dictionary`, { cause: err });
  }
  if (member === undefined) throw absent(`"${name}" member`);
  return isInnerList(member) ? serializeInnerList(member) : serializeItem(member);
}

/**
 * The value(s) of one covered component (RFC 9421 section 2.1 for fields, 2.2 for derived
 * components). `;req` takes the value from `request`, the message a response answers. Usually one
 * value; `@query-param` has one per occurrence of the parameter.
 * @throws SignatureError COMPONENT_NOT_PRESENT, COMPONENT_INVALID or SIGNATURE_MALFORMED
 */
export function componentValues(component: ComponentIdentifier, message: HttpMessageView, request: HttpMessageView | undefined): string[] {
  const { name, params } = component;
  let context = message;
  if (params.has('req')) {
    if (!isResponse(message)) throw malformed('";req" is only meaningful on a response');
    if (request === undefined || isResponse(request)) throw absent(`"${name}";req (no request)`);
    context = request;
  }
  const values = name.startsWith('@') ? derivedValues(name, params, context) : [fieldValue(name, params, context)];
  for (const value of values) {
    if (!BASE_SAFE.test(value)) {
      const what = `covered component "${name}" has bytes a signature base cannot hold`;
      throw new SignatureError('COMPONENT_INVALID', what);
    }
  }
  return values;
}
