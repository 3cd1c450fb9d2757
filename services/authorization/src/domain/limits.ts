import { MAX_TARGET_CHARS, MAX_TARGETS_PER_DECISION } from '@aese/t8-catalog';

/**
 * Size caps of everything the authorization service evaluates or stores. They are checked
 * before any parsing or Cedar evaluation, so a hostile or mistaken input costs a length
 * comparison, not an evaluation (security catalogue case 64).
 */
export const LIMITS = {
  /** scsAsId and the path's {scsAsId}: the registry's own ceiling. */
  maxScsAsIdLength: 64,
  /** A T8 API name or a data category. */
  maxNameLength: 64,
  /** Data categories in one Decide request. */
  maxCategoriesPerRequest: 16,
  /** Targets (UEs and groups) in one Decide request. */
  maxTargetsPerRequest: MAX_TARGETS_PER_DECISION,
  /** One "<kind>:<value>" target, in characters. */
  maxTargetLength: MAX_TARGET_CHARS,
  /** Cedar policy set text. */
  maxPoliciesBytes: 64 * 1024,
  /** Policies in one set: the set is small and generic, grants are data. */
  maxPolicies: 100,
  /** Grants (entity JSON) text. */
  maxEntitiesBytes: 256 * 1024,
  /** Entities in one grants file. */
  maxEntities: 5_000,
  /** APIs granted to one AS (tags of one Application). */
  maxGrantsPerApplication: 64,
  /** Largest per-AS rate limit an obligation may carry. */
  maxRateLimitPerSecond: 1_000_000,
} as const;
