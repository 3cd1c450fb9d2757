import { AeseError } from '@aese/errors';
import type { ErrorCode } from '@aese/errors';
import { JSON_MEDIA_TYPE } from './responses.js';
import type { EdgeResponse } from './responses.js';

/** Largest token request body read; a client-credentials form is a few hundred bytes. */
export const TOKEN_REQUEST_MAX_BYTES = 4 * 1024;
/** More form parameters than this is not a token request. */
export const TOKEN_REQUEST_MAX_PARAMS = 16;
export const FORM_MEDIA_TYPE = 'application/x-www-form-urlencoded';

/**
 * The RFC 6749 section 5.2 error codes, plus the one for a dependency that is down and `slow_down`
 * (registered for token endpoint responses by RFC 8628) for a client over its rate limit.
 */
export type OAuthErrorCode =
  | 'invalid_request'
  | 'invalid_client'
  | 'invalid_grant'
  | 'unauthorized_client'
  | 'unsupported_grant_type'
  | 'invalid_scope'
  | 'unsupported_token_type'
  | 'temporarily_unavailable'
  | 'slow_down'
  | 'server_error';

/**
 * A token endpoint failure: an HTTP status, an RFC 6749 error code and a fixed description.
 * The description never comes from elsewhere, so no response says which credential check failed.
 */
export class OAuthError extends Error {
  override readonly name = 'OAuthError';
  /** Extra response headers (`WWW-Authenticate`, `Retry-After`). */
  readonly headers: Readonly<Record<string, string>>;

  constructor(
    readonly status: number,
    readonly code: OAuthErrorCode,
    readonly description: string,
    options?: { cause?: unknown; headers?: Readonly<Record<string, string>> },
  ) {
    super(`${code}: ${description}`, options);
    this.headers = options?.headers ?? {};
  }
}

/** A validated client-credentials request; the client itself is the TLS certificate. */
export interface TokenRequest {
  readonly grantType: string;
  readonly clientId: string;
  /** Space-separated; empty asks for every granted scope. */
  readonly scope: string;
}

/** Headers every token endpoint answer carries (RFC 6749 section 5.1). */
const NO_STORE = { 'cache-control': 'no-store', pragma: 'no-cache' } as const;

/** Parameters that would be another client authentication method than `tls_client_auth`. */
const OTHER_AUTH_PARAMS = ['client_secret', 'client_assertion', 'client_assertion_type'];
const TOKEN_PARAMS = ['grant_type', 'client_id', 'scope'];
/** Characters of an encoded form body: no spaces, controls or non-ASCII (RFC 3986 / WHATWG). */
const FORM_BODY = /^[\x21-\x7e]*$/;
/** Decoded values are printable (RFC 6749 appendix A: VSCHAR / NQCHAR / NQSCHAR). */
const PRINTABLE = /^[\x20-\x7e]*$/;
const AUTH_SCHEME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,32}$/;

/**
 * True when a Content-Type names `application/x-www-form-urlencoded`, with at most a UTF-8
 * charset parameter (the only encoding the form serialisation defines).
 */
export function isFormContentType(contentType: string | undefined): boolean {
  if (contentType === undefined) return false;
  const [type, ...params] = contentType.split(';').map(p => p.trim().toLowerCase());
  if (type !== FORM_MEDIA_TYPE) return false;
  return params.every(p => p === '' || p === 'charset=utf-8' || p === 'charset="utf-8"');
}

function invalidRequest(description: string): OAuthError {
  return new OAuthError(400, 'invalid_request', description);
}

function decodeComponent(raw: string): string {
  try {
    return decodeURIComponent(raw.replace(/\+/g, ' '));
  } catch {
    // Malformed percent-escapes or escapes that are not UTF-8.
    throw invalidRequest('the request body is not a valid form encoding');
  }
}

/**
 * Parses an `application/x-www-form-urlencoded` body strictly: malformed escapes, bytes outside
 * printable ASCII, control characters once decoded, nameless pairs, too many pairs and a
 * parameter given twice are all `invalid_request` (RFC 6749 section 3.2: "MUST NOT be included
 * more than once"). URLSearchParams would accept all of these silently.
 */
export function parseForm(body: Uint8Array): Map<string, string> {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(body);
  } catch {
    throw invalidRequest('the request body is not a valid form encoding');
  }
  if (!FORM_BODY.test(text)) throw invalidRequest('the request body is not a valid form encoding');
  const out = new Map<string, string>();
  const pairs = text.split('&').filter(p => p.length > 0);
  if (pairs.length > TOKEN_REQUEST_MAX_PARAMS) throw invalidRequest('too many parameters');
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    const name = decodeComponent(eq < 0 ? pair : pair.slice(0, eq));
    const value = decodeComponent(eq < 0 ? '' : pair.slice(eq + 1));
    if (name.length === 0) throw invalidRequest('a parameter has no name');
    if (!PRINTABLE.test(name) || !PRINTABLE.test(value)) throw invalidRequest('a parameter holds control or non-ASCII characters');
    if (out.has(name)) {
      throw invalidRequest(TOKEN_PARAMS.includes(name) ? `parameter ${name} is repeated` : 'a parameter is repeated');
    }
    out.set(name, value);
  }
  return out;
}

/**
 * Validates a client-credentials token request (RFC 6749 section 4.4, RFC 8705 section 2):
 * `grant_type` and `client_id` are required, and client authentication is the TLS certificate
 * only, so a secret, an assertion or an Authorization header is `invalid_client`. Empty values
 * count as absent (RFC 6749 section 3.1); unknown parameters are ignored. Whether the grant type
 * is supported and the client and scope are acceptable is decided by the authentication service.
 */
