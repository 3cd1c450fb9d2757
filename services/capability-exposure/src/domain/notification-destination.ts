import { DestinationRefused, resolveSafeDestination } from '@aese/net-guard';
import type { DestinationPolicy } from '@aese/net-guard';
import { invalidParam, PROBLEM_CAUSES } from './problem.js';

export { NOTIFICATION_DESTINATION_SETTINGS, notificationDestinationPolicy, parseAllowList, parsePortList } from '@aese/net-guard';
export type { AllowEntry, DestinationPolicy, HostResolver } from '@aese/net-guard';

/**
 * Checks an AS's notificationDestination (or another callback URI, at `pointer`) with the shared
 * SSRF and port rules of @aese/net-guard and answers a refusal as a 400 with invalidParams; the
 * message never repeats the URI. It resolves the host name: call it only for an authorized request.
 */
export async function checkNotificationDestination(value: string, policy: DestinationPolicy, pointer = '/notificationDestination'): Promise<void> {
  try {
    await resolveSafeDestination(value, policy);
  } catch (err) {
    if (err instanceof DestinationRefused) throw invalidParam(pointer, err.message, PROBLEM_CAUSES.notificationDestination);
    throw err;
  }
}
