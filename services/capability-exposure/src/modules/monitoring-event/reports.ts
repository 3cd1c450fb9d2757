import type { Plmn, UeLocation, UeView } from '../../network/network-adapter.js';
import type { IdentifiedBy } from '../ue-targets.js';

/** The monitoring types this SCEF serves, and the data category each one exposes. */
export const MONITORING_CATEGORIES = {
  LOCATION_REPORTING: 'location',
  UE_REACHABILITY: 'reachability',
  LOSS_OF_CONNECTIVITY: 'connectivity',
  ROAMING_STATUS: 'roaming',
} as const;
export type MonitoringType = keyof typeof MONITORING_CATEGORIES;

export function isSupportedType(t: unknown): t is MonitoringType {
  return typeof t === 'string' && Object.prototype.hasOwnProperty.call(MONITORING_CATEGORIES, t);
}

/** TS 29.336 clause 8.4.58 "Loss-Of-Connectivity-Reason": MAX_DETECTION_TIME_EXPIRED_MME. */
export const LOSS_REASON_MAX_DETECTION_TIME_EXPIRED = 2;

const plmnString = (p: Plmn): string => `${p.mcc}${p.mnc}`;

/** A TS 29.122 LocationInfo for a UE location, with the cell, tracking area and a point. */
export function locationInfo(loc: UeLocation, nowMs: number): Record<string, unknown> {
  const plmnId = { mcc: loc.plmn.mcc, mnc: loc.plmn.mnc };
  const tai = { plmnId, tac: loc.tac };
  const userLocation =
    loc.rat === 'EUTRA' ? { eutraLocation: { tai, ecgi: { plmnId, eutraCellId: loc.cellId } } } : { nrLocation: { tai, ncgi: { plmnId, nrCellId: loc.cellId } } };
  return {
    ageOfLocationInfo: Math.max(0, Math.floor((nowMs - loc.observedAtMs) / 60_000)),
    cellId: `${plmnString(loc.plmn)}${loc.cellId}`,
    ...(loc.rat === 'EUTRA' ? { enodeBId: loc.cellId.slice(0, 5) } : {}),
    trackingAreaId: `${plmnString(loc.plmn)}${loc.tac}`,
    plmnId: plmnString(loc.plmn),
    userLocation,
    geographicArea: { shape: 'POINT', point: { lat: loc.latitude, lon: loc.longitude } },
  };
}

/** The identifier a report carries: the kind the AS used (a group's members by externalId). */
export function reportIdentity(ue: UeView, by: IdentifiedBy): Record<string, string> {
  return by === 'msisdn' ? { msisdn: ue.msisdn } : { externalId: ue.externalId };
}

export const isoTime = (ms: number): string => new Date(ms).toISOString();
