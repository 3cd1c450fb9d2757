import type { KeyObject } from 'node:crypto';
import { Token } from 'structured-headers';
import type { Dictionary, Parameters } from 'structured-headers';
import { DEFAULT_ALLOWED_ALGORITHMS, isSignatureAlgorithm, keyFitsAlgorithm, verifyBytes } from './algorithms.js';
import type { SignatureAlgorithm } from './algorithms.js';
import { componentFromItem, componentKey, componentSpec, parseComponentSpec } from './components.js';
import type { ComponentIdentifier } from './components.js';
import { SignatureError } from './errors.js';
import { combinedFieldValue } from './message.js';
import type { HttpMessageView } from './message.js';
import { fieldDictionary } from './message-dictionaries.js';
import { isAcceptableNonce } from './nonce.js';
import type { NonceRule } from './nonce.js';
import { assertNoDuplicateComponents, buildSignatureBase } from './signature-base.js';
import { assertDictionaryKey, DictionaryParseError } from './structured-fields.js';

/**
 * Bound on `Signature-Input` and on `Signature` (each, all field lines together), checked before
 * parsing. A T8 signature input is about 200 bytes and an Ed25519/P-256 signature 92.
 */
export const DEFAULT_MAX_SIGNATURE_HEADER_BYTES = 4096;

/** A key the verifier trusts for a keyid, with the one algorithm it is registered for. */
export interface ResolvedKey {
  readonly alg: SignatureAlgorithm;
  /** A public key (or an HMAC secret) fitting `alg`. */
  readonly key: KeyObject;
}

/** Signature parameters a verifier can insist on. */
export type RequirableParam = 'created' | 'expires' | 'nonce' | 'keyid' | 'alg' | 'tag';

/** Options of {@link verifyMessageSignature}. */
export interface VerifyMessageSignatureOptions {
  /** The label to verify (`sig1`); other signatures in the message are parsed but not verified. */
  readonly label: string;
  /** Components that must be covered, e.g. `['@method', '@target-uri', 'authorization']`. */
  readonly requiredComponents: readonly string[];
  /** Parameters that must be present; `keyid` is always required. */
  readonly requiredParams: readonly RequirableParam[];
  /** If set, any other parameter is refused (PARAM_NOT_ALLOWED). */
  readonly allowedParams?: readonly string[];
  /** Defaults to the T8 profile, {@link DEFAULT_ALLOWED_ALGORITHMS}. */
  readonly allowedAlgorithms?: readonly SignatureAlgorithm[];
  /** If set, `tag` must be present and equal (TAG_MISMATCH). */
  readonly expectedTag?: string;
  /**
   * If set, a `nonce` must be unpadded base64url decoding to at least `minBytes` and at most
   * `maxChars` long (NONCE_INVALID); require it with `requiredParams` too. Checked before the
   * time window and any cryptography, so a weak nonce never reaches a replay store.
   */
  readonly nonce?: NonceRule;
  /**
   * If set, `created` must lie in `[nowSeconds - maxAgeSeconds, nowSeconds + maxFutureSeconds]`
   * and `expires`, when present, must be after `nowSeconds`.
   */
  readonly validity?: {
    readonly nowSeconds: number;
    readonly maxAgeSeconds: number;
    readonly maxFutureSeconds: number;
  };
  /**
   * The key registered for `keyid` for this caller, or `undefined` (UNKNOWN_KEY). A key of another
   * AS must resolve to `undefined`. Errors it throws (a store being down) propagate unchanged.
   */
  resolveKey(keyid: string): Promise<ResolvedKey | undefined>;
  /** The request a response answers, for components with `;req`. */
  readonly request?: HttpMessageView;
  /** Defaults to {@link DEFAULT_MAX_SIGNATURE_HEADER_BYTES}; applies to each of the two fields. */
  readonly maxSignatureInputBytes?: number;
}

/** What a verified signature says. */
export interface VerifiedSignature {
  readonly label: string;
  readonly keyid: string;
  readonly alg: SignatureAlgorithm;
  readonly created?: number;
  readonly expires?: number;
  readonly nonce?: string;
  readonly tag?: string;
  /** Covered components in signed order, in {@link parseComponentSpec} form (`content-digest;req`). */
  readonly coveredComponents: readonly string[];
  /** All signature parameters, in signed order, including ones this library does not know. */
  readonly params: Readonly<Record<string, string | number | boolean>>;
  /** The `@signature-params` value that was signed. */
  readonly signatureParams: string;
}

/** Everything a verification is told besides where its key comes from. */
type VerificationRules = Omit<VerifyMessageSignatureOptions, 'resolveKey'>;

const KNOWN_PARAM_TYPES: Readonly<Record<string, 'integer' | 'string'>> = {
  created: 'integer',
  expires: 'integer',
  nonce: 'string',
  alg: 'string',
  keyid: 'string',
  tag: 'string',
};

