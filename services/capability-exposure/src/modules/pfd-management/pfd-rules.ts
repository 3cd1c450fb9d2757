import { isIP } from 'node:net';
import type { components } from '@aese/t8-openapi/pfd-management';
import { invalidParam, PROBLEM_CAUSES } from '../../domain/problem.js';

type PfdData = components['schemas']['PfdData'];
type Pfd = components['schemas']['Pfd'];

/** A map key as a JSON pointer segment (RFC 6901). */
export const pointerSegment = (key: string): string => key.replace(/~/g, '~0').replace(/\//g, '~1');

/** The link of one application of a transaction (the Individual Application PFD Management resource). */
export const applicationSelf = (transactionSelf: string, appId: string): string => `${transactionSelf}/applications/${encodeURIComponent(appId)}`;

/**
 * External application ids and PFD ids name sub-resources in URIs: printable ASCII without "/",
 * at most 128 characters, and not "." or "..", so every one of them can be addressed.
 */
const PATH_ID = /^(?!\.{1,2}$)[\x21-\x2e\x30-\x7e]{1,128}$/;
const MATCH_TEXT_MAX_CHARS = 1024;

/** An IPFilterRule address (RFC 6733 cl. 4.3.1): an address with an optional prefix, `any`, or the UE's (`assigned`). */
function addressError(address: string): string | undefined {
  if (address === 'any' || address === 'assigned') return undefined;
  const [ip, prefix, ...rest] = address.split('/');
  const family = isIP(ip);
  if (family === 0 || rest.length > 0) return 'is not an IPFilterRule address';
  if (prefix !== undefined && (!/^\d{1,3}$/.test(prefix) || Number(prefix) > (family === 4 ? 32 : 128))) return 'has a prefix length out of range';
  return undefined;
}

const FLOW = /^permit out (ip|tcp|udp|icmp|sctp|\d{1,3}) from (\S+)((?: [\d,-]+)?) to (\S+)((?: [\d,-]+)?)$/;
const PORT_RANGE = /^(\d{1,5})(?:-(\d{1,5}))?$/;

function portsError(ports: string): string | undefined {
  if (ports === '') return undefined;
  for (const range of ports.trim().split(',')) {
    const m = PORT_RANGE.exec(range);
    if (!m || Number(m[1]) > 65535 || (m[2] !== undefined && (Number(m[2]) > 65535 || Number(m[2]) < Number(m[1])))) return 'has a port out of range';
  }
  return undefined;
}

/**
 * Why a flow description is not the 3-tuple a PFD carries (TS 29.122 cl. 5.11.2.1.4): an
 * IPFilterRule `permit out <protocol> from <address> [ports] to <address> [ports]`, or undefined.
 */
export function flowDescriptionError(flow: string): string | undefined {
  const m = FLOW.exec(flow);
  if (!m) return 'must be an IPFilterRule "permit out <protocol> from <address> [ports] to <address> [ports]"';
  if (/^\d+$/.test(m[1]) && Number(m[1]) > 255) return 'has a protocol number out of range';
  return addressError(m[2]) ?? portsError(m[3]) ?? addressError(m[4]) ?? portsError(m[5]);
}

function assertPfd(pfd: Pfd, key: string, at: string): void {
  if (pfd.pfdId !== key) throw invalidParam(`${at}/pfdId`, 'must equal its key in pfds', PROBLEM_CAUSES.idMismatch);
  if (!PATH_ID.test(pfd.pfdId)) throw invalidParam(`${at}/pfdId`, 'must be 1 to 128 printable characters without "/"');
  if (!pfd.flowDescriptions && !pfd.urls && !pfd.domainNames) throw invalidParam(at, 'needs flowDescriptions, urls or domainNames');
  if (pfd.dnProtocol !== undefined && !pfd.domainNames) throw invalidParam(`${at}/dnProtocol`, 'applies to domainNames only');
  (pfd.flowDescriptions ?? []).forEach((flow, i) => {
    const reason = flowDescriptionError(flow);
    if (reason) throw invalidParam(`${at}/flowDescriptions/${i}`, reason);
  });
  for (const member of ['urls', 'domainNames'] as const) {
    (pfd[member] ?? []).forEach((text, i) => {
      if (text.length === 0 || text.length > MATCH_TEXT_MAX_CHARS) throw invalidParam(`${at}/${member}/${i}`, `must be 1 to ${MATCH_TEXT_MAX_CHARS} characters`);
    });
  }
}

/**
 * The rules of one application's PFDs beyond the schema: ids that match their keys and can name
 * sub-resources, PFDs that describe traffic, well-formed flow descriptions, and no member only
 * the SCEF writes. `self` is the link the SCEF gives the application, when it is known: an AS may
 * send it back unchanged, never another one. Pure: it runs before authorization.
 */
export function assertPfdData(data: PfdData, at: string, self: string | undefined): void {
  if (!PATH_ID.test(data.externalAppId)) throw invalidParam(`${at}/externalAppId`, 'must be 1 to 128 printable characters without "/"');
  if (data.self !== undefined && data.self !== self) throw invalidParam(`${at}/self`, 'does not match the resource', PROBLEM_CAUSES.idMismatch);
  if (data.cachingTime !== undefined) throw invalidParam(`${at}/cachingTime`, 'is written by the SCEF only');
  const pfds = Object.entries(data.pfds);
  if (pfds.length === 0) throw invalidParam(`${at}/pfds`, 'needs at least one PFD');
  for (const [key, pfd] of pfds) assertPfd(pfd, key, `${at}/pfds/${pointerSegment(key)}`);
}
