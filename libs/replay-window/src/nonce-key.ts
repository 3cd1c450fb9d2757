import { hash } from 'node:crypto';
import { AeseError } from '@aese/errors';
import { isAcceptableNonce, NONCE_MAX_CHARS, NONCE_MIN_BYTES } from '@aese/http-signatures';

/** The T8 profile's nonce (at least 128 bits, unpadded base64url), the same rule the edge applies. */
const NONCE_RULE = { minBytes: NONCE_MIN_BYTES, maxChars: NONCE_MAX_CHARS } as const;

/** The same rule as the AS registry: the id appears in URLs, KV keys and SPIFFE IDs. */
const SCS_AS_ID = /^[A-Za-z0-9._-]{1,64}$/;

/** One question to the replay guard: has this AS used this nonce inside the window of `created`? */
export interface ReplayCheck {
  readonly scsAsId: string;
  readonly nonce: string;
  /** RFC 9421 `created`: integer seconds since the epoch. */
  readonly created: number;
}

/**
 * Refuses malformed input with INVALID_INPUT before anything is computed or stored. The messages
 * never echo the input: a nonce is attacker-chosen text.
 */
export function assertReplayCheck(check: ReplayCheck): void {
  if (typeof check.scsAsId !== 'string' || !SCS_AS_ID.test(check.scsAsId)) {
    throw new AeseError('INVALID_INPUT', 'scsAsId must be 1-64 characters of [A-Za-z0-9._-]');
  }
  const { nonce } = check;
  if (typeof nonce !== 'string' || !isAcceptableNonce(nonce, NONCE_RULE)) {
    throw new AeseError('INVALID_INPUT', `nonce must be unpadded base64url of at least ${NONCE_RULE.minBytes * 8} bits, at most ${NONCE_RULE.maxChars} characters`);
  }
  // proto3 sends 0 for a missing field, so 0 means "no created" and is refused with the negatives.
  if (!Number.isSafeInteger(check.created) || check.created <= 0) {
    throw new AeseError('INVALID_INPUT', 'created must be a positive integer (seconds since the epoch)');
  }
}

/**
 * The store key of a nonce: `<scsAsId>.<base64url(sha256(nonce))>`. Namespaced per AS, so two ASes
 * may use the same nonce; hashed, so any nonce maps to a fixed-size key of the
 * characters KV keys allow. A '.' in the scsAsId becomes '=' (never part of an scsAsId, so the
 * mapping stays one-to-one): every AS is exactly one subject token and ids like `a.` or `a..b`
 * cannot form empty tokens.
 */
export function nonceKey(scsAsId: string, nonce: string): string {
  const digest = hash('sha256', nonce, 'base64url');
  return `${asTokenOf(scsAsId)}.${digest}`;
}

/** The one subject token (and KV key) that stands for an AS: its id with '.' as '='. */
export function asTokenOf(scsAsId: string): string {
  return scsAsId.replaceAll('.', '=');
}
