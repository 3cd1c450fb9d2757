import { target } from '../domain/decision.js';
import type { NetworkAdapter, UeView } from '../network/network-adapter.js';

/** How an AS named the UE(s) of a resource; reports name them the same way. */
export type IdentifiedBy = 'externalId' | 'msisdn' | 'externalGroupId' | 'address';

/** The UEs a resource is about, resolved in the network. */
export interface ResolvedUes {
  readonly identifiedBy: IdentifiedBy;
  readonly ues: readonly UeView[];
}

/** Resolves an externalId / msisdn / externalGroupId to UEs; undefined when the network does not know it. */
export async function resolveIdentifier(network: NetworkAdapter, kind: 'externalId' | 'msisdn' | 'externalGroupId', value: string): Promise<ResolvedUes | undefined> {
  if (kind === 'externalGroupId') {
    const members = await network.groupMembers(value);
    return members ? { identifiedBy: kind, ues: members } : undefined;
  }
  const ue = await network.findUe(kind === 'externalId' ? { externalId: value } : { msisdn: value });
  return ue ? { identifiedBy: kind, ues: [ue] } : undefined;
}

/** Authorization target strings of the identifiers present in a body. */
export function identifierTargets(body: Record<string, unknown>, members: Readonly<Record<string, 'externalId' | 'msisdn' | 'externalGroupId'>>): string[] {
  const out: string[] = [];
  for (const [member, kind] of Object.entries(members)) {
    const v = body[member];
    if (typeof v === 'string') out.push(target(kind, v));
    if (Array.isArray(v)) for (const x of v) if (typeof x === 'string') out.push(target(kind, x));
  }
  return out;
}