export function parseTokenRequest(body: Uint8Array, authorizationHeader: string | undefined): TokenRequest {
  const form = parseForm(body);
  const get = (name: string): string | undefined => {
    const v = form.get(name);
    return v === undefined || v === '' ? undefined : v;
  };
  if (authorizationHeader !== undefined) {
    const scheme = authorizationHeader.trim().split(/\s+/, 1)[0] ?? '';
    throw new OAuthError(401, 'invalid_client', 'only tls_client_auth client authentication is supported', {
      // RFC 6749 section 5.2: a client that used the Authorization header gets its scheme back.
      headers: AUTH_SCHEME.test(scheme) ? { 'www-authenticate': `${scheme} realm="scef"` } : {},
    });
  }
  if (OTHER_AUTH_PARAMS.some(p => get(p) !== undefined)) {
    throw new OAuthError(401, 'invalid_client', 'only tls_client_auth client authentication is supported');
  }
  const grantType = get('grant_type');
  if (grantType === undefined) throw invalidRequest('grant_type is required');
  const clientId = get('client_id');
  if (clientId === undefined) throw invalidRequest('client_id is required');
  return { grantType, clientId, scope: get('scope') ?? '' };
}

/** An RFC 7009 revocation request: the token, and the optional hint (which changes nothing here). */
export interface RevocationRequest {
  readonly token: string;
}

/** Largest token accepted for revocation; a larger one cannot be one of ours. */
const MAX_REVOKED_TOKEN_CHARS = 8 * 1024;

/**
 * Parses an RFC 7009 revocation request. Client authentication is the TLS certificate, as at
 * the token endpoint; `token_type_hint` may be `access_token` (we issue nothing else).
 */
export function parseRevocationRequest(body: Uint8Array, authorizationHeader: string | undefined): RevocationRequest {
  const form = parseForm(body);
  if (authorizationHeader !== undefined || OTHER_AUTH_PARAMS.some(p => (form.get(p) ?? '') !== '')) {
    throw new OAuthError(401, 'invalid_client', 'only tls_client_auth client authentication is supported');
  }
  const token = form.get('token') ?? '';
  if (token === '' || token.length > MAX_REVOKED_TOKEN_CHARS) throw invalidRequest('token is required');
  const hint = form.get('token_type_hint');
  if (hint !== undefined && hint !== 'access_token' && hint !== 'refresh_token') {
    throw new OAuthError(400, 'unsupported_token_type', 'only access tokens can be revoked');
  }
  return { token };
}

/** How each stable error code of the mesh becomes a token endpoint error: the one table. */
const OAUTH_ERROR_BY_CODE: Partial<Record<ErrorCode, readonly [number, OAuthErrorCode, string]>> = {
  INVALID_CLIENT: [401, 'invalid_client', 'client authentication failed'],
  UNSUPPORTED_GRANT_TYPE: [400, 'unsupported_grant_type', 'only the client_credentials grant is supported'],
  INVALID_SCOPE: [400, 'invalid_scope', 'the requested scope is invalid or not granted to this client'],
  INVALID_GRANT: [400, 'invalid_grant', 'the grant is invalid'],
  INVALID_INPUT: [400, 'invalid_request', 'the request is malformed'],
  UNAVAILABLE: [503, 'temporarily_unavailable', 'the service is temporarily unavailable'],
  DEADLINE_EXCEEDED: [503, 'temporarily_unavailable', 'the service is temporarily unavailable'],
};

/**
 * Turns anything thrown while serving a token request into an {@link OAuthError}. A dependency
 * that is down gives 503 (fail closed); an unexpected error gives 500 `server_error` with a
 * generic description, its cause kept for the log only.
 */
export function toOAuthError(err: unknown): OAuthError {
  if (err instanceof OAuthError) return err;
  if (err instanceof AeseError) {
    const mapped = OAUTH_ERROR_BY_CODE[err.code];
    if (mapped) {
      const headers = mapped[0] === 503 ? { 'retry-after': '1' } : undefined;
      return new OAuthError(mapped[0], mapped[1], mapped[2], { cause: err, ...(headers ? { headers } : {}) });
    }
  }
  return new OAuthError(500, 'server_error', 'internal error', { cause: err });
}

/** Requests per second one AS may make to the token and revocation endpoints together. */
export const DEFAULT_OAUTH_RATE_LIMIT_PER_S = 10;
/** Requests an AS may make there at once after being idle. */
export const DEFAULT_OAUTH_RATE_LIMIT_BURST = 50;

/** 429 for an AS over its token/revocation rate: RFC 6749-style body, `Retry-After` in seconds. */
export function oauthRateLimited(retryAfterS: number): OAuthError {
  return new OAuthError(429, 'slow_down', 'too many requests from this client; retry later', { headers: { 'retry-after': String(retryAfterS) } });
}

/** The RFC 6749 section 5.2 JSON error response. */
export function oauthErrorResponse(err: OAuthError): EdgeResponse {
  return {
    status: err.status,
    headers: { 'content-type': JSON_MEDIA_TYPE, ...NO_STORE, ...err.headers },
    body: { error: err.code, error_description: err.description },
  };
}

/** An issued access token, as the authentication service returned it. */
export interface IssuedToken {
  readonly accessToken: string;
  readonly expiresIn: number;
  readonly scope: string;
}

/**
 * The RFC 6749 section 5.1 success response. Exactly these members: never a refresh token (the
 * client-credentials grant has none, RFC 6749 section 4.4.3).
 */
export function tokenResponse(token: IssuedToken): EdgeResponse {
  return {
    status: 200,
    headers: { 'content-type': JSON_MEDIA_TYPE, ...NO_STORE },
    body: { access_token: token.accessToken, token_type: 'Bearer', expires_in: token.expiresIn, scope: token.scope },
  };
}
