/**
 * Syntax of the UE, group and application identifiers an AS names and authorization grants
 * (`<kind>:<value>` targets).
 * capability-exposure checks request bodies with these rules before it asks for a decision, and
 * the authorization service checks Decide requests and grants with the very same ones, so a
 * malformed identifier is the AS's 400, never a refused Decide.
 */

/** Kinds of target a request or a grant names, as `<kind>:<value>`. */
export const TARGET_KINDS = ['externalId', 'msisdn', 'externalGroupId', 'externalAppId'] as const;
export type TargetKind = (typeof TARGET_KINDS)[number];

/** Longest `<kind>:<value>` target, in characters. */
export const MAX_TARGET_CHARS = 256;
/** Most targets (UEs and groups) one decision may name. */
export const MAX_TARGETS_PER_DECISION = 100;

// msisdn is digits only (no `+`), so one UE has one spelling and a grant cannot be bypassed by
// writing the same number another way.
const MSISDN = /^[0-9]{5,15}$/;
// An External Identifier / External Group Identifier (TS 23.682 4.6.2): "<local>@<domain>",
// printable ASCII without spaces.
const EXTERNAL_ID = /^[\x21-\x3f\x41-\x7e]+@[A-Za-z0-9.-]+$/;
// An external application identifier (PFD management, TS 29.122 clause 5.11): an application
// the operator lets an AS describe, printable ASCII without spaces.
const EXTERNAL_APP_ID = /^[\x21-\x7e]+$/;

/** The target string of an identifier. */
export function targetOf(kind: TargetKind, value: string): string {
  return `${kind}:${value}`;
}

/** Why an identifier of this kind is malformed (text that never repeats it), or undefined when it is well-formed. */
export function identifierSyntaxError(kind: TargetKind, value: string): string | undefined {
  if (kind.length + 1 + value.length > MAX_TARGET_CHARS) return `is longer than ${MAX_TARGET_CHARS - kind.length - 1} characters`;
  if (kind === 'msisdn') return MSISDN.test(value) ? undefined : 'an msisdn is 5 to 15 digits';
  if (kind === 'externalAppId') return EXTERNAL_APP_ID.test(value) ? undefined : 'an externalAppId is printable ASCII without spaces';
  return EXTERNAL_ID.test(value) ? undefined : `an ${kind} is <local>@<domain> in printable ASCII`;
}

/** Why a `<kind>:<value>` target is malformed (never repeating it), or undefined when it is well-formed. */
export function targetSyntaxError(target: string): string | undefined {
  if (target.length > MAX_TARGET_CHARS) return `is longer than ${MAX_TARGET_CHARS} characters`;
  const colon = target.indexOf(':');
  const kind = colon < 0 ? '' : target.slice(0, colon);
  if (!(TARGET_KINDS as readonly string[]).includes(kind)) return `must be <kind>:<value> with kind ${TARGET_KINDS.join(', ')}`;
  return identifierSyntaxError(kind as TargetKind, target.slice(colon + 1));
}
