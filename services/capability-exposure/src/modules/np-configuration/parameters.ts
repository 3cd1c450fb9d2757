import type { SchemaViolation } from '@aese/t8-openapi';

/** The suggested network parameters of an NpConfiguration, as the SCEF takes them in. */
export const PARAMETERS = ['maximumLatency', 'maximumResponseTime', 'suggestedNumberOfDlPackets', 'groupReportingGuardTime'] as const;
export type Parameter = (typeof PARAMETERS)[number];
export type ParameterValues = Partial<Record<Parameter, number>>;

export interface Range {
  readonly min: number;
  readonly max: number;
}

/**
 * The operator's ranges (TS 29.122 clause 4.4.12: the SCEF checks the values against operator
 * policy). Maximum latency: from the shortest eDRX cycle to a day of periodic updates. Maximum
 * response time: the Active Time timer, 2 s to 186 min. Downlink packets: what a serving gateway
 * buffers for one UE. Guard time: how long the SCEF holds a group's results, at most an hour.
 */
export const DEFAULT_PARAMETER_RANGES: Readonly<Record<Parameter, Range>> = {
  maximumLatency: { min: 5, max: 86_400 },
  maximumResponseTime: { min: 2, max: 11_160 },
  suggestedNumberOfDlPackets: { min: 1, max: 100 },
  groupReportingGuardTime: { min: 0, max: 3_600 },
};

/**
 * What the SCEF does with a value out of range (TS 29.122 clause 4.4.12): `reject` the request
 * (403 PARAMETER_OUT_OF_RANGE naming each parameter) or `adjust` it to the nearest bound and
 * answer with the values it accepted.
 */
export type OutOfRangePolicy = 'reject' | 'adjust';

/** The parameters a body carries. */
export function parametersOf(body: Readonly<Partial<Record<Parameter, unknown>>>): ParameterValues {
  const out: ParameterValues = {};
  for (const p of PARAMETERS) if (typeof body[p] === 'number') out[p] = body[p];
  return out;
}

/** The parameters out of their range, as invalidParams (no value echoed). */
export function outOfRange(values: ParameterValues, ranges: Readonly<Record<Parameter, Range>>): SchemaViolation[] {
  return PARAMETERS.filter(p => values[p] !== undefined && (values[p] < ranges[p].min || values[p] > ranges[p].max)).map(p => ({
    param: `/${p}`,
    reason: `is outside the range the operator allows (${ranges[p].min} to ${ranges[p].max})`,
  }));
}

/** The values brought into their ranges: what the SCEF accepts under the `adjust` policy. */
export function withinRange(values: ParameterValues, ranges: Readonly<Record<Parameter, Range>>): ParameterValues {
  const out: ParameterValues = {};
  for (const p of PARAMETERS) if (values[p] !== undefined) out[p] = Math.min(ranges[p].max, Math.max(ranges[p].min, values[p]));
  return out;
}
