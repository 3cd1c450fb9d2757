import { randomBytes } from 'node:crypto';

/** Fewest random bytes in a `nonce`: 128 bits, the T8 profile's minimum. */
export const NONCE_MIN_BYTES = 16;
/**
 * Longest `nonce` accepted, in characters (96 bytes of base64url): far above any real nonce, and
 * low enough that a nonce cannot bloat a replay store or a log line.
 */
export const NONCE_MAX_CHARS = 128;

/** What a verifier demands of a signature's `nonce`. */
export interface NonceRule {
  /** Fewest bytes the base64url text must decode to. */
  readonly minBytes: number;
  /** Most characters the text may have. */
  readonly maxChars: number;
}

/** Unpadded base64url (RFC 4648 section 5): no `=`, no `+` `/`, nothing else. */
const BASE64URL = /^[A-Za-z0-9_-]+$/;
const BASE64URL_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/**
 * True when `nonce` is unpadded base64url in canonical form (re-encoding its bytes gives the same
 * text, so a length of 4n+1 or stray low bits fail) that decodes to at least `rule.minBytes` bytes
 * and has at most `rule.maxChars` characters. The length is checked first: an oversized value is
 * never decoded.
 */
export function isAcceptableNonce(nonce: string, rule: NonceRule): boolean {
  if (nonce.length === 0 || nonce.length > rule.maxChars || !BASE64URL.test(nonce)) return false;
  // Worked out from the length instead of decoding: each character carries 6 bits, whole bytes are
  // kept, and the bits left over in the last character must be zero for re-encoding to give it back.
  const spareBits = (nonce.length * 6) % 8;
  if (spareBits === 6) return false;
  const lastValue = BASE64URL_ALPHABET.indexOf(nonce[nonce.length - 1]);
  if (lastValue % (1 << spareBits) !== 0) return false;
  return Math.floor((nonce.length * 6) / 8) >= rule.minBytes;
}

/** A fresh `nonce` for a signature: 128 random bits, base64url (the T8 profile's minimum). */
export function createNonce(): string {
  return randomBytes(NONCE_MIN_BYTES).toString('base64url');
}
