import type { T8ApiJourney } from '../support/t8-api-journey.ts';
import { listSchema } from '../support/t8-api-journey.ts';

const ENDINGS = ['SUCCESS', 'EXPIRED'];

/**
 * 3gpp-device-triggering: a trigger for one UE by externalId, valid for a few seconds. The
 * simulated SMS-SC waits its delivery delay (2 s) after each submission, so the journey replaces
 * (PUT) and modifies (PATCH, application/json) it while it is pending; then the SMS-SC delivers it
 * when the UE, which goes in and out of reach every second or so, is reachable (SUCCESS), or the
 * validity period runs out (EXPIRED), and the AS gets a DeviceTriggeringDeliveryReportNotification.
 * An ended transaction is deleted like a pending one (which would recall it).
 */
export const deviceTriggeringJourney: T8ApiJourney = {
  api: '3gpp-device-triggering',
  version: 'v1',
  schemaFile: 'device-triggering',
  collection: 'transactions',
  categories: ['device-trigger'],
  target: 'externalId',
  create: (ue, notificationDestination) => ({
    externalId: ue.externalId,
    notificationDestination,
    validityPeriod: 5,
    priority: 'NO_PRIORITY',
    applicationPortId: 9000,
    triggerPayload: Buffer.from('wake up').toString('base64'),
  }),
  schemas: { request: 'DeviceTriggering', resource: 'DeviceTriggering', list: listSchema('transactions') },
  put: {
    status: 200,
    body: (ue, notificationDestination) => ({
      externalId: ue.externalId,
      notificationDestination,
      validityPeriod: 5,
      priority: 'NO_PRIORITY',
      applicationPortId: 9001,
      appSrcPortId: 9001,
      triggerPayload: Buffer.from('wake up, app 9001').toString('base64'),
    }),
  },
  patch: {
    contentType: 'application/json',
    schema: 'DeviceTriggeringPatch',
    status: 200,
    body: { priority: 'PRIORITY' },
    expect: { priority: 'PRIORITY', deliveryResult: 'REPLACED' },
  },
  notification: {
    schema: 'DeviceTriggeringDeliveryReportNotification',
    matches: (n, transaction) => n['transaction'] === transaction['self'] && ENDINGS.includes(n['result'] as string),
    withinMs: 15_000,
  },
};
