import { oneOf } from '@aese/config';
import type { OutOfRangePolicy } from './parameters.js';

/**
 * NpConfiguration's settings, spread into the service's (CAPABILITY_EXPOSURE_SETTINGS) so they
 * are read and checked once at start-up with the others.
 */
export const NP_CONFIGURATION_SETTINGS = {
  /** What the SCEF does with a parameter outside the operator's range (TS 29.122 clause 4.4.12). */
  npOutOfRange: oneOf('NP_OUT_OF_RANGE', ['adjust', 'reject'] as const, 'adjust'),
} as const;

/** The out-of-range policy from the settings the module was given (adjust when they are absent). */
export function outOfRangePolicyOf(settings: Readonly<Record<string, unknown>> | undefined): OutOfRangePolicy {
  return settings?.['npOutOfRange'] === 'reject' ? 'reject' : 'adjust';
}
