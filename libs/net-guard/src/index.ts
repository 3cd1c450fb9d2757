import { BlockList, isIP } from 'node:net';
import { lookup as dnsLookup } from 'node:dns/promises';
import { list } from '@aese/config';
import { AeseError } from '@aese/errors';

/** Resolves a host name to every address it has (dns.lookup with all: true in production). */
export type HostResolver = (host: string) => Promise<readonly { address: string; family: number }[]>;

/** How long a name may take to resolve before the destination is refused. */
export const DEFAULT_RESOLVE_TIMEOUT_MS = 2_000;
/** Longest destination URI accepted. */
export const MAX_DESTINATION_CHARS = 2_048;

/** Address ranges a notification may never be sent to, unless an operator allows them. */
const BLOCKED_V4: readonly [string, number][] = [
  ['0.0.0.0', 8], // "this network", includes 0.0.0.0
  ['10.0.0.0', 8],
  ['100.64.0.0', 10], // carrier-grade NAT
  ['127.0.0.0', 8],
  ['169.254.0.0', 16], // link-local, includes the 169.254.169.254 metadata service
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['192.88.99.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved, includes broadcast
];
const BLOCKED_V6: readonly [string, number][] = [
  ['::', 128],
  ['::1', 128],
  ['::', 96], // IPv4-compatible (deprecated)
  ['::ffff:0:0', 96], // IPv4-mapped: a notification goes to an IPv4 address written as such
  ['64:ff9b::', 96], // NAT64
  ['64:ff9b:1::', 48],
  ['100::', 64],
  ['2001::', 23], // IETF protocol assignments (Teredo, ORCHID...)
  ['2001:db8::', 32],
  ['2002::', 16], // 6to4
  ['fc00::', 7], // unique local
  ['fe80::', 10], // link-local
  ['fec0::', 10], // site-local (deprecated)
  ['ff00::', 8], // multicast
];

// One list per family: node's BlockList matches IPv4 addresses against IPv6 rules through
// their mapped form, so a single list holding ::ffff:0:0/96 would block every IPv4 address.
function blockList(family: 'ipv4' | 'ipv6', ranges: readonly [string, number][]): BlockList {
  const list = new BlockList();
  for (const [net, prefix] of ranges) list.addSubnet(net, prefix, family);
  return list;
}
const BLOCKED_V4_LIST = blockList('ipv4', BLOCKED_V4);
const BLOCKED_V6_LIST = blockList('ipv6', BLOCKED_V6);

/** An operator exception: a host:port, or a CIDR range of addresses. */
export type AllowEntry =
  { readonly kind: 'endpoint'; readonly host: string; readonly port: string } | { readonly kind: 'cidr'; readonly family: 'ipv4' | 'ipv6'; readonly list: BlockList };

/** Parses NOTIFICATION_DESTINATION_ALLOWLIST entries ("host:port", "[v6]:port", "cidr/len"). */
export function parseAllowList(entries: readonly string[]): AllowEntry[] {
  return entries.map(raw => {
    const e = raw.trim().toLowerCase();
    const cidr = /^([0-9a-f:.]+)\/(\d{1,3})$/.exec(e);
    if (cidr) {
      const family = isIP(cidr[1]);
      const prefix = Number(cidr[2]);
      if (family === 0 || prefix > (family === 4 ? 32 : 128)) throw new TypeError(`invalid CIDR in allow-list: ${raw}`);
      const list = new BlockList();
      list.addSubnet(cidr[1], prefix, family === 4 ? 'ipv4' : 'ipv6');
      return { kind: 'cidr', family: family === 4 ? 'ipv4' : 'ipv6', list };
    }
    const ep = /^(\[[0-9a-f:.]+\]|[a-z0-9.-]+):(\d{1,5})$/.exec(e);
    if (!ep) throw new TypeError(`allow-list entries are host:port or CIDR, got: ${raw}`);
    return { kind: 'endpoint', host: ep[1].replace(/^\[|\]$/g, ''), port: ep[2] };
  });
}

/** Ports a notification destination may use unless the operator says otherwise: https's own. */
export const DEFAULT_DESTINATION_PORTS: readonly string[] = ['443'];

/** An inclusive range of ports; a single port is a range of one. */
export type PortRange = readonly [low: number, high: number];

/** Parses NOTIFICATION_DESTINATION_PORTS entries ("443", "8443", "8000-8999"). */
export function parsePortList(entries: readonly string[]): PortRange[] {
  return entries.map(raw => {
    const m = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(raw.trim());
    const low = Number(m?.[1]);
    const high = m?.[2] === undefined ? low : Number(m[2]);
    if (!m || low < 1 || high > 65_535 || low > high) throw new TypeError(`ports are 1-65535 or low-high ranges, got: ${raw}`);
    return [low, high] as const;
  });
}

export interface DestinationPolicy {
  readonly allow: readonly AllowEntry[];
  /**
   * Ports any destination may use (default {@link DEFAULT_DESTINATION_PORTS}); an allow-list
   * host:port entry admits its own port for its own host besides.
   */
  readonly ports?: readonly PortRange[];
  /** host:port endpoints of the mesh (services, NATS): refused even when public. */
  readonly meshEndpoints: readonly string[];
  readonly resolve?: HostResolver;
  readonly resolveTimeoutMs?: number;
}

/** A destination refused by the SSRF rules; the message never repeats the URI. */
export class DestinationRefused extends Error {
  override readonly name = 'DestinationRefused';
}

const refuse = (reason: string) => new DestinationRefused(reason);

/** Where a checked destination may be reached: connect to `address`, speak TLS to `host`. */
export interface SafeDestination {
  readonly url: URL;
  readonly host: string;
  readonly port: number;
  /** The vetted address to connect to (pinned, so DNS cannot change between check and use). */
  readonly address: string | undefined;
}

function defaultPort(url: URL): string {
  return url.port === '' ? '443' : url.port;
}

function familyOf(address: string): 'ipv4' | 'ipv6' {
  return isIP(address) === 6 ? 'ipv6' : 'ipv4';
}

/** The IPv4 address inside an IPv4-mapped IPv6 address (::ffff:a.b.c.d or ::ffff:hhhh:hhhh). */
function mappedV4(address: string): string | undefined {
  const m = /^::ffff:(?:0:)?(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (m) return m[1];
  const h = /^::ffff:(?:0:)?([0-9a-f]{1,4}):([0-9a-f]{1,4})$/i.exec(address);
  if (!h) return undefined;
  const hi = parseInt(h[1], 16);
  const lo = parseInt(h[2], 16);
  return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
}

const DEFAULT_PORT_RANGES = parsePortList(DEFAULT_DESTINATION_PORTS);

function portAllowed(policy: DestinationPolicy, port: number): boolean {
  return (policy.ports ?? DEFAULT_PORT_RANGES).some(([low, high]) => port >= low && port <= high);
}

function allowedByCidr(policy: DestinationPolicy, address: string): boolean {
  const family = familyOf(address);
  return policy.allow.some(a => a.kind === 'cidr' && a.family === family && a.list.check(address, family));
}

function isBlockedAddress(address: string): boolean {
  if (familyOf(address) === 'ipv4') return BLOCKED_V4_LIST.check(address, 'ipv4');
  const v4 = mappedV4(address);
  if (v4 !== undefined && BLOCKED_V4_LIST.check(v4, 'ipv4')) return true;
  return BLOCKED_V6_LIST.check(address, 'ipv6');
}

/**
 * Checks a notification destination against server-side request forgery (T8 security test
 * catalogue 5): https only, no user info, and every address the host resolves to must be
 * public: not loopback, private, link-local (cloud metadata), unique-local, multicast, reserved,
 * nor a mesh endpoint; and the port must be one the policy allows (443 by default), checked
 * before any name is resolved. IPv4 written as a decimal or hex number or with short forms is normalised
 * by the WHATWG URL parser first, so `https://2130706433/` is 127.0.0.1. An operator allow-list
 * of host:port or CIDR entries lifts the address rules (never the https rule); a host:port
 * entry also admits its port for that host, a CIDR entry admits no port. Throws
 * {@link DestinationRefused}.
 *
 * It runs when a subscription is written and again when a notification is delivered (DNS answers
 * change): delivery connects to the returned address only.
 */
export async function resolveSafeDestination(value: string, policy: DestinationPolicy): Promise<SafeDestination> {
  if (value.length > MAX_DESTINATION_CHARS) throw refuse(`must be at most ${MAX_DESTINATION_CHARS} characters`);
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw refuse('must be an absolute URI');
  }
  if (url.protocol !== 'https:') throw refuse('must use https');
  if (url.username !== '' || url.password !== '') throw refuse('must not carry user information');
  const host = url.hostname
    .replace(/^\[|\]$/g, '')
    .toLowerCase()
    .replace(/\.$/, '');
  const port = defaultPort(url);
  if (host === '') throw refuse('must name a host');
  const vetted = (address: string | undefined): SafeDestination => ({ url, host, port: Number(port), address });
  if (policy.allow.some(a => a.kind === 'endpoint' && a.host === host && a.port === port)) {
    return vetted(isIP(host) !== 0 ? host : undefined);
  }
  if (!portAllowed(policy, Number(port))) throw refuse('must use a port the operator allows');
  const endpoint = `${host}:${port}`;
  if (policy.meshEndpoints.some(m => m.toLowerCase() === endpoint)) throw refuse('must not point at an internal address');
  let addresses: string[];
  if (isIP(host) !== 0) {
    addresses = [host];
  } else {
    if (host === 'localhost' || host.endsWith('.localhost')) throw refuse('must not point at an internal address');
    addresses = await resolveAll(host, policy);
  }
  for (const address of addresses) {
    if (policy.meshEndpoints.some(m => m.toLowerCase() === `${address}:${port}` || m.toLowerCase() === `[${address}]:${port}`)) {
      throw refuse('must not point at an internal address');
    }
    if (isBlockedAddress(address) && !allowedByCidr(policy, address)) throw refuse('must not point at an internal address');
  }
  return vetted(addresses[0]);
}

async function resolveAll(host: string, policy: DestinationPolicy): Promise<string[]> {
  const resolve: HostResolver = policy.resolve ?? (h => dnsLookup(h, { all: true, verbatim: true }));
  const timeoutMs = policy.resolveTimeoutMs ?? DEFAULT_RESOLVE_TIMEOUT_MS;
  let timer: NodeJS.Timeout | undefined;
  try {
    const answers = await Promise.race([
      resolve(host),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error('timeout')), timeoutMs);
      }),
    ]);
    if (answers.length === 0) throw new Error('no addresses');
    return answers.map(a => a.address);
  } catch {
    throw refuse('must name a host that resolves');
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The operator's notification destination settings, the same for capability-exposure (which
 * checks a destination when a subscription is written) and the edge (which checks it again
 * before each delivery): spread into each service's settings object.
 */
