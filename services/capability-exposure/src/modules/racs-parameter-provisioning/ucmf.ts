import type { components } from '@aese/t8-openapi/racs-parameter-provisioning';

type RacsConfiguration = components['schemas']['RacsConfiguration'];
type RacsFailureReport = components['schemas']['RacsFailureReport'];
type RacsFailure = 'RACS_ID_DUPLICATED' | 'RESOURCE_LIMITATION' | 'OTHER_REASON';

/** Largest UE radio capability container (EPS or 5GS) the simulated UCMF stores, in characters. */
export const DEFAULT_MAX_CAPABILITY_CHARS = 8192;

/** The manufacturer of a manufacturer-assigned UE radio capability ID: its Vendor ID (TS 23.003 cl. 29.2). */
export const vendorOf = (racsId: string): string => racsId.slice(1, 9).toLowerCase();

/** What the UCMF holds already, outside the provisioning being written. */
export interface UcmfDictionary {
  /** UE radio capability IDs provisioned by every other provisioning (any AS's). */
  readonly racsIds: ReadonlySet<string>;
  /** The vendor each IMEI TAC (a UE model) is bound to. */
  readonly tacVendors: ReadonlyMap<string, string>;
}

/** What the UCMF did with a provisioning's configurations. */
export interface RacsOutcome {
  readonly provisioned: Record<string, RacsConfiguration>;
  readonly reports: RacsFailureReport[];
}

/**
 * The UE radio capability management function of the simulated network: a dictionary from
 * manufacturer-assigned UE radio capability IDs to the capabilities of UE models (IMEI TACs). It
 * holds an ID once (RACS_ID_DUPLICATED), binds a UE model to one manufacturer (a TAC another
 * vendor's ID names: OTHER_REASON) and keeps containers up to a size (RESOURCE_LIMITATION). Its
 * dictionary is the SCEF's provisionings (they hold exactly what it accepted): nothing in memory.
 */
export class SimulatedUcmf {
  constructor(readonly maxCapabilityChars: number = DEFAULT_MAX_CAPABILITY_CHARS) {}

  refusal(config: RacsConfiguration, held: UcmfDictionary): RacsFailure | undefined {
    if (held.racsIds.has(config.racsId)) return 'RACS_ID_DUPLICATED';
    const vendor = vendorOf(config.racsId);
    if (config.imeiTacs.some(tac => (held.tacVendors.get(tac) ?? vendor) !== vendor)) return 'OTHER_REASON';
    if ([config.racsParamEps, config.racsParam5Gs].some(c => c !== undefined && c.length > this.maxCapabilityChars)) return 'RESOURCE_LIMITATION';
    return undefined;
  }

  /**
   * Provisions a provisioning's configurations, replacing `current`. Each accepted one binds its
   * TACs for the ones after it. A refused configuration that was provisioned before keeps its
   * data: the UCMF refused the change, not the ID.
   */
  provision(request: Readonly<Record<string, RacsConfiguration>>, current: Readonly<Record<string, RacsConfiguration>>, held: UcmfDictionary): RacsOutcome {
    const tacVendors = new Map(held.tacVendors);
    const provisioned: Record<string, RacsConfiguration> = {};
    const refused = new Map<RacsFailure, string[]>();
    for (const [racsId, config] of Object.entries(request)) {
      const failure = this.refusal(config, { racsIds: held.racsIds, tacVendors });
      if (failure) {
        refused.set(failure, [...(refused.get(failure) ?? []), racsId]);
      }
      const kept = failure ? current[racsId] : config;
      if (!kept) continue;
      provisioned[racsId] = kept;
      for (const tac of kept.imeiTacs) tacVendors.set(tac, vendorOf(racsId));
    }
    return { provisioned, reports: [...refused].map(([failureCode, racsIds]) => ({ racsIds, failureCode })) };
  }
}
