import { DestinationRefused, resolveSafeDestination } from '@aese/net-guard';
import type { DestinationPolicy } from '@aese/net-guard';
import { invalidParam, PROBLEM_CAUSES } from './problem.js';

export { parseAllowList } from '@aese/net-guard';
export type { AllowEntry, DestinationPolicy, HostResolver } from '@aese/net-guard';

/**
 * Checks an AS's notificationDestination with the shared SSRF rules of @aese/net-guard and
 * answers a refusal as a 400 with invalidParams; the message never repeats the URI.
 */
export async function checkNotificationDestination(value: string, policy: DestinationPolicy): Promise<void> {
  try {
    await resolveSafeDestination(value, policy);
  } catch (err) {
    if (err instanceof DestinationRefused) throw invalidParam('/notificationDestination', err.message, PROBLEM_CAUSES.notificationDestination);
    throw err;
  }
}