export const NOTIFICATION_DESTINATION_SETTINGS = {
  /** Exceptions to the address rules: host:port or CIDR entries. */
  destinationAllowList: list('NOTIFICATION_DESTINATION_ALLOWLIST', []),
  /** Ports every destination may use: single ports or low-high ranges. */
  destinationPorts: list('NOTIFICATION_DESTINATION_PORTS', DEFAULT_DESTINATION_PORTS),
} as const;

/**
 * Builds the destination policy from those settings, once at start-up.
 *
 * @throws AeseError INVALID_INPUT naming the variable whose entry is malformed.
 */
export function notificationDestinationPolicy(
  settings: { readonly destinationAllowList: readonly string[]; readonly destinationPorts: readonly string[] },
  meshEndpoints: readonly string[],
  resolve?: HostResolver,
): DestinationPolicy {
  const parsed = <T>(name: string, parse: () => T): T => {
    try {
      return parse();
    } catch (err) {
      throw new AeseError('INVALID_INPUT', `${name}: ${(err as Error).message}`);
    }
  };
  return {
    allow: parsed('NOTIFICATION_DESTINATION_ALLOWLIST', () => parseAllowList(settings.destinationAllowList)),
    ports: parsed('NOTIFICATION_DESTINATION_PORTS', () => parsePortList(settings.destinationPorts)),
    meshEndpoints,
    ...(resolve ? { resolve } : {}),
  };
}
