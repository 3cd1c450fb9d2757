import { T8_NONCE_RULE } from './message-signatures.js';
import { problem } from './responses.js';
import type { EdgeResponse } from './responses.js';

/** The realm of the edge's `WWW-Authenticate` challenges. */
export const AUTH_REALM = 'scef';

/**
 * What an AS needs to sign (RFC 9421 section 5.1 `Accept-Signature`): sent with a 401 for a
 * missing or refused signature so that a developer sees the profile in the answer itself. The
 * nonce's form cannot be said here (a `nonce` value would be the nonce to use): the
 * `INVALID_NONCE` detail says it.
 */
export function acceptSignature(hasBody: boolean): string {
  const components = hasBody ? '"@method" "@target-uri" "authorization" "content-digest" "content-type"' : '"@method" "@target-uri" "authorization"';
  return `sig1=(${components});created;nonce;keyid`;
}

type Challenge = 'none' | 'bearer' | 'invalid_request' | 'invalid_token' | 'insufficient_scope';

interface DenialSpec {
  readonly status: number;
  /** ProblemDetails `cause`: a category, never the exact check that failed. */
  readonly cause: string;
  readonly detail: string;
  readonly challenge: Challenge;
  /** A `Retry-After` (seconds) for temporary refusals. */
  readonly retryAfter?: number;
}

/**
 * Every way the edge refuses a T8 request, by the stable reason code the audit trail records.
 * Causes group reasons into what an AS can act on (token, signature, freshness, replay, scope,
 * identity), so no answer tells which of several credential checks failed (T8 profile section
 * 6, SECURITY-TESTS 36): the precise reason goes to the audit trail only.
 */
const DENIALS = {
  CLIENT_NOT_REGISTERED: { status: 403, cause: 'CLIENT_NOT_AUTHORIZED', detail: 'the client certificate does not belong to an active SCS/AS', challenge: 'none' },
  CLIENT_NOT_ACTIVE: { status: 403, cause: 'CLIENT_NOT_AUTHORIZED', detail: 'the client certificate does not belong to an active SCS/AS', challenge: 'none' },
  RATE_LIMITED: { status: 429, cause: 'RATE_LIMIT_EXCEEDED', detail: 'too many requests from this SCS/AS; retry later', challenge: 'none' },
  BODY_TOO_LARGE: { status: 413, cause: 'PAYLOAD_TOO_LARGE', detail: 'the request body is too large', challenge: 'none' },
  BODY_TIMEOUT: { status: 408, cause: 'REQUEST_TIMEOUT', detail: 'the request body did not arrive in time', challenge: 'none' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, cause: 'UNSUPPORTED_MEDIA_TYPE', detail: 'a T8 request body must be JSON (application/json or a +json type, UTF-8)', challenge: 'none' },
  TOKEN_MISSING: { status: 401, cause: 'TOKEN_REQUIRED', detail: 'an access token is required (Authorization: Bearer)', challenge: 'bearer' },
  TOKEN_REPEATED: { status: 400, cause: 'INVALID_REQUEST', detail: 'exactly one Authorization field with a Bearer token is accepted', challenge: 'invalid_request' },
  TOKEN_MALFORMED: { status: 400, cause: 'INVALID_REQUEST', detail: 'exactly one Authorization field with a Bearer token is accepted', challenge: 'invalid_request' },
  INVALID_TOKEN: { status: 401, cause: 'INVALID_TOKEN', detail: 'the access token is invalid', challenge: 'invalid_token' },
  SIGNATURE_REQUIRED: { status: 401, cause: 'SIGNATURE_REQUIRED', detail: 'T8 requests must carry an HTTP message signature (RFC 9421)', challenge: 'invalid_request' },
  INVALID_SIGNATURE: { status: 401, cause: 'INVALID_SIGNATURE', detail: 'the request signature or content digest is invalid', challenge: 'invalid_request' },
  INVALID_NONCE: {
    status: 401,
    cause: 'INVALID_NONCE',
    detail: `the signature nonce must be unpadded base64url (A-Z a-z 0-9 - _) of at least ${T8_NONCE_RULE.minBytes * 8} bits, at most ${T8_NONCE_RULE.maxChars} characters`,
    challenge: 'invalid_request',
  },
  STALE_REQUEST: { status: 401, cause: 'STALE_REQUEST', detail: 'the request signature is outside the accepted time window', challenge: 'invalid_request' },
  REPLAYED_REQUEST: { status: 401, cause: 'REPLAYED_REQUEST', detail: 'the request was already received (nonce reused)', challenge: 'invalid_request' },
  NO_SUCH_RESOURCE: { status: 404, cause: 'RESOURCE_NOT_FOUND', detail: 'the resource does not exist', challenge: 'none' },
  METHOD_NOT_ALLOWED: { status: 405, cause: 'METHOD_NOT_ALLOWED', detail: 'the method is not allowed on this resource', challenge: 'none' },
  INSUFFICIENT_SCOPE: { status: 403, cause: 'insufficient_scope', detail: 'the access token does not grant the scope of this API', challenge: 'insufficient_scope' },
  SCS_AS_ID_MISMATCH: { status: 403, cause: 'SCS_AS_ID_MISMATCH', detail: 'the scsAsId in the path is not the authenticated SCS/AS', challenge: 'none' },
  ENCRYPTION_KEY_NOT_REGISTERED: {
    status: 406,
    cause: 'ENCRYPTION_KEY_NOT_REGISTERED',
    detail: 'an encrypted response was asked for but no encryption key is registered',
    challenge: 'none',
  },
  ENCRYPTION_OBLIGED_WITHOUT_KEY: {
    status: 403,
    cause: 'ENCRYPTION_KEY_NOT_REGISTERED',
    detail: 'policy requires this response to be encrypted and no encryption key is registered',
    challenge: 'none',
  },
  UNAVAILABLE: { status: 503, cause: 'SERVICE_UNAVAILABLE', detail: 'a service the request depends on is unavailable; nothing was executed', challenge: 'none', retryAfter: 1 },
  INTERNAL: { status: 500, cause: 'INTERNAL_ERROR', detail: 'internal error', challenge: 'none' },
} as const satisfies Readonly<Record<string, DenialSpec>>;

