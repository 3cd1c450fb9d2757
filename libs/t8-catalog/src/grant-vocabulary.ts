/**
 * The words of a grant (docs/grants.md) that the authorization service evaluates and the
 * operator CLI writes: one list each, so the two cannot drift apart.
 */

/** T8 operations; each is a Cedar action `Aese::Action::"<operation>"` in the group `t8`. */
export const OPERATIONS = ['create', 'read', 'update', 'delete', 'notify'] as const;
export type Operation = (typeof OPERATIONS)[number];

/** How precise a location an AS may receive; `cell` applies when a grant says nothing. */
export const LOCATION_GRANULARITIES = ['exact', 'cell', 'ta'] as const;
export type LocationGranularity = (typeof LOCATION_GRANULARITIES)[number];
/** Coarse by default: exact location must be granted explicitly. */
export const DEFAULT_LOCATION_GRANULARITY: LocationGranularity = 'cell';
