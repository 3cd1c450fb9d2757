import { createHash } from 'node:crypto';
import { AeseError } from '@aese/errors';

/** Shortest nonce accepted: 16 characters of base64url is 96 bits, the floor; the profile asks 128+. */
export const MIN_NONCE_LENGTH = 16;
/** Longest nonce accepted; anything longer is garbage or an attempt to bloat the store. */
export const MAX_NONCE_LENGTH = 256;

/** The same rule as the AS registry: the id appears in URLs, KV keys and SPIFFE IDs. */
const SCS_AS_ID = /^[A-Za-z0-9._-]{1,64}$/;
/** base64url plus the HTTP token characters (RFC 9110 tchar) and ':' '/' '=' of sf-token / base64. */
const NONCE = /^[A-Za-z0-9!#$%&'*+.^_`|~:/=-]+$/;

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
  if (typeof nonce !== 'string' || nonce.length < MIN_NONCE_LENGTH || nonce.length > MAX_NONCE_LENGTH || !NONCE.test(nonce)) {
    throw new AeseError('INVALID_INPUT', `nonce must be ${MIN_NONCE_LENGTH}-${MAX_NONCE_LENGTH} base64url or token characters`);
  }
  // proto3 sends 0 for a missing field, so 0 means "no created" and is refused with the negatives.
  if (!Number.isSafeInteger(check.created) || check.created <= 0) {
    throw new AeseError('INVALID_INPUT', 'created must be a positive integer (seconds since the epoch)');
  }
}

/**
 * The store key of a nonce: `<scsAsId>.<base64url(sha256(nonce))>`. Namespaced per AS, so two ASes
 * may use the same nonce; hashed, so any nonce character set maps to a fixed-size key of the
 * characters KV keys allow. A '.' in the scsAsId becomes '=' (never part of an scsAsId, so the
 * mapping stays one-to-one): every AS is exactly one subject token and ids like `a.` or `a..b`
 * cannot form empty tokens.
 */
export function nonceKey(scsAsId: string, nonce: string): string {
  const digest = createHash('sha256').update(nonce, 'utf8').digest('base64url');
  return `${scsAsId.replaceAll('.', '=')}.${digest}`;
}
