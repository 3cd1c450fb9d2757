import type { Obligation } from './decision.js';

/** Obligation types this service carries out itself; the others go back to the edge. */
export const OWN_OBLIGATIONS = {
  coarsenLocation: 'coarsen-location',
} as const;

/** Levels of `coarsen-location`, finest first. */
export const LOCATION_LEVELS = ['cell', 'ta'] as const;
export type LocationLevel = (typeof LOCATION_LEVELS)[number];

/**
 * Members of a MonitoringEvent `LocationInfo` kept at each level. Allow-lists, not deny-lists:
 * a finer member added to the schema later is dropped until someone decides it is coarse.
 */
const KEPT: Readonly<Record<LocationLevel, ReadonlySet<string>>> = {
  cell: new Set(['ageOfLocationInfo', 'cellId', 'enodeBId', 'routingAreaId', 'trackingAreaId', 'plmnId', 'userLocation']),
  // E-UTRA/NR userLocation requires the cell (ecgi/ncgi), so it goes at TA level.
  ta: new Set(['ageOfLocationInfo', 'routingAreaId', 'trackingAreaId', 'plmnId']),
};

/** The coarsest level asked for by any coarsen-location obligation; unknown levels mean 'ta'. */
export function locationLevel(obligations: readonly Obligation[]): LocationLevel | undefined {
  let level: LocationLevel | undefined;
  for (const o of obligations) {
    if (o.type !== OWN_OBLIGATIONS.coarsenLocation) continue;
    const asked = o.parameters['level'];
    // Fail closed: a level this service does not know is treated as the coarsest.
    const l: LocationLevel = asked === 'cell' ? 'cell' : 'ta';
    if (level === undefined || LOCATION_LEVELS.indexOf(l) > LOCATION_LEVELS.indexOf(level)) level = l;
  }
  return level;
}

function coarsen(info: Record<string, unknown>, level: LocationLevel): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(info)) if (KEPT[level].has(k)) out[k] = v;
  return out;
}

/** Returns a copy of a T8 body with every `locationInfo` coarsened to the level. */
export function coarsenLocations(body: unknown, level: LocationLevel): unknown {
  if (Array.isArray(body)) return body.map(b => coarsenLocations(b, level));
  if (typeof body !== 'object' || body === null) return body;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(body)) {
    out[k] = k === 'locationInfo' && typeof v === 'object' && v !== null && !Array.isArray(v) ? coarsen(v as Record<string, unknown>, level) : coarsenLocations(v, level);
  }
  return out;
}

/** Applies the obligations this service owns to a body; returns it and the ones left for the edge. */
export function applyOwnObligations(body: unknown, obligations: readonly Obligation[]): { body: unknown; remaining: Obligation[] } {
  const level = locationLevel(obligations);
  return {
    body: level === undefined ? body : coarsenLocations(body, level),
    remaining: obligations.filter(o => o.type !== OWN_OBLIGATIONS.coarsenLocation),
  };
}
