/** A registered name or IPv4 literal in an authority; no user info, no path, no spaces. */
const REG_NAME = /^[A-Za-z0-9.-]{1,253}$/;
const PORT = /^[0-9]{1,5}$/;
/** The authority of an absolute-form target (`https://host:port/...`, RFC 9112 section 3.2.2). */
const ABSOLUTE_FORM = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/([^/?#]*)/;
/** The port an `https` authority without one means. */
const DEFAULT_PORT = '443';

function normalise(name: string): string {
  const lower = name.toLowerCase();
  return lower.endsWith('.') ? lower.slice(0, -1) : lower;
}

/**
 * The host of an HTTP authority (`Host` or `:authority`), lower-cased and without a trailing
 * dot or the port, or undefined when it is not a plain `host[:port]` (user info, an IPv6 literal,
 * stray characters). SNI cannot name an IP address (RFC 6066 section 3), so an IPv6 literal could
 * never match anyway.
 */
export function authorityHost(authority: string): string | undefined {
  const colon = authority.lastIndexOf(':');
  const host = colon < 0 ? authority : authority.slice(0, colon);
  if (colon >= 0 && !PORT.test(authority.slice(colon + 1))) return undefined;
  if (!REG_NAME.test(host)) return undefined;
  return normalise(host);
}

/**
 * True when two authorities name the same origin server: the same host (case and a trailing dot
 * aside) and the same port (none meaning 443). Text that is not a plain `host[:port]` is only
 * the same as itself, letter for letter.
 */
function sameEntity(a: string, b: string): boolean {
  const hostA = authorityHost(a);
  const hostB = authorityHost(b);
  if (hostA === undefined || hostB === undefined) return a === b;
  const port = (s: string): string => (s.includes(':') ? s.slice(s.lastIndexOf(':') + 1).replace(/^0+(?=\d)/, '') : DEFAULT_PORT);
  return hostA === hostB && port(a) === port(b);
}

/** What names a request's authority, as received. */
export interface AuthorityFields {
  /** Every HTTP/2 `:authority` value (none on HTTP/1.1). */
  readonly pseudoAuthorities: readonly string[];
  /** Every `Host` field line. */
  readonly hostLines: readonly string[];
  /** The request target as received (HTTP/1.1 request-target, HTTP/2 `:path`). */
  readonly target: string;
}

/** Why a request's authority is malformed (400): stable audit reasons. */
export type AuthorityFault = 'HOST_MISSING' | 'HOST_REPEATED' | 'HOST_AUTHORITY_CONFLICT' | 'HOST_TARGET_CONFLICT';

/** The one authority a request names, or why it names none or several. */
export type RequestAuthority = { readonly ok: true; readonly authority: string } | { readonly ok: false; readonly fault: AuthorityFault };

/**
 * The single authority of a request, or the fault that makes the request malformed (400, before
 * anything else looks at it). RFC 9112 section 3.2: an HTTP/1.1 request needs exactly one `Host`
 * line, and with an absolute-form target the target's authority is the one meant; RFC 9113
 * section 8.3.1: an HTTP/2 request names its authority by `:authority` or `Host`, and a `Host`
 * that differs from `:authority` is malformed. Node keeps only the first of several `Host` lines
 * in `req.headers`, so this reads every line: two disagreeing names must never reach a check that
 * sees one and a route or signature that sees the other.
 */
export function requestAuthority(fields: AuthorityFields): RequestAuthority {
  const { pseudoAuthorities, hostLines } = fields;
  if (hostLines.length > 1 || pseudoAuthorities.length > 1) return { ok: false, fault: 'HOST_REPEATED' };
  const pseudo = pseudoAuthorities[0];
  const host = hostLines[0];
  if (pseudo !== undefined && host !== undefined && !sameEntity(pseudo, host)) return { ok: false, fault: 'HOST_AUTHORITY_CONFLICT' };
  const authority = pseudo ?? host;
  if (authority === undefined) return { ok: false, fault: 'HOST_MISSING' };
  const absolute = ABSOLUTE_FORM.exec(fields.target);
  if (absolute && !sameEntity(absolute[1], authority)) return { ok: false, fault: 'HOST_TARGET_CONFLICT' };
  return { ok: true, authority };
}

/**
 * True when the request's authority equals the TLS server name (domain fronting defence, the T8
 * profile section 1). A connection without SNI matches nothing.
 */
export function authorityMatchesServerName(authority: string, serverName: string | false | undefined | null): boolean {
  if (typeof serverName !== 'string' || serverName.length === 0) return false;
  return authorityHost(authority) === normalise(serverName);
}
