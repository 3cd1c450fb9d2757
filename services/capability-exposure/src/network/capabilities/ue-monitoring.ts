import type { UeView } from './ue-directory.js';

/** Where a UE is, whether it can be reached and whether it roams (MonitoringEvent's queries). */
export interface UeMonitoring {
  /** Current (or last known) location of a UE. */
  locate(ue: UeView): Promise<UeLocation>;
  /** Whether the UE is reachable now. */
  reachability(ue: UeView): Promise<UeReachability>;
  /** Whether the UE is roaming and in which PLMN it is served. */
  roaming(ue: UeView): Promise<UeRoaming>;
}

export interface Plmn {
  readonly mcc: string;
  readonly mnc: string;
}

export type RadioAccess = 'EUTRA' | 'NR';

export interface UeLocation {
  readonly plmn: Plmn;
  readonly rat: RadioAccess;
  /** Tracking area code, 4 (EPS) or 6 (5GS) hex digits. */
  readonly tac: string;
  /** E-UTRA cell identity (7 hex digits) or NR cell identity (9 hex digits). */
  readonly cellId: string;
  readonly latitude: number;
  readonly longitude: number;
  readonly observedAtMs: number;
}

export interface UeReachability {
  readonly reachable: boolean;
  readonly changedAtMs: number;
}

export interface UeRoaming {
  readonly roaming: boolean;
  readonly servingPlmn: Plmn;
  readonly changedAtMs: number;
}
