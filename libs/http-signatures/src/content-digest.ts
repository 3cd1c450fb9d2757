import { hash, timingSafeEqual } from 'node:crypto';
import { ContentDigestError } from './errors.js';
import { serializeBytesMember } from './quick-serialize.js';
import { DictionaryParseError, parseDictionaryStrict } from './structured-fields.js';

/** The digest algorithms this profile accepts (RFC 9530 section 5, status "Active"). */
export const CONTENT_DIGEST_ALGORITHMS = ['sha-256', 'sha-512'] as const;

/** One of {@link CONTENT_DIGEST_ALGORITHMS}. */
export type ContentDigestAlgorithm = (typeof CONTENT_DIGEST_ALGORITHMS)[number];

/** Bound on the `Content-Digest` field checked before parsing: both strong digests fit in 200. */
export const DEFAULT_MAX_CONTENT_DIGEST_BYTES = 1024;

const NODE_HASH: Readonly<Record<ContentDigestAlgorithm, { name: string; bytes: number }>> = {
  'sha-256': { name: 'sha256', bytes: 32 },
  'sha-512': { name: 'sha512', bytes: 64 },
};

function isAllowed(key: string): key is ContentDigestAlgorithm {
  return (CONTENT_DIGEST_ALGORITHMS as readonly string[]).includes(key);
}

function digest(body: Uint8Array, alg: ContentDigestAlgorithm): Buffer {
  // The one-shot form: no Hash object per call (this runs for every signed response).
  return hash(NODE_HASH[alg].name, body, 'buffer');
}

/**
 * The `Content-Digest` field value for `body`, e.g. `sha-256=:RK/0qy18MlBSVnWgjwz6lZEWjP/lF5HF9bvEF8FabDg=:`.
 * Serialized as RFC 9530 and RFC 8941 print it (the bytes structured-headers' serializeDictionary gives).
 */
export function computeContentDigest(body: Uint8Array, alg: ContentDigestAlgorithm = 'sha-256'): string {
  if (!isAllowed(alg)) throw new TypeError(`unsupported content digest algorithm ${String(alg)}`);
  return serializeBytesMember(alg, digest(body, alg));
}

/** What {@link verifyContentDigest} checked: every strong algorithm present, all matched. */
export interface VerifiedContentDigest {
  readonly algorithms: readonly ContentDigestAlgorithm[];
}

/**
 * Checks a `Content-Digest` field (RFC 9530) against the received content.
 *
 * Every allowed algorithm present must match: a client cannot hide a wrong sha-512 behind a
 * right sha-256. Weak or unknown algorithms (md5, sha, crc32c, unixsum, ...) never count; if they
 * are all there is, the digest is refused rather than ignored. Repeated algorithms are refused
 * (RFC 8941 would keep only the last one). Comparison is constant-time.
 *
 * @param headerValue the field value, or its field lines in order, or `undefined` when absent
 * @throws ContentDigestError with reason DIGEST_MISSING, DIGEST_MALFORMED,
 *   DIGEST_ALGORITHM_NOT_ALLOWED or DIGEST_MISMATCH
 */
export function verifyContentDigest(
  headerValue: string | readonly string[] | undefined,
  body: Uint8Array,
  options: { readonly maxHeaderBytes?: number } = {},
): VerifiedContentDigest {
  const value = typeof headerValue === 'string' ? headerValue : headerValue?.join(', ');
  if (value === undefined || value.trim() === '') {
    throw new ContentDigestError('DIGEST_MISSING', 'Content-Digest is required');
  }
  if (Buffer.byteLength(value) > (options.maxHeaderBytes ?? DEFAULT_MAX_CONTENT_DIGEST_BYTES)) {
    throw new ContentDigestError('DIGEST_MALFORMED', 'Content-Digest is too large');
  }
  let members;
  try {
    members = parseDictionaryStrict(value);
  } catch (err) {
    const what = err instanceof DictionaryParseError && err.problem === 'duplicate-key' ? 'Content-Digest repeats an algorithm' : 'Content-Digest is not a structured dictionary';
    throw new ContentDigestError('DIGEST_MALFORMED', what, { cause: err });
  }
  const strong: [ContentDigestAlgorithm, Buffer][] = [];
  for (const [key, member] of members) {
    const bytes = member[0];
    if (Array.isArray(bytes) || !(bytes instanceof ArrayBuffer)) {
      throw new ContentDigestError('DIGEST_MALFORMED', 'Content-Digest values must be byte sequences');
    }
    if (isAllowed(key)) strong.push([key, Buffer.from(bytes)]);
  }
  if (strong.length === 0) {
    throw new ContentDigestError('DIGEST_ALGORITHM_NOT_ALLOWED', `Content-Digest must use ${CONTENT_DIGEST_ALGORITHMS.join(' or ')}`);
  }
  for (const [alg, received] of strong) {
    const expected = digest(body, alg);
    if (received.length !== NODE_HASH[alg].bytes || !timingSafeEqual(received, expected)) {
      throw new ContentDigestError('DIGEST_MISMATCH', 'Content-Digest does not match the content');
    }
  }
  return { algorithms: strong.map(([alg]) => alg) };
}
