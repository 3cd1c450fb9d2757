import { AeseError } from '@aese/errors';
import { targetSyntaxError } from '@aese/t8-catalog';
import type { LocationGranularity, Operation } from '@aese/t8-catalog';
import { LIMITS } from './limits.js';

export { DEFAULT_LOCATION_GRANULARITY, LOCATION_GRANULARITIES, OPERATIONS } from '@aese/t8-catalog';
export type { LocationGranularity, Operation };

/** The category whose responses the coarsen-location obligation applies to. */
export const LOCATION_CATEGORY = 'location';

/** Why a request was denied: stable codes, for ProblemDetails `cause` at the edge. */
export const DENY_CAUSES = {
  scsAsIdMismatch: 'SCS_AS_ID_MISMATCH',
  noGrant: 'NO_GRANT',
  apiNotGranted: 'API_NOT_GRANTED',
  operationNotGranted: 'OPERATION_NOT_GRANTED',
  categoryNotGranted: 'CATEGORY_NOT_GRANTED',
  targetNotGranted: 'TARGET_NOT_GRANTED',
  /** A forbid without a @denyCause annotation decided. */
  forbiddenByPolicy: 'FORBIDDEN_BY_POLICY',
  /** A policy could not be evaluated; the request is denied rather than guessed. */
  evaluationError: 'POLICY_EVALUATION_ERROR',
} as const;

/**
 * When several forbids decide, the cause reported is the first of this list that applies, so a
 * decision's cause does not depend on the order of the policy text.
 */
export const DENY_CAUSE_PRECEDENCE: readonly string[] = [
  DENY_CAUSES.scsAsIdMismatch,
  DENY_CAUSES.apiNotGranted,
  DENY_CAUSES.operationNotGranted,
  DENY_CAUSES.categoryNotGranted,
  DENY_CAUSES.targetNotGranted,
];

/** Obligations an allow decision can carry; the service returning the data carries them out. */
export const OBLIGATION_TYPES = {
  encryptResponse: 'encrypt-response',
  coarsenLocation: 'coarsen-location',
  rateLimit: 'rate-limit',
} as const;

const NAME = /^[a-z0-9][a-z0-9-]*$/;
const SCS_AS_ID = /^[A-Za-z0-9._-]+$/;
const DENY_CAUSE = /^[A-Z][A-Z0-9_]{0,63}$/;

/** True for an API name or data category: lower-case letters, digits and dashes, bounded. */
export function isName(value: string): boolean {
  return value.length <= LIMITS.maxNameLength && NAME.test(value);
}

/** True for a well-formed scsAsId (the same rule as the AS registry). */
export function isScsAsId(value: string): boolean {
  return value.length <= LIMITS.maxScsAsIdLength && SCS_AS_ID.test(value);
}

/** True for a stable deny-cause code as a @denyCause annotation may carry. */
export function isDenyCause(value: string): boolean {
  return DENY_CAUSE.test(value);
}

/**
 * Checks one `<kind>:<value>` target with the rules capability-exposure applies to request
 * bodies (@aese/t8-catalog): msisdn is digits only (no `+`), so one UE has one spelling and a
 * grant cannot be bypassed by writing the same number another way.
 *
 * @throws AeseError INVALID_INPUT naming `where`, never echoing the identifier.
 */
export function assertTarget(target: string, where: string): void {
  const reason = targetSyntaxError(target);
  if (reason !== undefined) throw new AeseError('INVALID_INPUT', `${where}: ${reason}`);
}
