import type { ApiGrant, ApplicationGrants } from './policy-bundle.js';
import { DEFAULT_LOCATION_GRANULARITY, LOCATION_CATEGORY, OBLIGATION_TYPES } from './vocabulary.js';

/** A duty attached to an allow decision (aese.common.v1.Obligation). */
export interface Obligation {
  readonly type: string;
  readonly parameters: Readonly<Record<string, string>>;
}

/**
 * The obligations of an allowed request, derived from the grant that allowed it:
 * - `encrypt-response` when the request touches a category of the grant's `encryptCategories`;
 * - `coarsen-location` with `level` `cell` or `ta` when it touches `location` and the grant does
 *   not say `exact` (absent means `cell`: precise location must be granted explicitly);
 * - `rate-limit` with `perSecond` when the AS has a `rateLimitPerSecond`.
 * A request that a generic policy allowed without a grant gets the defaults (location coarsened).
 * The order is fixed, so equal decisions are equal messages.
 */
export function obligationsOf(app: ApplicationGrants | undefined, grant: ApiGrant | undefined, categories: readonly string[]): Obligation[] {
  const out: Obligation[] = [];
  if (grant && categories.some(c => grant.encryptCategories.has(c))) out.push({ type: OBLIGATION_TYPES.encryptResponse, parameters: {} });
  if (categories.includes(LOCATION_CATEGORY)) {
    const level = grant?.locationGranularity ?? DEFAULT_LOCATION_GRANULARITY;
    if (level !== 'exact') out.push({ type: OBLIGATION_TYPES.coarsenLocation, parameters: { level } });
  }
  if (app?.rateLimitPerSecond !== undefined) {
    out.push({ type: OBLIGATION_TYPES.rateLimit, parameters: { perSecond: String(app.rateLimitPerSecond) } });
  }
  return out;
}
