import { AeseError } from '@aese/errors';
import { LIMITS } from './limits.js';

/** T8 operations; each is a Cedar action `Aese::Action::"<operation>"` in the group `t8`. */
export const OPERATIONS = ['create', 'read', 'update', 'delete', 'notify'] as const;
export type Operation = (typeof OPERATIONS)[number];

/** Kinds of target a request or a grant names, as `<kind>:<value>`. */
export const TARGET_KINDS = ['externalId', 'msisdn', 'externalGroupId'] as const;
export type TargetKind = (typeof TARGET_KINDS)[number];

/** How precise a location an AS may receive; `cell` applies when a grant says nothing. */
export const LOCATION_GRANULARITIES = ['exact', 'cell', 'ta'] as const;
export type LocationGranularity = (typeof LOCATION_GRANULARITIES)[number];
/** Coarse by default: exact location must be granted explicitly. */
export const DEFAULT_LOCATION_GRANULARITY: LocationGranularity = 'cell';

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
const MSISDN = /^[0-9]{5,15}$/;
// An External Identifier / External Group Identifier (TS 23.682 4.6.2): "<local>@<domain>",
// printable ASCII without spaces.
const EXTERNAL_ID = /^[\x21-\x3f\x41-\x7e]+@[A-Za-z0-9.-]+$/;
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
 * Checks one `<kind>:<value>` target. msisdn is digits only (no `+`), so one UE has one
 * spelling and a grant cannot be bypassed by writing the same number another way.
 *
 * @throws AeseError INVALID_INPUT naming `where`, never echoing the identifier.
 */
export function assertTarget(target: string, where: string): void {
  if (target.length > LIMITS.maxTargetLength) throw new AeseError('INVALID_INPUT', `${where} is longer than ${LIMITS.maxTargetLength} characters`);
  const colon = target.indexOf(':');
  const kind = colon < 0 ? '' : target.slice(0, colon);
  const value = target.slice(colon + 1);
  if (!(TARGET_KINDS as readonly string[]).includes(kind)) {
    throw new AeseError('INVALID_INPUT', `${where} must be <kind>:<value> with kind ${TARGET_KINDS.join(', ')}`);
  }
  const ok = kind === 'msisdn' ? MSISDN.test(value) : EXTERNAL_ID.test(value);
  if (!ok) {
    throw new AeseError(
      'INVALID_INPUT',
      kind === 'msisdn' ? `${where}: an msisdn is 5 to 15 digits` : `${where}: an ${kind} is <local>@<domain> in printable ASCII`,
    );
  }
}