function readField(message: HttpMessageView, name: string, maxBytes: number): Dictionary {
  const value = combinedFieldValue(message, name);
  if (value === undefined || value === '') {
    const what = 'the message is not signed (Signature-Input and Signature are required)';
    throw new SignatureError('SIGNATURE_MISSING', what);
  }
  if (Buffer.byteLength(value) > maxBytes) {
    throw new SignatureError('SIGNATURE_HEADER_TOO_LARGE', `the ${name} field is too large`);
  }
  try {
    return fieldDictionary(message, name, value);
  } catch (err) {
    if (err instanceof DictionaryParseError && err.problem === 'duplicate-key') {
      throw new SignatureError('DUPLICATE_LABEL', `the ${name} field repeats a label`, { cause: err });
    }
    throw new SignatureError('SIGNATURE_MALFORMED', `the ${name} field is not a valid dictionary`, { cause: err });
  }
}

function plainParams(params: Parameters): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {};
  for (const [name, value] of params) {
    const expected = KNOWN_PARAM_TYPES[name];
    if (expected === 'integer' && !(typeof value === 'number' && Number.isInteger(value) && value >= 0)) {
      throw new SignatureError('SIGNATURE_MALFORMED', `signature parameter ${name} must be an integer`);
    }
    if (expected === 'string' && typeof value !== 'string') {
      throw new SignatureError('SIGNATURE_MALFORMED', `signature parameter ${name} must be a string`);
    }
    if (value instanceof Token) out[name] = value.toString();
    else if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') {
      out[name] = value;
    } else {
      throw new SignatureError('SIGNATURE_MALFORMED', 'a signature parameter has an unsupported type');
    }
  }
  return out;
}

function checkTimes(created: number | undefined, expires: number | undefined, validity: NonNullable<VerificationRules['validity']>): void {
  const { nowSeconds, maxAgeSeconds, maxFutureSeconds } = validity;
  if (created === undefined) throw new SignatureError('PARAM_MISSING', 'signature parameter created is required');
  if (created < nowSeconds - maxAgeSeconds) {
    throw new SignatureError('CREATED_TOO_OLD', 'the signature was created too long ago');
  }
  if (created > nowSeconds + maxFutureSeconds) {
    throw new SignatureError('CREATED_IN_FUTURE', 'the signature was created in the future');
  }
  if (expires !== undefined && expires <= nowSeconds) {
    throw new SignatureError('SIGNATURE_EXPIRED', 'the signature has expired');
  }
}

/** The labelled signature's covered components, parameters and bytes, checked for shape only. */
function readSignature(message: HttpMessageView, options: VerificationRules): { covered: ComponentIdentifier[]; params: Parameters; bytes: Buffer } {
  const maxBytes = options.maxSignatureInputBytes ?? DEFAULT_MAX_SIGNATURE_HEADER_BYTES;
  const input = readField(message, 'signature-input', maxBytes);
  const signature = readField(message, 'signature', maxBytes);
  const member = input.get(options.label);
  const value = signature.get(options.label);
  if (member === undefined || value === undefined) {
    throw new SignatureError('LABEL_MISSING', `no signature labelled ${options.label}`);
  }
  const [items, params] = member;
  const [bytes] = value;
  if (!Array.isArray(items)) {
    throw new SignatureError('SIGNATURE_MALFORMED', 'Signature-Input members must be inner lists');
  }
  if (Array.isArray(bytes) || !(bytes instanceof ArrayBuffer) || bytes.byteLength === 0) {
    throw new SignatureError('SIGNATURE_MALFORMED', 'Signature members must be byte sequences');
  }
  const covered = items.map(componentFromItem);
  assertNoDuplicateComponents(covered);
  return { covered, params, bytes: Buffer.from(bytes) };
}

function requireParam(plain: Record<string, string | number | boolean>, name: string): void {
  if (plain[name] === undefined) {
    throw new SignatureError('PARAM_MISSING', `signature parameter ${name} is required`);
  }
}

/** Applies the allow-list, required parameters, expected tag and time window. */
function checkParams(plain: Record<string, string | number | boolean>, options: VerificationRules): Record<string, string | number | boolean> {
  const { allowedParams, expectedTag, validity } = options;
  if (allowedParams !== undefined && Object.keys(plain).some(name => !allowedParams.includes(name))) {
    throw new SignatureError('PARAM_NOT_ALLOWED', 'the signature has a parameter this endpoint does not accept');
  }
  // In the order given, then keyid (a name listed twice fails at its first place either way).
  for (const name of options.requiredParams) requireParam(plain, name);
  requireParam(plain, 'keyid');
  if (expectedTag !== undefined && plain.tag !== expectedTag) {
    throw new SignatureError('TAG_MISMATCH', 'the signature tag is not the one this endpoint expects');
  }
  if (options.nonce !== undefined && plain.nonce !== undefined && !isAcceptableNonce(plain.nonce as string, options.nonce)) {
    const { minBytes, maxChars } = options.nonce;
    throw new SignatureError('NONCE_INVALID', `the signature nonce must be unpadded base64url of at least ${minBytes} bytes and at most ${maxChars} characters`);
  }
  if (validity !== undefined) {
    checkTimes(plain.created as number | undefined, plain.expires as number | undefined, validity);
  }
  return plain;
}

