import { targetOf } from '@aese/t8-catalog';
import type { TargetKind } from '@aese/t8-catalog';
import type { NetworkAdapter, UeRef } from '../../network/network-adapter.js';
import { addressTarget, assertIdentifiersSyntax, identifierTargets } from '../ue-targets.js';

/** Members of T8 bodies that name UEs or groups by identifier, and the target kind of each. */
export const UE_IDENTIFIER_MEMBERS: Readonly<Record<string, TargetKind>> = {
  externalId: 'externalId',
  msisdn: 'msisdn',
  externalGroupId: 'externalGroupId',
  extGroupId: 'externalGroupId',
  addedExternalIds: 'externalId',
  addedMsisdns: 'msisdn',
};

/** Members naming a UE by address: authorized as the UE holding it (ue-targets.ts, addressTarget). */
const ADDRESS_MEMBERS: Readonly<Record<string, keyof UeRef>> = {
  ueIpv4Addr: 'ipv4Addr',
  ipv4Addr: 'ipv4Addr',
  ueIpv6Addr: 'ipv6Addr',
  ipv6Addr: 'ipv6Addr',
  macAddr: 'macAddr',
};

/** A GPSI ("msisdn-..." or "extid-...") as a target kind and value. */
function gpsiIdentifier(gpsi: string): { kind: TargetKind; value: string } | undefined {
  if (gpsi.startsWith('msisdn-')) return { kind: 'msisdn', value: gpsi.slice(7) };
  if (gpsi.startsWith('extid-')) return { kind: 'externalId', value: gpsi.slice(6) };
  return undefined;
}

/**
 * The authorization targets of every UE a body names, in any of the members T8 bodies use:
 * identifiers as given, a GPSI as the identifier it wraps, an address as the UE holding it.
 */
export async function ueTargetsOf(network: NetworkAdapter, body: object): Promise<string[]> {
  const b = body as Record<string, unknown>;
  const targets = identifierTargets(b, UE_IDENTIFIER_MEMBERS);
  if (typeof b['gpsi'] === 'string') {
    const id = gpsiIdentifier(b['gpsi']);
    if (id) targets.push(targetOf(id.kind, id.value));
  }
  for (const [member, ref] of Object.entries(ADDRESS_MEMBERS)) {
    const v = b[member];
    if (typeof v === 'string') targets.push(await addressTarget(network, { [ref]: v }));
  }
  return [...new Set(targets)].sort();
}

/** Refuses a malformed UE identifier in any of those members (400 naming the member, never its value). */
export function assertUeIdentifiers(body: object): void {
  const b = body as Record<string, unknown>;
  assertIdentifiersSyntax(b, UE_IDENTIFIER_MEMBERS);
  if (typeof b['gpsi'] === 'string') {
    const id = gpsiIdentifier(b['gpsi']);
    if (id) assertIdentifiersSyntax({ gpsi: id.value }, { gpsi: id.kind });
  }
}
