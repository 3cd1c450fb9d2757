import type { components } from '@aese/t8-openapi/reporting-network-status';
import { invalidParam } from '../../domain/problem.js';

type LocationArea = components['schemas']['LocationArea'];

/** ProblemDetails causes of location areas (part of the API's causes). */
export const LOCATION_AREA_CAUSES = {
  locationAreaNotSupported: 'LOCATION_AREA_NOT_SUPPORTED',
  unknownLocationArea: 'UNKNOWN_LOCATION_AREA',
} as const;

/**
 * A location area in the identifiers the radio network reports congestion by, lower-case hex:
 * Tracking Area Identities (PLMN + TAC), Cell Global Identities (PLMN + E-UTRA or NR cell
 * identity) and eNodeB identities (20 bits, the first five hex digits of an E-UTRA cell identity),
 * the forms MonitoringEvent's location reports use.
 */
export interface AreaSpec {
  readonly trackingAreas: readonly string[];
  readonly cells: readonly string[];
  readonly enodeBs: readonly string[];
}

/** Most identifiers one area may list: an area is a handful of places, not the whole network. */
export const MAX_AREA_ENTRIES = 64;

// MCC (3 digits) + MNC (2 or 3) + TAC (4 hex, EPS; 6 hex, 5GS). The lengths never overlap.
const TAI = /^[0-9]{5,6}(?:[0-9a-f]{4}|[0-9a-f]{6})$/;
// MCC + MNC + E-UTRA cell identity (7 hex) or NR cell identity (9 hex).
const CGI = /^[0-9]{5,6}(?:[0-9a-f]{7}|[0-9a-f]{9})$/;
const ENODEB = /^[0-9a-f]{5}$/;

/** Location area members this SCEF cannot map to radio cells: it has no geocoding or RAN of GERAN/UTRAN. */
const UNSUPPORTED = ['routingAreaIds', 'geographicAreas', 'civicAddresses'] as const;

/** Digits of the PLMN (MCC + MNC) in a TAI or CGI, by its length (the lengths never overlap). */
const PLMN_DIGITS: Readonly<Record<'tai' | 'cgi', Readonly<Record<number, number>>>> = {
  tai: { 9: 5, 10: 6, 11: 5, 12: 6 },
  cgi: { 12: 5, 13: 6, 14: 5, 15: 6 },
};

/** The PLMN (MCC + MNC) of a well-formed TAI or CGI. */
export function plmnOf(id: string, kind: 'tai' | 'cgi'): string {
  return id.slice(0, PLMN_DIGITS[kind][id.length]);
}

/**
 * The area a LocationArea names, or a 400 naming the member at fault (never its value): a member
 * this SCEF cannot map, a malformed identifier, no identifier at all, or too many.
 */
export function areaSpecOf(area: LocationArea, pointer = '/locationArea'): AreaSpec {
  for (const m of UNSUPPORTED) {
    if (area[m] !== undefined) throw invalidParam(`${pointer}/${m}`, 'is not supported: name tracking areas, cells or eNodeBs', LOCATION_AREA_CAUSES.locationAreaNotSupported);
  }
  const read = (member: 'trackingAreaIds' | 'cellIds' | 'enodeBIds', syntax: RegExp, what: string): string[] =>
    (area[member] ?? []).map((raw, i) => {
      const id = raw.toLowerCase();
      if (!syntax.test(id)) throw invalidParam(`${pointer}/${member}/${i}`, `is not ${what}`);
      return id;
    });
  const spec: AreaSpec = {
    trackingAreas: read('trackingAreaIds', TAI, 'a Tracking Area Identity (MCC, MNC, then a 4 or 6 hex digit TAC)'),
    cells: read('cellIds', CGI, 'a Cell Global Identity (MCC, MNC, then a 7 or 9 hex digit cell identity)'),
    enodeBs: read('enodeBIds', ENODEB, 'an eNodeB identity (5 hex digits)'),
  };
  const count = spec.trackingAreas.length + spec.cells.length + spec.enodeBs.length;
  if (count === 0) throw invalidParam(pointer, 'names no tracking area, cell or eNodeB');
  if (count > MAX_AREA_ENTRIES) throw invalidParam(pointer, `names more than ${MAX_AREA_ENTRIES} tracking areas, cells and eNodeBs`);
  return spec;
}
