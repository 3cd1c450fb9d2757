import { targetOf } from '@aese/t8-catalog';
import { invalidParam, PROBLEM_CAUSES } from '../../domain/problem.js';
import type { NetworkAdapter } from '../../network/network-adapter.js';
import type { Reach } from '../registry.js';
import { assertIdentifierSyntax } from '../ue-targets.js';
import { GROUP_MESSAGE_CATEGORY } from './deliveries.js';

/** What a body naming an external group reaches: the group, for group message delivery. */
export function groupReach(externalGroupId: string | undefined): Reach {
  return { dataCategories: [GROUP_MESSAGE_CATEGORY], targets: externalGroupId === undefined ? [] : [targetOf('externalGroupId', externalGroupId)] };
}

/** The external group is required (it is what authorization decides on) and well-formed. */
export function assertGroup(externalGroupId: string | undefined): void {
  if (externalGroupId === undefined) throw invalidParam('/externalGroupId', 'is required', PROBLEM_CAUSES.ueIdentifierRequired);
  assertIdentifierSyntax('/externalGroupId', 'externalGroupId', externalGroupId);
}

/** The network knows the group: asked only once the request is authorized. */
export async function checkGroupKnown(network: NetworkAdapter, externalGroupId: string): Promise<void> {
  if (!(await network.groupMembers(externalGroupId))) throw invalidParam('/externalGroupId', 'is not known to the network', PROBLEM_CAUSES.unknownUe);
}
