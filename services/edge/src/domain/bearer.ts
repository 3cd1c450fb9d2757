/** Longest access token accepted; the authentication service refuses longer ones too. */
export const MAX_BEARER_TOKEN_BYTES = 8 * 1024;

/** RFC 6750 section 2.1: `Bearer` 1*SP b64token. */
const BEARER = /^Bearer +([A-Za-z0-9\-._~+/]+=*)$/i;

/** Why a request's bearer credentials were refused before any verification. */
export type BearerProblem = 'TOKEN_MISSING' | 'TOKEN_REPEATED' | 'TOKEN_MALFORMED';

/**
 * Reads the access token of a T8 request from its `Authorization` field lines. Exactly one line
 * is accepted: several are refused (RFC 6750 section 3.1, more than one way to carry a token),
 * rather than picking one the way node's `headers` object would silently do. Only the `Bearer`
 * scheme is accepted; a line with another scheme counts as no token at all.
 */
export function bearerToken(lines: readonly string[] | undefined): { token: string } | { problem: BearerProblem } {
  if (lines === undefined || lines.length === 0) return { problem: 'TOKEN_MISSING' };
  if (lines.length > 1) return { problem: 'TOKEN_REPEATED' };
  const line = lines[0];
  if (line.length > MAX_BEARER_TOKEN_BYTES + 16) return { problem: 'TOKEN_MALFORMED' };
  const trimmed = line.trim();
  // Another scheme (Basic, DPoP ...) carries no bearer token: the request is unauthenticated.
  if (!/^Bearer(\s|$)/i.test(trimmed)) return { problem: 'TOKEN_MISSING' };
  const m = BEARER.exec(trimmed);
  if (!m) return { problem: 'TOKEN_MALFORMED' };
  return { token: m[1] };
}
