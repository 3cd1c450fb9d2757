import { AeseError } from '@aese/errors';
import { LIMITS } from './limits.js';
import { assertTarget, isName, isScsAsId, OPERATIONS } from './vocabulary.js';
import type { Operation } from './vocabulary.js';

/** A Decide request as the caller sent it (the proto's fields, unchecked). */
export interface RawDecisionRequest {
  readonly scsAsId: string;
  readonly api: string;
  readonly operation: string;
  readonly dataCategories: readonly string[];
  readonly targets: readonly string[];
  readonly pathScsAsId: string;
}

/** A checked request: bounded, well-formed, categories and targets sorted and unique. */
export interface DecisionRequest {
  readonly scsAsId: string;
  readonly api: string;
  readonly operation: Operation;
  readonly categories: readonly string[];
  readonly targets: readonly string[];
  readonly pathScsAsId: string;
}

function sortedUnique(values: readonly string[]): string[] {
  return [...new Set(values)].sort();
}

/**
 * Checks a Decide request before anything is evaluated. Counts and lengths are compared before
 * any element is looked at, so 10,000 targets or a megabyte string cost one comparison.
 * Messages name the field, never a UE identifier.
 *
 * The path's {scsAsId} is only bounded here, not matched: whether it equals the authenticated AS
 * is a policy decision (SCS_AS_ID_MISMATCH), taken by Cedar like every other.
 *
 * @throws AeseError INVALID_INPUT
 */
export function parseDecisionRequest(raw: RawDecisionRequest): DecisionRequest {
  if (raw.dataCategories.length > LIMITS.maxCategoriesPerRequest) {
    throw new AeseError('INVALID_INPUT', `at most ${LIMITS.maxCategoriesPerRequest} data_categories per request`);
  }
  if (raw.targets.length > LIMITS.maxTargetsPerRequest) {
    throw new AeseError('INVALID_INPUT', `at most ${LIMITS.maxTargetsPerRequest} targets per request`);
  }
  if (!isScsAsId(raw.scsAsId)) throw new AeseError('INVALID_INPUT', `scs_as_id must be 1-${LIMITS.maxScsAsIdLength} characters of [A-Za-z0-9._-]`);
  if (raw.pathScsAsId.length === 0 || raw.pathScsAsId.length > LIMITS.maxScsAsIdLength) {
    throw new AeseError('INVALID_INPUT', `path_scs_as_id must be 1-${LIMITS.maxScsAsIdLength} characters`);
  }
  if (!isName(raw.api)) throw new AeseError('INVALID_INPUT', `api must be 1-${LIMITS.maxNameLength} characters of [a-z0-9-]`);
  if (!(OPERATIONS as readonly string[]).includes(raw.operation)) {
    throw new AeseError('INVALID_INPUT', `operation must be one of ${OPERATIONS.join(', ')}`);
  }
  raw.dataCategories.forEach((c, i) => {
    if (!isName(c)) throw new AeseError('INVALID_INPUT', `data_categories[${i}] must be 1-${LIMITS.maxNameLength} characters of [a-z0-9-]`);
  });
  raw.targets.forEach((t, i) => assertTarget(t, `targets[${i}]`));
  return {
    scsAsId: raw.scsAsId,
    api: raw.api,
    operation: raw.operation as Operation,
    categories: sortedUnique(raw.dataCategories),
    targets: sortedUnique(raw.targets),
    pathScsAsId: raw.pathScsAsId,
  };
}

/** A key that identifies a checked request exactly, for the decision cache. */
export function decisionKey(req: DecisionRequest): string {
  // JSON keeps the fields apart whatever characters they hold.
  return JSON.stringify([req.scsAsId, req.api, req.operation, req.categories, req.targets, req.pathScsAsId]);
}
