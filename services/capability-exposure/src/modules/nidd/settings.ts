import { int } from '@aese/config';

/** Longest time the SCEF buffers downlink non-IP data for a UE out of reach, by default: one day. */
export const DEFAULT_NIDD_MAX_BUFFERING_SECONDS = 86_400;

/**
 * NIDD's settings, spread into the service's (CAPABILITY_EXPOSURE_SETTINGS) so they are read and
 * checked once at start-up with the others.
 */
export const NIDD_SETTINGS = {
  /** The operator's limit on a transfer's maximumLatency: buffered data never waits longer. */
  niddMaxBufferingSeconds: int('NIDD_MAX_BUFFERING_S', DEFAULT_NIDD_MAX_BUFFERING_SECONDS, 1, 30 * 86_400),
} as const;

/** The buffering limit from the settings the module was given (the default when they are absent). */
export function niddMaxBufferingSecondsOf(settings: Readonly<Record<string, unknown>> | undefined): number {
  const v = settings?.['niddMaxBufferingSeconds'];
  return typeof v === 'number' ? v : DEFAULT_NIDD_MAX_BUFFERING_SECONDS;
}
