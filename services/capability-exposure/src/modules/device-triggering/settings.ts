import { int } from '@aese/config';

/** Time a simulated SMS-SC takes from a trigger's submission to its first delivery attempt. */
export const DEFAULT_SMS_DELIVERY_DELAY_MS = 2_000;

/**
 * DeviceTriggering's settings, spread into the service's (CAPABILITY_EXPOSURE_SETTINGS) so they
 * are read and checked once at start-up with the others.
 */
export const DEVICE_TRIGGERING_SETTINGS = {
  /** How long the simulated SMS-SC takes to make its first attempt to deliver a trigger. */
  smsDeliveryDelayMs: int('SIM_SMS_DELIVERY_DELAY_MS', DEFAULT_SMS_DELIVERY_DELAY_MS, 0, 600_000),
} as const;

/** The delivery delay from the settings the module was given (the default when they are absent). */
export function smsDeliveryDelayOf(settings: Readonly<Record<string, unknown>> | undefined): number {
  const v = settings?.['smsDeliveryDelayMs'];
  return typeof v === 'number' ? v : DEFAULT_SMS_DELIVERY_DELAY_MS;
}
