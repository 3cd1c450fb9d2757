import type { NetworkAdapter } from '../../network/network-adapter.js';
import type { AreaSpec } from './location-area.js';
import { plmnOf } from './location-area.js';

/** Highest congestion level (TS 29.122 CongestionValue: 0 none, 1 lowest, 31 highest). */
export const MAX_CONGESTION_LEVEL = 31;
/** Connected UEs a tracking area carries at the highest level, unless told otherwise. */
export const DEFAULT_TRACKING_AREA_CAPACITY = 16;

/** The congestion of the radio network at one moment, as RAN congestion reporting (the RCAF, TS 29.153) gives it. */
export interface CongestionView {
  /** PLMNs (MCC + MNC) whose radio network reports here. */
  readonly plmns: ReadonlySet<string>;
  /** Level of an area: that of its most congested tracking area; a place nothing is reported for is not congested. */
  levelOf(area: AreaSpec): number;
}

/** What the SCEF asks of the radio network for ReportingNetworkStatus. */
export interface CongestionReporting {
  current(): Promise<CongestionView>;
}

export interface SimulatedRcafOptions {
  readonly trackingAreaCapacity?: number;
}

/**
 * Simulated RAN congestion reporting over the simulated core: congestion is load. A tracking
 * area's level is the share of its capacity that the connected (reachable) UEs camping in its
 * cells take, scaled to 0..31; a cell or eNodeB is as congested as its tracking area. It is
 * derived from the network's state alone, so every replica finds the same level for the same
 * state, and it moves as UEs move, attach and detach. The cells and tracking areas it knows are
 * those the network's own (not roaming) UEs are located in: the core offers no other view of its
 * radio network.
 */
export function simulatedRcaf(network: NetworkAdapter, options: SimulatedRcafOptions = {}): CongestionReporting {
  const capacity = Math.max(1, options.trackingAreaCapacity ?? DEFAULT_TRACKING_AREA_CAPACITY);
  const levelOfLoad = (connected: number): number => Math.min(MAX_CONGESTION_LEVEL, Math.round((MAX_CONGESTION_LEVEL * connected) / capacity));

  return {
    async current(): Promise<CongestionView> {
      const connected = new Map<string, number>();
      const trackingAreaOfCell = new Map<string, string>();
      const plmns = new Set<string>();
      for (const ids of (await network.listIdentities()).ues) {
        const ue = await network.findUe({ externalId: ids.externalId });
        if (!ue) continue;
        const [location, reachability, roaming] = await Promise.all([network.locate(ue), network.reachability(ue), network.roaming(ue)]);
        // A roaming UE camps in another operator's radio network.
        if (roaming.roaming) continue;
        const plmn = `${location.plmn.mcc}${location.plmn.mnc}`;
        const tai = `${plmn}${location.tac}`.toLowerCase();
        plmns.add(plmn);
        trackingAreaOfCell.set(`${plmn}${location.cellId}`.toLowerCase(), tai);
        connected.set(tai, (connected.get(tai) ?? 0) + (reachability.reachable ? 1 : 0));
      }
      return {
        plmns,
        levelOf(area: AreaSpec): number {
          const tais = new Set(area.trackingAreas);
          for (const cell of area.cells) {
            const tai = trackingAreaOfCell.get(cell);
            if (tai) tais.add(tai);
          }
          for (const [cell, tai] of trackingAreaOfCell) {
            const cellIdentity = cell.slice(plmnOf(cell, 'cgi').length);
            // An eNodeB serves the E-UTRA cells whose 28-bit identity starts with its 20 bits.
            if (cellIdentity.length === 7 && area.enodeBs.includes(cellIdentity.slice(0, 5))) tais.add(tai);
          }
          return Math.max(0, ...[...tais].map(t => levelOfLoad(connected.get(t) ?? 0)));
        },
      };
    },
  };
}
