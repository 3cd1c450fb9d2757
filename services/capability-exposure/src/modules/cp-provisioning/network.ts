import type { components } from '@aese/t8-openapi/cp-provisioning';
import { invalidParam, PROBLEM_CAUSES } from '../../domain/problem.js';
import type { ModuleServices, RouteRequest } from '../registry.js';
import type { NetworkSide } from '../toolkit/lifecycle.js';
import { resolveIdentifier } from '../ue-targets.js';
import type { SimulatedCpHss } from './hss.js';
import { AllRefused } from '../toolkit/refusals.js';

/** A CP provisioning subscription, as the official schema types it. */
export type CpInfo = components['schemas']['CpInfo'];

export interface CpState {
  /** The UEs the sets are provisioned for (a group's members when it was last written). */
  readonly ueHandles: readonly string[];
}

/** The members naming the UE or group, and their target kinds: exactly one, fixed once the subscription exists. */
export const CP_IDENTIFIERS = { externalId: 'externalId', msisdn: 'msisdn', externalGroupId: 'externalGroupId' } as const;

/** Thrown by a create or an update the HSS refused for every set: nothing is stored. */
/** The link of one set of a subscription (the Individual CP Set Provisioning resource). */
export const setSelf = (subscriptionSelf: string, setId: string): string => `${subscriptionSelf}/cpSets/${encodeURIComponent(setId)}`;

/**
 * The set ids the UEs have in the AS's other subscriptions. A set id is the SCS/AS's correlator
 * (TS 29.122 CpParameterSet), so the HSS keys sets by AS and UE: another AS's sets are neither a
 * conflict nor anything this AS may learn of.
 */
export function takenElsewhere(s: ModuleServices, api: string, ueHandles: readonly string[], scsAsId: string, subscriptionId: string): Set<string> {
  const mine = new Set(ueHandles);
  const taken = new Set<string>();
  for (const r of s.store.all(api)) {
    if (r.scsAsId !== scsAsId || r.id === subscriptionId) continue;
    if (!((r.state['ueHandles'] as string[] | undefined) ?? []).some(h => mine.has(h))) continue;
    for (const set of Object.values((r.resource as CpInfo).cpParameterSets)) taken.add(set.setId);
  }
  return taken;
}

/**
 * What 3gpp-cp-parameter-provisioning does in the network: a write resolves the UE or group and
 * provisions its sets at the simulated HSS, whose refusals become cpReports (or AllRefused). The
 * HSS's store is the stored subscriptions: one not stored was never provisioned, and a delete
 * needs nothing more. The API notifies nothing.
 */
export function cpProvisioningNetwork(s: ModuleServices, api: string, hss: SimulatedCpHss): NetworkSide<CpInfo, CpState> {
  async function ueHandlesOf(body: CpInfo): Promise<string[]> {
    const member = (Object.keys(CP_IDENTIFIERS) as (keyof typeof CP_IDENTIFIERS)[]).find(m => m in body)!;
    const resolved = await resolveIdentifier(s.network, CP_IDENTIFIERS[member], body[member]!);
    if (!resolved || resolved.ues.length === 0) throw invalidParam(`/${member}`, 'is not known to the network', PROBLEM_CAUSES.unknownUe);
    return resolved.ues.map(u => u.handle);
  }

  async function provision(body: CpInfo, self: string, req: RouteRequest, subscriptionId: string, current: CpInfo['cpParameterSets']) {
    const ueHandles = await ueHandlesOf(body);
    const outcome = hss.provision(body.cpParameterSets, current, takenElsewhere(s, api, ueHandles, req.scsAsId, subscriptionId), setId => setSelf(self, setId));
    if (outcome.refused === Object.keys(body.cpParameterSets).length) throw new AllRefused(outcome.reports, 'the HSS refused every set');
    // The reports are keyed by failure code: the failure identifier of TS 29.122.
    const cpReports = Object.fromEntries(outcome.reports.map(r => [r.failureCode, r]));
    return { state: { ueHandles }, set: { cpParameterSets: outcome.provisioned, ...(outcome.reports.length > 0 ? { cpReports } : {}) } };
  }

  return {
    create: async (body, call) => provision(body, call.self, call.req, call.id, {}),
    update: async (next, held, call) => provision(next, call.self, call.req, held.record.id, held.resource.cpParameterSets),
  };
}
