/** A registered name or IPv4 literal in an authority; no user info, no path, no spaces. */
const REG_NAME = /^[A-Za-z0-9.-]{1,253}$/;
const PORT = /^[0-9]{1,5}$/;

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
 * True when every authority the request names equals the TLS server name (domain fronting
 * defence, the T8 profile section 1). A connection without SNI matches nothing; HTTP/2 requests
 * that carry both `:authority` and `Host` must agree on both.
 */
export function authorityMatchesServerName(authorities: readonly (string | undefined)[], serverName: string | false | undefined | null): boolean {
  if (typeof serverName !== 'string' || serverName.length === 0) return false;
  const present = authorities.filter((a): a is string => a !== undefined);
  if (present.length === 0) return false;
  const sni = normalise(serverName);
  return present.every(a => authorityHost(a) === sni);
}
