import type { components as common } from '@aese/t8-openapi/common-data';
import type { components } from '@aese/t8-openapi/chargeable-party';
import { invalidParam, PROBLEM_CAUSES } from '../../domain/problem.js';
import type { NetworkEvent, UeRef, UeView } from '../../network/network-adapter.js';
import type { ModuleServices, PendingNotification } from '../registry.js';
import type { Held, Lifecycle, NetworkSide } from '../toolkit/lifecycle.js';

/** The resource, as the official schema types it. */
export type Resource = components['schemas']['ChargeableParty'];
type EventReport = common['schemas']['EventReport'];
type BearerEvent = common['schemas']['Event'];

/** What the module keeps beside each transaction. */
export interface State {
  /** The sponsored UE (the one holding the address when the transaction was made). */
  readonly ueHandle: string;
  /** Volume charged to the sponsor so far, bytes. */
  readonly usedBytes: number;
  readonly usageReported: boolean;
}

/** Volume a sponsored UE uses between two observations of it (each move of a simulated UE), bytes. */
export const SPONSORED_BYTES_PER_MOVE = 1_000_000;

const API = '3gpp-chargeable-party';
const CATEGORY = 'sponsoring';
/** The capability event saying a transaction's sponsoring now applies. */
const ALLOCATED = 'resources-allocated';

/** The UE address a transaction names. */
function ueRefOf(body: Resource): UeRef | undefined {
  if (body.ipv4Addr !== undefined) return { ipv4Addr: body.ipv4Addr };
  if (body.ipv6Addr !== undefined) return { ipv6Addr: body.ipv6Addr };
  if (body.macAddr !== undefined) return { macAddr: body.macAddr };
  return undefined;
}

/**
 * Sponsored data connectivity (TS 29.122 clause 5.5) in the simulated network: the PCRF charges
 * the session of the UE holding the address to the sponsor while `sponsoringEnabled` is true.
 * The AS hears of the events it listed in `events`: SUCCESSFUL_RESOURCES_ALLOCATION once the
 * sponsoring applies, LOSS_OF_BEARER and RECOVERY_OF_BEARER as the UE loses and regains
 * reachability, and one USAGE_REPORT once the sponsored volume reaches `usageThreshold`.
 */
export function chargeablePartyNetwork(s: ModuleServices): NetworkSide<Resource, State> {
  async function resolve(body: Resource): Promise<UeView> {
    const ref = ueRefOf(body);
    const ue = ref ? await s.network.findUe(ref) : undefined;
    if (!ue) throw invalidParam(ref ? `/${Object.keys(ref)[0]}` : '/ipv4Addr', 'is not a UE address of this network', PROBLEM_CAUSES.unknownUe);
    return ue;
  }

  const notify = (held: Held<Resource, State>, event: BearerEvent, extra: Partial<EventReport> = {}): PendingNotification[] => {
    if (!(held.resource.events ?? []).includes(event)) return [];
    const report: EventReport = { event, ...extra };
    return [{ record: held.record, body: { transaction: held.resource.self!, eventReports: [report] }, dataCategories: [CATEGORY] }];
  };

  async function onNetworkEvent(event: NetworkEvent, transactions: Lifecycle<Resource, State>): Promise<PendingNotification[]> {
    if (event.kind === 'capability') {
      if (event.capability !== API || event.type !== ALLOCATED) return [];
      const held = transactions.all().find(h => h.record.scsAsId === event.payload['scsAsId'] && h.record.id === event.payload['id']);
      return held ? notify(held, 'SUCCESSFUL_RESOURCES_ALLOCATION') : [];
    }
    if (event.kind !== 'reachability' && event.kind !== 'location') return [];
    const out: PendingNotification[] = [];
    for (const held of transactions.all()) {
      if (held.state.ueHandle !== event.ue.handle || !held.resource.sponsoringEnabled) continue;
      if (event.kind === 'reachability') {
        out.push(...notify(held, event.reachable ? 'RECOVERY_OF_BEARER' : 'LOSS_OF_BEARER'));
        continue;
      }
      const usedBytes = held.state.usedBytes + SPONSORED_BYTES_PER_MOVE;
      const threshold = held.resource.usageThreshold?.totalVolume;
      const reached = !held.state.usageReported && threshold !== undefined && usedBytes >= threshold;
      await transactions.save(held, { state: { usedBytes, usageReported: held.state.usageReported || reached } });
      if (reached) out.push(...notify(held, 'USAGE_REPORT', { accumulatedUsage: { totalVolume: usedBytes } }));
    }
    return out;
  }

  return {
    create: async (body, call) => {
      const ue = await resolve(body);
      // Reported through the network's events, so whichever replica handles it finds the stored transaction.
      const allocated = () => s.network.emit({ capability: API, type: ALLOCATED, payload: { scsAsId: call.req.scsAsId, id: call.id } });
      return { state: { ueHandle: ue.handle, usedBytes: 0, usageReported: false }, ...(body.sponsoringEnabled ? { after: allocated } : {}) };
    },
    update: async (next, held, call) => {
      // Switching sponsoring on again allocates again; the volume counted so far stays.
      const resumed = next.sponsoringEnabled && !held.resource.sponsoringEnabled;
      const allocated = () => s.network.emit({ capability: API, type: ALLOCATED, payload: { scsAsId: call.req.scsAsId, id: call.id } });
      return { state: held.state, ...(resumed ? { after: allocated } : {}) };
    },
    onNetworkEvent,
  };
}
