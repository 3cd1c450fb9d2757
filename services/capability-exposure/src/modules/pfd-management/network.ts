import type { components } from '@aese/t8-openapi/pfd-management';
import type { NetworkEvent } from '../../network/network-adapter.js';
import type { ModuleServices, PendingNotification, RouteRequest } from '../registry.js';
import type { Lifecycle, NetworkSide } from '../toolkit/lifecycle.js';
import { applicationSelf } from './pfd-rules.js';
import { PFD_DISTRIBUTION_EVENT } from './pfdf.js';
import type { SimulatedPfdf } from './pfdf.js';
import { AllRefused } from '../toolkit/refusals.js';

/** A PFD management transaction, as the official schema types it. */
export type Transaction = components['schemas']['PfdManagement'];
type PfdReport = components['schemas']['PfdReport'];
/** Nothing beside a transaction: what the PFDF holds is the transaction itself. */
export type State = Record<string, never>;

/** Thrown by a create or an update the PFDF refused for every application it named: nothing is stored. */
export interface PfdNetworkDeps {
  readonly api: string;
  readonly category: string;
  readonly pfdf: SimulatedPfdf;
  /** Schema of the PfdReport notification (the callback of TS29122_PfdManagement.yaml). */
  readonly notificationSchema: string;
}

/** External application ids the PFDF holds for every transaction but one (any AS's). */
export function provisionedElsewhere(s: ModuleServices, api: string, scsAsId: string, transactionId: string): Set<string> {
  const ids = new Set<string>();
  for (const r of s.store.all(api)) {
    if (r.scsAsId === scsAsId && r.id === transactionId) continue;
    for (const appId of Object.keys((r.resource as Transaction).pfdDatas)) ids.add(appId);
  }
  return ids;
}

/**
 * What 3gpp-pfd-management does in the network: a write provisions the transaction's applications
 * at the simulated PFDF (its refusals become pfdReports, or AllRefused), and the changed ones go
 * out to the user plane; the distribution report that comes back as a capability event becomes a
 * PARTIAL_FAILURE notification for the applications some UPFs cannot enforce. The PFDF's store is
 * the stored transactions: one not stored was never provisioned, and a delete needs nothing more.
 */
export function pfdManagementNetwork(s: ModuleServices, deps: PfdNetworkDeps): NetworkSide<Transaction, State> {
  const { pfdf } = deps;

  /** The members the SCEF writes, or AllRefused when every application the request named was refused (a patch names only those it changes). */
  function provision(body: Transaction, self: string, req: RouteRequest, transactionId: string, current: Transaction['pfdDatas']): Partial<Transaction> {
    const outcome = pfdf.provision(body.pfdDatas, current, provisionedElsewhere(s, deps.api, req.scsAsId, transactionId), appId => applicationSelf(self, appId));
    const refused = new Set(outcome.reports.flatMap(r => r.externalAppIds));
    const named = Object.keys((req.body as Partial<Transaction> | undefined)?.pfdDatas ?? {});
    if (refused.size > 0 && named.length > 0 && named.every(appId => refused.has(appId))) throw new AllRefused(outcome.reports, 'the PFDF refused every application');
    pfdf.distribute(req.scsAsId, transactionId, outcome.changed);
    // The reports are keyed by failure code: the failure identifier of TS 29.122.
    const pfdReports = Object.fromEntries(outcome.reports.map(r => [r.failureCode, r]));
    return { pfdDatas: outcome.provisioned, ...(outcome.reports.length > 0 ? { pfdReports } : {}) };
  }

  async function onNetworkEvent(event: NetworkEvent, transactions: Lifecycle<Transaction, State>): Promise<PendingNotification[]> {
    if (event.kind !== 'capability' || event.capability !== deps.api || event.type !== PFD_DISTRIBUTION_EVENT) return [];
    const { scsAsId, transactionId, externalAppIds } = event.payload;
    if (!Array.isArray(externalAppIds)) return [];
    const held = transactions.all().find(h => h.record.scsAsId === scsAsId && h.record.id === transactionId);
    if (!held || held.resource.notificationDestination === undefined) return [];
    // What the transaction holds now: an application removed or changed since is not reported on.
    const byArea = new Map<string, PfdReport>();
    for (const appId of externalAppIds) {
      if (typeof appId !== 'string' || !Object.hasOwn(held.resource.pfdDatas, appId)) continue;
      const dnais = pfdf.unenforcedAt(held.resource.pfdDatas[appId]);
      if (dnais.length === 0) continue;
      const key = dnais.join(' ');
      const report = byArea.get(key) ?? { externalAppIds: [], failureCode: 'PARTIAL_FAILURE', locationArea: { dnais } };
      report.externalAppIds.push(appId);
      byArea.set(key, report);
    }
    if (byArea.size === 0) return [];
    return [{ record: held.record, body: [...byArea.values()], dataCategories: [deps.category], schema: deps.notificationSchema }];
  }

  return {
    create: async (body, call) => ({ state: {}, set: provision(body, call.self, call.req, call.id, {}) }),
    update: async (next, held, call) => ({ state: held.state, set: provision(next, call.self, call.req, held.record.id, held.resource.pfdDatas) }),
    onNetworkEvent,
    stop: async () => pfdf.stop(),
  };
}
