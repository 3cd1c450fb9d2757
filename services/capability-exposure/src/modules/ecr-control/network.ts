import { createHash } from 'node:crypto';
import { targetOf } from '@aese/t8-catalog';
import type { ResourceStore, StoredResource } from '../../domain/resource-store.js';
import type { Plmn, UeView } from '../../network/network-adapter.js';

/** Restriction of the enhanced coverage modes for WB-E-UTRAN in one PLMN (TS 29.503 EcRestrictionDataWb). */
export interface WbRestriction {
  readonly plmnId: Plmn;
  readonly ecModeARestricted?: boolean;
  readonly ecModeBRestricted?: boolean;
}

/**
 * The enhanced coverage restriction a UE's subscription holds (TS 23.682 clause 5.18): a complete
 * list of serving PLMNs where enhanced coverage is restricted, or one where it is allowed (and
 * restricted everywhere else), and per PLMN the WB-E-UTRAN coverage modes restricted.
 */
export interface CoverageRestriction {
  readonly listed: 'restricted' | 'allowed';
  readonly plmns: readonly Plmn[];
  readonly wb: readonly WbRestriction[];
}

/** A change to a UE's restriction: each part given replaces that part, the others stay. */
export interface CoverageRestrictionChange {
  readonly list?: { readonly listed: 'restricted' | 'allowed'; readonly plmns: readonly Plmn[] };
  readonly wb?: readonly WbRestriction[];
}

/** A subscription nothing was configured for: enhanced coverage restricted nowhere. */
export const UNRESTRICTED: CoverageRestriction = { listed: 'restricted', plmns: [], wb: [] };

/** The HSS (S6t) or UDM (Nudm) side of ECRControl: the subscription data of one UE. */
export interface CoverageRestrictions {
  read(ue: UeView): Promise<CoverageRestriction>;
  /** Applies a change as one step with other writers and answers the result. */
  write(ue: UeView, change: CoverageRestrictionChange): Promise<CoverageRestriction>;
}

/**
 * Owner of the simulated subscription records in the resource store. It is no valid scsAsId
 * (`=` is outside their syntax), so no AS owns these records or can name them.
 */
export const SUBSCRIBER_DATA_OWNER = '=hss';

/**
 * Simulated HSS data kept in the SCEF's resource store under the API's name, one record per UE:
 * every replica reads and writes the same copy (the simulated core is per replica), and it
 * survives restarts like subscription data does. A record is keyed by a digest of the UE's handle,
 * never by an identifier.
 */
export class StoredCoverageRestrictions implements CoverageRestrictions {
  constructor(
    private readonly store: ResourceStore,
    private readonly api: string,
    private readonly category: string,
    private readonly now: () => number,
  ) {}

  async read(ue: UeView): Promise<CoverageRestriction> {
    const record = await this.store.get(this.api, SUBSCRIBER_DATA_OWNER, recordId(ue));
    return record ? (record.resource as unknown as CoverageRestriction) : UNRESTRICTED;
  }

  async write(ue: UeView, change: CoverageRestrictionChange): Promise<CoverageRestriction> {
    const id = recordId(ue);
    let written: CoverageRestriction = UNRESTRICTED;
    await this.store.update(this.api, SUBSCRIBER_DATA_OWNER, id, current => {
      const before = current ? (current.resource as unknown as CoverageRestriction) : UNRESTRICTED;
      written = { ...(change.list ?? { listed: before.listed, plmns: before.plmns }), wb: change.wb ?? before.wb };
      const at = this.now();
      const record: StoredResource = {
        api: this.api,
        scsAsId: SUBSCRIBER_DATA_OWNER,
        id,
        resource: { ...written },
        targets: [targetOf('externalId', ue.externalId)],
        dataCategories: [this.category],
        createdAtMs: current?.createdAtMs ?? at,
        updatedAtMs: at,
        state: {},
      };
      return record;
    });
    return written;
  }
}

/** A UUID-shaped key of a UE's record: the same for the same UE, telling nothing about it. */
function recordId(ue: UeView): string {
  const x = createHash('sha256').update(`aese-ecr-subscriber/v1\n${ue.handle}`).digest('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20, 32)}`;
}