/** What is left to check once the key is known: the parts read from the message. */
interface PreparedVerification {
  readonly keyid: string;
  readonly algParam: string | undefined;
  readonly allowedAlgorithms: readonly SignatureAlgorithm[];
  readonly covered: readonly ComponentIdentifier[];
  readonly plain: Record<string, string | number | boolean>;
  readonly bytes: Buffer;
  readonly base: string;
  readonly signatureParams: string;
}

/** Every check that needs no key, in the order {@link verifyMessageSignature} documents. */
function prepareVerification(message: HttpMessageView, options: VerificationRules): PreparedVerification {
  assertDictionaryKey(options.label);
  // A malformed required spec is the caller's mistake: reported before anything else.
  const requiredComponents = options.requiredComponents.map(parseComponentSpec);
  const allowedAlgorithms = options.allowedAlgorithms ?? DEFAULT_ALLOWED_ALGORITHMS;
  const { covered, params, bytes } = readSignature(message, options);
  const plain = checkParams(plainParams(params), options);
  const keyid = plain.keyid as string;
  const algParam = plain.alg as string | undefined;
  const coveredKeys = new Set(covered.map(componentKey));
  for (const required of requiredComponents) {
    if (!coveredKeys.has(componentKey(required))) {
      throw new SignatureError('COMPONENT_MISSING', `the signature must cover ${componentSpec(required)}`);
    }
  }
  if (algParam !== undefined && !(isSignatureAlgorithm(algParam) && allowedAlgorithms.includes(algParam))) {
    throw new SignatureError('ALGORITHM_NOT_ALLOWED', 'the signature algorithm is not allowed');
  }
  const { base, signatureParams } = buildSignatureBase(message, covered, params, options.request);
  return { keyid, algParam, allowedAlgorithms, covered, plain, bytes, base, signatureParams };
}

/** The key's checks and the cryptography, once the key is resolved. */
function finishVerification(prepared: PreparedVerification, resolved: ResolvedKey | undefined, label: string): VerifiedSignature {
  const { keyid, algParam, allowedAlgorithms, covered, plain, bytes, base, signatureParams } = prepared;
  if (resolved === undefined) throw new SignatureError('UNKNOWN_KEY', 'unknown keyid');
  if (!allowedAlgorithms.includes(resolved.alg)) {
    throw new SignatureError('ALGORITHM_NOT_ALLOWED', "the key's algorithm is not allowed");
  }
  if (algParam !== undefined && algParam !== resolved.alg) {
    throw new SignatureError('ALGORITHM_MISMATCH', "alg does not match the key's algorithm");
  }
  if (!keyFitsAlgorithm(resolved.alg, resolved.key, 'verify')) {
    throw new SignatureError('ALGORITHM_MISMATCH', 'the registered key does not fit its algorithm');
  }
  if (!verifyBytes(resolved.alg, resolved.key, Buffer.from(base, 'ascii'), bytes)) {
    throw new SignatureError('SIGNATURE_INVALID', 'the signature does not verify');
  }

  const { created, expires, nonce, tag } = plain;
  return {
    label,
    keyid,
    alg: resolved.alg,
    ...(typeof created === 'number' && { created }),
    ...(typeof expires === 'number' && { expires }),
    ...(typeof nonce === 'string' && { nonce }),
    ...(typeof tag === 'string' && { tag }),
    coveredComponents: covered.map(componentSpec),
    params: plain,
    signatureParams,
  };
}

/**
 * Verifies one HTTP message signature (RFC 9421 section 3.2) on a request or a response.
 *
 * Everything that can be refused without cryptography is refused first, in this order: missing
 * or oversized fields, malformed dictionaries, duplicate labels, a missing label, unsupported or
 * duplicate components, parameter types, the parameter allow-list, required parameters, the tag,
 * the nonce's form, the time window, required components, an `alg` outside the allowed set, and
 * the signature base itself (a covered header absent). Only then is the key resolved and the signature checked.
 * `Content-Digest` is not checked here: cover it and call `verifyContentDigest` on the body.
 *
 * @throws SignatureError (code UNAUTHENTICATED) with a stable `reason`
 */
export async function verifyMessageSignature(message: HttpMessageView, options: VerifyMessageSignatureOptions): Promise<VerifiedSignature> {
  const prepared = prepareVerification(message, options);
  return finishVerification(prepared, await options.resolveKey(prepared.keyid), options.label);
}

/** Options of {@link verifyMessageSignatureSync}: the keys are at hand. */
export type VerifyMessageSignatureSyncOptions = VerificationRules & {
  /** As {@link VerifyMessageSignatureOptions.resolveKey}, answering at once. */
  resolveKey(keyid: string): ResolvedKey | undefined;
};

/**
 * {@link verifyMessageSignature} for a verifier whose keys are in memory (the T8 edge's per-AS
 * keys): the same checks in the same order, without a promise.
 *
 * @throws SignatureError (code UNAUTHENTICATED) with a stable `reason`
 */
export function verifyMessageSignatureSync(message: HttpMessageView, options: VerifyMessageSignatureSyncOptions): VerifiedSignature {
  const prepared = prepareVerification(message, options);
  return finishVerification(prepared, options.resolveKey(prepared.keyid), options.label);
}
