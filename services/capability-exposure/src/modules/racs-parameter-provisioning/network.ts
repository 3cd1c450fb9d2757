import type { components } from '@aese/t8-openapi/racs-parameter-provisioning';
import type { ModuleServices, RouteRequest } from '../registry.js';
import type { NetworkSide } from '../toolkit/lifecycle.js';
import { vendorOf } from './ucmf.js';
import type { SimulatedUcmf, UcmfDictionary } from './ucmf.js';
import { AllRefused } from '../toolkit/refusals.js';

/** A RACS parameter provisioning, as the official schema types it. */
export type Provisioning = components['schemas']['RacsProvisioningData'];
/** Nothing beside a provisioning: what the UCMF holds is the provisioning itself. */
export type State = Record<string, never>;

/** Thrown by a create or an update the UCMF refused for every configuration it named: nothing is stored. */
/**
 * What 3gpp-racs-pp does in the network: a write provisions the configurations at the simulated
 * UCMF, whose refusals become racsReports, or AllRefused when it refused every configuration the
 * request named (a patch names only those it changes or removes). The UCMF's dictionary is the
 * stored provisionings: one not stored was never provisioned, and a delete needs nothing more.
 * The API notifies nothing.
 */
export function racsProvisioningNetwork(s: ModuleServices, api: string, ucmf: SimulatedUcmf): NetworkSide<Provisioning, State> {
  /** The UCMF dictionary without one provisioning (it is being rewritten). */
  function dictionaryWithout(scsAsId: string, provisioningId: string): UcmfDictionary {
    const racsIds = new Set<string>();
    const tacVendors = new Map<string, string>();
    for (const r of s.store.all(api)) {
      if (r.scsAsId === scsAsId && r.id === provisioningId) continue;
      for (const config of Object.values((r.resource as Provisioning).racsConfigs)) {
        racsIds.add(config.racsId);
        for (const tac of config.imeiTacs) tacVendors.set(tac, vendorOf(config.racsId));
      }
    }
    return { racsIds, tacVendors };
  }

  function provision(body: Provisioning, req: RouteRequest, provisioningId: string, current: Provisioning['racsConfigs']): Partial<Provisioning> {
    const outcome = ucmf.provision(body.racsConfigs, current, dictionaryWithout(req.scsAsId, provisioningId));
    const refused = new Set(outcome.reports.flatMap(r => r.racsIds));
    const named = Object.entries((req.body as Partial<Provisioning> | undefined)?.racsConfigs ?? {});
    if (refused.size > 0 && named.length > 0 && named.every(([id, config]) => config !== null && refused.has(id)))
      throw new AllRefused(outcome.reports, 'the UCMF refused every configuration');
    // The reports are keyed by failure code ("any string value can be used as a key").
    const racsReports = Object.fromEntries(outcome.reports.map(r => [r.failureCode, r]));
    return { racsConfigs: outcome.provisioned, ...(outcome.reports.length > 0 ? { racsReports } : {}) };
  }

  return {
    create: async (body, call) => ({ state: {}, set: provision(body, call.req, call.id, {}) }),
    update: async (next, held, call) => ({ state: held.state, set: provision(next, call.req, held.record.id, held.resource.racsConfigs) }),
  };
}
