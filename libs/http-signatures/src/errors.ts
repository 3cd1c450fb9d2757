import { AeseError } from '@aese/errors';

/**
 * Why a message signature was refused. Stable strings: the edge maps them to its 401 body and
 * metrics, and tests assert them, so a reason is never renamed, only added.
 */
export const SIGNATURE_ERROR_REASONS = [
  /** No `Signature-Input` or no `Signature` field. */
  'SIGNATURE_MISSING',
  /** `Signature-Input` or `Signature` is larger than the configured bound. */
  'SIGNATURE_HEADER_TOO_LARGE',
  /** A field is not a valid structured dictionary, or a member or parameter has the wrong type. */
  'SIGNATURE_MALFORMED',
  /** A label occurs more than once in `Signature-Input` or in `Signature`. */
  'DUPLICATE_LABEL',
  /** The expected label is absent from `Signature-Input` or from `Signature`. */
  'LABEL_MISSING',
  /** The covered component list names one component twice. */
  'DUPLICATE_COMPONENT',
  /** A covered component or one of its parameters is unknown or not supported. */
  'COMPONENT_UNSUPPORTED',
  /** A component the verifier requires is not covered by the signature. */
  'COMPONENT_MISSING',
  /** A covered component is absent from the message (or from its related request). */
  'COMPONENT_NOT_PRESENT',
  /** A covered component's value cannot be put in a signature base (control or non-ASCII bytes). */
  'COMPONENT_INVALID',
  /** A required signature parameter is absent. */
  'PARAM_MISSING',
  /** A signature parameter is outside the verifier's allow-list. */
  'PARAM_NOT_ALLOWED',
  /** The `tag` parameter differs from the application's expected tag. */
  'TAG_MISMATCH',
  /** `created` is older than the accepted window. */
  'CREATED_TOO_OLD',
  /** `created` is further in the future than the accepted skew. */
  'CREATED_IN_FUTURE',
  /** `expires` has passed. */
  'SIGNATURE_EXPIRED',
  /** No key is registered for this `keyid` (for this caller). */
  'UNKNOWN_KEY',
  /** The algorithm (named by `alg` or by the key) is outside the allowed set. */
  'ALGORITHM_NOT_ALLOWED',
  /** `alg` names another algorithm than the key's, or the key does not fit its algorithm. */
  'ALGORITHM_MISMATCH',
  /** The signature bytes do not verify over the signature base. */
  'SIGNATURE_INVALID',
  /** `nonce` is not unpadded base64url of enough bytes, or is too long (the verifier's `nonce` rule). */
  'NONCE_INVALID',
] as const;

/** One of {@link SIGNATURE_ERROR_REASONS}. */
export type SignatureErrorReason = (typeof SIGNATURE_ERROR_REASONS)[number];

/**
 * A refused HTTP message signature (RFC 9421). The code is always UNAUTHENTICATED (HTTP 401);
 * `reason` says exactly why. The message is safe to return to the client: it never contains
 * field values, key material or signature bytes.
 */
export class SignatureError extends AeseError {
  override readonly name = 'SignatureError';
  readonly reason: SignatureErrorReason;

  constructor(reason: SignatureErrorReason, message: string, options?: { cause?: unknown }) {
    super('UNAUTHENTICATED', message, options);
    this.reason = reason;
  }
}

/** Why a `Content-Digest` (RFC 9530) was refused. Stable strings, as for signatures. */
export const CONTENT_DIGEST_ERROR_REASONS = [
  /** No `Content-Digest` field. */
  'DIGEST_MISSING',
  /** Not a structured dictionary of byte sequences, a duplicate algorithm, or too large. */
  'DIGEST_MALFORMED',
  /** Only weak or unknown algorithms (md5, sha, crc32c, unixsum, ...) are present. */
  'DIGEST_ALGORITHM_NOT_ALLOWED',
  /** A strong digest present does not match the content. */
  'DIGEST_MISMATCH',
] as const;

/** One of {@link CONTENT_DIGEST_ERROR_REASONS}. */
export type ContentDigestErrorReason = (typeof CONTENT_DIGEST_ERROR_REASONS)[number];

/**
 * A refused `Content-Digest`. UNAUTHENTICATED like {@link SignatureError}: the digest is what
 * binds the body to the signature, so a bad digest is an integrity failure, not a format nit.
 */
export class ContentDigestError extends AeseError {
  override readonly name = 'ContentDigestError';
  readonly reason: ContentDigestErrorReason;

  constructor(reason: ContentDigestErrorReason, message: string, options?: { cause?: unknown }) {
    super('UNAUTHENTICATED', message, options);
    this.reason = reason;
  }
}
