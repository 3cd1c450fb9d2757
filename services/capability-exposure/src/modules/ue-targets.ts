import { identifierSyntaxError, targetOf } from '@aese/t8-catalog';
import type { TargetKind } from '@aese/t8-catalog';
import { invalidParam } from '../domain/problem.js';
import type { NetworkAdapter, UeRef, UeView } from '../network/network-adapter.js';

/** The target kinds that name UEs or groups (not applications). */
export type UeTargetKind = Exclude<TargetKind, 'externalAppId'>;

/** How an AS named the UE(s) of a resource; reports name them the same way. */
export type IdentifiedBy = 'externalId' | 'msisdn' | 'externalGroupId' | 'address';

/** The UEs a resource is about, resolved in the network. */
export interface ResolvedUes {
  readonly identifiedBy: IdentifiedBy;
  readonly ues: readonly UeView[];
}

/**
 * The target of a UE address that no UE holds. Grants name UEs by identifier, never by address,
 * so an address is authorized as the UE holding it; a free address is authorized as this
 * identifier, which no UE has (an `.invalid` domain, RFC 2606). The decision is then the very
 * denial an ungranted UE gets (same cause, same audit), so a 403 or a 400 tells nothing of which
 * addresses are in use; only an AS granted any target may learn that an address is unknown.
 */
export const FREE_ADDRESS_TARGET = targetOf('externalId', 'free-address@ue.invalid');

/** The authorization target of a UE address: the UE holding it, looked up, or {@link FREE_ADDRESS_TARGET}. */
export async function addressTarget(network: NetworkAdapter, ref: UeRef): Promise<string> {
  const ue = await network.findUe(ref);
  return ue ? targetOf('externalId', ue.externalId) : FREE_ADDRESS_TARGET;
}

/** Resolves an externalId / msisdn / externalGroupId to UEs; undefined when the network does not know it. */
export async function resolveIdentifier(network: NetworkAdapter, kind: UeTargetKind, value: string): Promise<ResolvedUes | undefined> {
  if (kind === 'externalGroupId') {
    const members = await network.groupMembers(value);
    return members ? { identifiedBy: kind, ues: members } : undefined;
  }
  const ue = await network.findUe(kind === 'externalId' ? { externalId: value } : { msisdn: value });
  return ue ? { identifiedBy: kind, ues: [ue] } : undefined;
}

/** The identifier values of the members of a body, each with its JSON pointer. */
function identifiers(body: Record<string, unknown>, members: Readonly<Record<string, TargetKind>>): { pointer: string; kind: TargetKind; value: string }[] {
  const out: { pointer: string; kind: TargetKind; value: string }[] = [];
  for (const [member, kind] of Object.entries(members)) {
    const v = body[member];
    if (typeof v === 'string') out.push({ pointer: `/${member}`, kind, value: v });
    if (Array.isArray(v)) v.forEach((x, i) => typeof x === 'string' && out.push({ pointer: `/${member}/${i}`, kind, value: x }));
  }
  return out;
}

/** Authorization target strings of the identifiers present in a body. */
export function identifierTargets(body: Record<string, unknown>, members: Readonly<Record<string, TargetKind>>): string[] {
  return identifiers(body, members).map(i => targetOf(i.kind, i.value));
}

/**
 * Refuses a malformed identifier with a 400 naming its member (never its value), by the rules
 * authorization applies to targets (@aese/t8-catalog).
 */
export function assertIdentifierSyntax(pointer: string, kind: TargetKind, value: string): void {
  const reason = identifierSyntaxError(kind, value);
  if (reason !== undefined) throw invalidParam(pointer, reason);
}

/** {@link assertIdentifierSyntax} for every identifier member of a body. */
export function assertIdentifiersSyntax(body: Record<string, unknown>, members: Readonly<Record<string, TargetKind>>): void {
  for (const i of identifiers(body, members)) assertIdentifierSyntax(i.pointer, i.kind, i.value);
}
