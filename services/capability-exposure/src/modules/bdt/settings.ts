import { int } from '@aese/config';

/** Most BDT subscriptions one SCS/AS may hold at a time (those whose desired time window has not ended). */
export const DEFAULT_BDT_MAX_SUBSCRIPTIONS_PER_AS = 100;

/**
 * ResourceManagementOfBdt's settings, spread into the service's (CAPABILITY_EXPOSURE_SETTINGS) so
 * they are read and checked once at start-up with the others.
 */
export const BDT_SETTINGS = {
  /** Every agreement is weighed in each negotiation and warning: one AS cannot make that work grow without bound. */
  bdtMaxSubscriptionsPerAs: int('BDT_MAX_SUBSCRIPTIONS_PER_AS', DEFAULT_BDT_MAX_SUBSCRIPTIONS_PER_AS, 1, 10_000),
} as const;

/** The per-AS bound from the settings the module was given (the default when they are absent). */
export function bdtMaxSubscriptionsOf(settings: Readonly<Record<string, unknown>> | undefined): number {
  const v = settings?.['bdtMaxSubscriptionsPerAs'];
  return typeof v === 'number' ? v : DEFAULT_BDT_MAX_SUBSCRIPTIONS_PER_AS;
}