/** A category of refusal (see {@link DENIALS}). */
export type DenialKind = keyof typeof DENIALS;

/** The answer to a refused T8 request, and the reason to audit. */
export interface Denial {
  readonly kind: DenialKind;
  /** The precise, stable reason (e.g. `SIGNATURE_UNKNOWN_KEY`), for the audit trail only. */
  readonly reason: string;
  readonly response: EdgeResponse;
}

function challengeOf(challenge: Challenge, scope: string | undefined): string | undefined {
  switch (challenge) {
    case 'none':
      return undefined;
    case 'bearer':
      // RFC 6750 section 3.1: a request without credentials gets no error code.
      return `Bearer realm="${AUTH_REALM}"`;
    case 'insufficient_scope':
      return `Bearer realm="${AUTH_REALM}", error="insufficient_scope"${scope ? `, scope="${scope}"` : ''}`;
    default:
      return `Bearer realm="${AUTH_REALM}", error="${challenge}"`;
  }
}

/**
 * The ProblemDetails answer for a refusal: status, title, fixed detail and cause, with the
 * RFC 6750 challenge on authentication failures, `Retry-After` on temporary ones and any extra
 * headers (`Allow`, `Accept-Signature`).
 */
export function deny(kind: DenialKind, reason: string = kind, extra: { scope?: string; retryAfterS?: number; headers?: Readonly<Record<string, string>> } = {}): Denial {
  const spec: DenialSpec = DENIALS[kind];
  const headers: Record<string, string> = { ...extra.headers };
  const challenge = challengeOf(spec.challenge, extra.scope);
  if (challenge) headers['www-authenticate'] = challenge;
  const retryAfter = extra.retryAfterS ?? spec.retryAfter;
  if (retryAfter !== undefined) headers['retry-after'] = String(retryAfter);
  return { kind, reason, response: problem(spec.status, spec.detail, { cause: spec.cause, headers }) };
}

/** The denial for a refused request signature or digest reason (see message-signatures.ts). */
export function signatureDenial(reason: string, hasBody: boolean): Denial {
  const headers = { 'accept-signature': acceptSignature(hasBody) };
  if (reason === 'SIGNATURE_CREATED_TOO_OLD' || reason === 'SIGNATURE_CREATED_IN_FUTURE' || reason === 'SIGNATURE_SIGNATURE_EXPIRED') {
    return deny('STALE_REQUEST', reason, { headers });
  }
  if (reason === 'SIGNATURE_SIGNATURE_MISSING') return deny('SIGNATURE_REQUIRED', reason, { headers });
  // The nonce's form is checked before any key or cryptography: naming it tells nothing of the credentials.
  if (reason === 'SIGNATURE_NONCE_INVALID') return deny('INVALID_NONCE', reason, { headers });
  return deny('INVALID_SIGNATURE', reason, { headers });
}
