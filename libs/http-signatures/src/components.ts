import { isInnerList, parseItem, serializeString } from 'structured-headers';
import type { BareItem, Item, Parameters } from 'structured-headers';
import { SignatureError } from './errors.js';
import { combinedFieldValue, isResponse } from './message.js';
import type { HttpMessageView } from './message.js';
import { fieldDictionary } from './message-dictionaries.js';
import { serializeInnerListQuick, serializeItemQuick, serializeParametersQuick, serializeStringQuick } from './quick-serialize.js';

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

const DERIVED_NAMES: ReadonlySet<string> = new Set(DERIVED_COMPONENTS);

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
    if (!DERIVED_NAMES.has(name)) {
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

/** Parameters of a cached component: shared between callers, so they cannot be changed. */
class FrozenParameters extends Map<string, BareItem> {
  constructor(entries: Parameters) {
    super();
    for (const [key, value] of entries) super.set(key, value);
  }

  override set(): never {
    throw new TypeError('the parameters of a parsed component identifier cannot be changed');
  }

  override delete(): never {
    throw new TypeError('the parameters of a parsed component identifier cannot be changed');
  }

  override clear(): never {
    throw new TypeError('the parameters of a parsed component identifier cannot be changed');
  }
}

/**
 * Component identifiers application code names, by their text. The same few strings come with
 * every message signed or verified, and reading one costs an sf parse; the bound keeps a caller
 * that builds identifiers on the fly (a `@query-param` name per request) from growing it.
 */
const parsedSpecs = new Map<string, ComponentIdentifier>();
/** Most identifiers {@link parsedSpecs} holds; when full it starts again from empty. */
export const MAX_CACHED_COMPONENT_SPECS = 256;

/** The serialized form and duplicate key of each shared (frozen) identifier, worked out once. */
const sharedForms = new WeakMap<ComponentIdentifier, { readonly serialized: string; readonly key: string }>();

function readComponentSpec(spec: string): ComponentIdentifier {
  try {
    const semicolon = spec.indexOf(';');
    const text = spec.startsWith('"') ? spec : serializeString(semicolon < 0 ? spec : spec.slice(0, semicolon)) + (semicolon < 0 ? '' : spec.slice(semicolon));
    return componentFromItem(parseItem(text));
  } catch (err) {
    throw new TypeError(`invalid component identifier ${JSON.stringify(spec)}`, { cause: err });
  }
}

/**
 * Reads a component given by application code, as `@method`, `content-digest;req`,
 * `@query-param;name="Pet"`, `signature;req;key="sig1"`, or in sf form (`"@method";req`).
 * The result is shared by every caller naming the same text: it is frozen, parameters included.
 * @throws TypeError when the text is not a valid, supported identifier (a programming mistake)
 */
export function parseComponentSpec(spec: string): ComponentIdentifier {
  const cached = parsedSpecs.get(spec);
  if (cached !== undefined) return cached;
  const { name, params } = readComponentSpec(spec);
  const component: ComponentIdentifier = Object.freeze({ name, params: new FrozenParameters(params) });
  sharedForms.set(component, { serialized: serializedForm(component), key: keyForm(component) });
  if (parsedSpecs.size >= MAX_CACHED_COMPONENT_SPECS) parsedSpecs.clear();
  parsedSpecs.set(spec, component);
  return component;
}

/** The identifier as it starts a signature base line and appears in `Signature-Input`. */
export function serializeComponent(component: ComponentIdentifier): string {
  return sharedForms.get(component)?.serialized ?? serializedForm(component);
}

function serializedForm(component: ComponentIdentifier): string {
  return serializeStringQuick(component.name) + serializeParametersQuick(component.params);
}

/** The identifier in the form {@link parseComponentSpec} reads: `content-digest;req`. */
export function componentSpec(component: ComponentIdentifier): string {
  return component.name + serializeParametersQuick(component.params);
}

/** A key equal for identifiers that differ only in parameter order, to find duplicates. */
export function componentKey(component: ComponentIdentifier): string {
  return sharedForms.get(component)?.key ?? keyForm(component);
}

function keyForm(component: ComponentIdentifier): string {
  const { name, params } = component;
  if (inKeyOrder(params)) return name + serializeParametersQuick(params);
  const sorted = new Map([...params].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  return name + serializeParametersQuick(sorted);
}

/** True when the parameter names are already ascending (always so for zero or one parameter). */
function inKeyOrder(params: Parameters): boolean {
  let previous = '';
  for (const key of params.keys()) {
    if (key < previous) return false;
    previous = key;
  }
  return true;
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
  /** The scheme with its colon, WHATWG-parsed (lower case): `https:`. */
  readonly protocol: string;
  /** Host and port, WHATWG-parsed: lower case, the scheme's default port dropped. */
  readonly host: string;
  /** The path as sent; `/` when empty (RFC 9421 section 2.2.6). */
  readonly path: string;
  /** The query as sent, with its leading `?`; `''` when there is none. */
  readonly query: string;
}

/** `scheme://authority`, then path and query; no fragment (a request target never has one). */
const ABSOLUTE_URI = /^([A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?#]*)([^?#]*)(\?[^#]*)?$/;

/**
 * An http(s) `scheme://authority` of letters, digits, `.`, `-` and `:` only. The URL parser ends
 * such an authority exactly where {@link ABSOLUTE_URI} does and strips nothing from it, and what
 * follows it (path, query) never changes the host nor makes parsing fail: every target URI with
 * this prefix has the same scheme and host.
 */
const PLAIN_ORIGIN = /^https?:\/\/[a-z0-9.:-]+$/i;

/** Scheme and host of target URIs, by their plain `scheme://authority` prefix. */
const parsedOrigins = new Map<string, { readonly protocol: string; readonly host: string }>();
/** Bound on {@link parsedOrigins}: the authority comes from the client. When full it starts again. */
const MAX_CACHED_ORIGINS = 64;

function notAbsolute(cause: unknown): SignatureError {
  return new SignatureError('COMPONENT_NOT_PRESENT', 'the target URI is not an absolute URI', { cause });
}

function parseOrigin(targetUri: string, prefix: string): { readonly protocol: string; readonly host: string } {
  let url: URL;
  try {
    url = new URL(targetUri);
  } catch (err) {
    throw notAbsolute(err);
  }
  const parsed = { protocol: url.protocol, host: url.host };
  if (PLAIN_ORIGIN.test(prefix)) {
    if (parsedOrigins.size >= MAX_CACHED_ORIGINS) parsedOrigins.clear();
    parsedOrigins.set(prefix, parsed);
  }
  return parsed;
}

function rawTarget(context: HttpMessageView): RawTarget {
  if (context.targetUri === undefined) throw absent('target URI');
  const parts = ABSOLUTE_URI.exec(context.targetUri);
  if (!parts) throw notAbsolute(new TypeError('not scheme://authority/path?query'));
  const [, prefix, path, query] = parts;
  const { protocol, host } = parsedOrigins.get(prefix) ?? parseOrigin(context.targetUri, prefix);
  return { protocol, host, path: path || '/', query: query ?? '' };
}

/** Scheme and authority, case-folded as RFC 3986 section 6.2.2.1 allows, default port dropped. */
function origin(target: RawTarget): string {
  return `${target.protocol}//${target.host}`;
}

function authorityOf(context: HttpMessageView): string {
  const target = rawTarget(context);
  if (context.authority === undefined) return target.host;
  try {
    // WHATWG host parsing: lower-cases and drops the scheme's default port (RFC 9110 4.2.3).
    return new URL(`${target.protocol}//${context.authority}`).host;
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
      return [rawTarget(context).protocol.slice(0, -1)];
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
    member = fieldDictionary(context, name, value).get(key);
  } catch (err) {
    throw new SignatureError('COMPONENT_INVALID', `covered field "${name}" is not a dictionary`, { cause: err });
  }
  if (member === undefined) throw absent(`"${name}" member`);
  return isInnerList(member) ? serializeInnerListQuick(member) : serializeItemQuick(member);
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
