import type { KeyObject } from 'node:crypto';
import type { BareItem, Parameters } from 'structured-headers';
import { DEFAULT_ALLOWED_ALGORITHMS, keyFitsAlgorithm, signBytes } from './algorithms.js';
import type { SignatureAlgorithm } from './algorithms.js';
import { parseComponentSpec } from './components.js';
import { SignatureError } from './errors.js';
import type { HttpMessageView } from './message.js';
import { serializeBytesMember, serializeStringQuick } from './quick-serialize.js';
import { assertNoDuplicateComponents, buildSignatureBase } from './signature-base.js';
import type { SignatureBase } from './signature-base.js';
import { assertDictionaryKey } from './structured-fields.js';

/**
 * Signature parameters (RFC 9421 section 2.3). They are serialized in the object's own key order,
 * because that order is part of what is signed (B.2.1 prints `created;keyid;nonce`).
 */
export interface SignatureParamsInput {
  /** Integer seconds since the epoch. */
  readonly created: number;
  readonly expires?: number;
  readonly nonce?: string;
  readonly alg?: SignatureAlgorithm;
  readonly keyid: string;
  readonly tag?: string;
}

/** Options of {@link signMessage}. */
export interface SignMessageOptions {
  /** The dictionary key of the signature, `sig1` in the T8 profile. */
  readonly label: string;
  /** Covered components in order, e.g. `['@status', 'content-digest', 'signature;req;key="sig1"']`. */
  readonly components: readonly string[];
  readonly params: SignatureParamsInput;
  /** A private key (or an HMAC secret) fitting `alg`. */
  readonly key: KeyObject;
  readonly alg: SignatureAlgorithm;
  /** The request a response answers, for components with `;req`. */
  readonly request?: HttpMessageView;
  /** Defaults to the T8 profile, {@link DEFAULT_ALLOWED_ALGORITHMS}. */
  readonly allowedAlgorithms?: readonly SignatureAlgorithm[];
}

/** Field values to add to the message, and the base that was signed (for logs and tests). */
export interface SignedFields {
  /** The `Signature-Input` field value: `sig1=("@method" ...);created=...;keyid="..."`. */
  readonly signatureInput: string;
  /** The `Signature` field value: `sig1=:<base64>:`. */
  readonly signature: string;
  readonly signatureBase: string;
}

function toSfParameters(input: SignatureParamsInput): Parameters {
  const out: Parameters = new Map<string, BareItem>();
  for (const [name, value] of Object.entries(input) as [string, unknown][]) {
    if (value === undefined) continue;
    if (name === 'created' || name === 'expires') {
      if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
        throw new TypeError(`signature parameter ${name} must be integer seconds`);
      }
    } else if (['nonce', 'alg', 'keyid', 'tag'].includes(name)) {
      if (typeof value !== 'string' || value === '') {
        throw new TypeError(`signature parameter ${name} must be a non-empty string`);
      }
      try {
        serializeStringQuick(value);
      } catch (err) {
        throw new TypeError(`signature parameter ${name} must be printable ASCII`, { cause: err });
      }
    } else {
      throw new TypeError(`unknown signature parameter ${name}`);
    }
    out.set(name, value);
  }
  if (!out.has('created') || !out.has('keyid')) throw new TypeError('created and keyid are required');
  return out;
}

/**
 * The signature base (RFC 9421 section 2.5) that {@link signMessage} signs for these options,
 * without signing. For tests against printed vectors and for debugging a peer's failures.
 * @throws TypeError for a bad option or a covered component the message does not have
 */
export function createSignatureBase(message: HttpMessageView, options: Pick<SignMessageOptions, 'components' | 'params' | 'request'>): SignatureBase {
  const components = options.components.map(parseComponentSpec);
  try {
    const params = toSfParameters(options.params);
    assertNoDuplicateComponents(components);
    return buildSignatureBase(message, components, params, options.request);
  } catch (err) {
    if (err instanceof SignatureError) throw new TypeError(`cannot sign: ${err.message}`, { cause: err });
    throw err;
  }
}

/**
 * Signs an HTTP request or response (RFC 9421 section 3.1) and returns the `Signature-Input` and
 * `Signature` field values to add. Every mistake here is the application's (a covered header not
 * set, a wrong key), so everything throws TypeError, never a 401-shaped error.
 */
export function signMessage(message: HttpMessageView, options: SignMessageOptions): SignedFields {
  const { label, alg, key } = options;
  assertDictionaryKey(label);
  const allowed = options.allowedAlgorithms ?? DEFAULT_ALLOWED_ALGORITHMS;
  if (!allowed.includes(alg)) throw new TypeError(`algorithm ${alg} is not allowed`);
  if (!keyFitsAlgorithm(alg, key, 'sign')) throw new TypeError(`the key does not fit ${alg}`);
  if (options.params.alg !== undefined && options.params.alg !== alg) {
    throw new TypeError('params.alg differs from alg');
  }
  const built = createSignatureBase(message, options);
  const bytes = signBytes(alg, key, Buffer.from(built.base, 'ascii'));
  return {
    signatureInput: `${label}=${built.signatureParams}`,
    signature: serializeBytesMember(label, bytes),
    signatureBase: built.base,
  };
}
