import type { components } from '@aese/t8-openapi/cp-provisioning';
import { invalidParam, PROBLEM_CAUSES } from '../../domain/problem.js';

type CpParameterSet = components['schemas']['CpParameterSet'];

/** A map key as a JSON pointer segment (RFC 6901). */
export const pointerSegment = (key: string): string => key.replace(/~/g, '~0').replace(/\//g, '~1');

/** Set ids name sub-resources in URIs: printable ASCII without "/", at most 128 characters, not "." or "..". */
const SET_ID = /^(?!\.{1,2}$)[\x21-\x2e\x30-\x7e]{1,128}$/;
/** RFC 3339 partial-time or full-time (TS 29.122 TimeOfDay), e.g. 20:15:00 or 20:15:00-08:00. */
const TIME_OF_DAY = /^([01]\d|2[0-3]):[0-5]\d:([0-5]\d|60)(\.\d+)?(Z|[+-]([01]\d|2[0-3]):[0-5]\d)?$/i;
/** A confidence or accuracy level: a decimal from 0.00 to 1.00 (the file's own pattern lets any string through). */
const LEVEL = /^(0\.\d{2}|1\.00)$/;

function assertLevels(holder: { confidenceLevel?: string; accuracyLevel?: string }, at: string): void {
  for (const member of ['confidenceLevel', 'accuracyLevel'] as const) {
    const v = holder[member];
    if (v !== undefined && !LEVEL.test(v)) throw invalidParam(`${at}/${member}`, 'must be a decimal from 0.00 to 1.00');
  }
}

/**
 * The rules of one CP parameter set beyond the schema, all about its form (what the network makes
 * of its values is the HSS's answer, a CpReport): an id that can name the set's resource, times of
 * day and levels as TS 29.122 writes them, and no member only the SCEF writes. `self` is the link
 * the SCEF gives the set when it is known: an AS may send it back unchanged, never another one.
 * Pure: it runs before authorization.
 */
export function assertCpSet(set: CpParameterSet, at: string, self: string | undefined): void {
  if (!SET_ID.test(set.setId)) throw invalidParam(`${at}/setId`, 'must be 1 to 128 printable characters without "/"');
  if (set.self !== undefined && set.self !== self) throw invalidParam(`${at}/self`, 'does not match the resource', PROBLEM_CAUSES.idMismatch);
  const window = set.scheduledCommunicationTime;
  for (const member of ['timeOfDayStart', 'timeOfDayEnd'] as const) {
    const v = window?.[member];
    if (v !== undefined && !TIME_OF_DAY.test(v)) throw invalidParam(`${at}/scheduledCommunicationTime/${member}`, 'must be an RFC 3339 time of day');
  }
  (set.expectedUmts ?? []).forEach((umt, i) => {
    if (umt.umtTime !== undefined && !TIME_OF_DAY.test(umt.umtTime)) throw invalidParam(`${at}/expectedUmts/${i}/umtTime`, 'must be an RFC 3339 time of day');
  });
  assertLevels(set, at);
  (set.appExpUeBehvs ?? []).forEach((b, i) => {
    if (b.failureCode !== undefined) throw invalidParam(`${at}/appExpUeBehvs/${i}/failureCode`, 'is written by the SCEF only');
    assertLevels(b, `${at}/appExpUeBehvs/${i}`);
  });
}
