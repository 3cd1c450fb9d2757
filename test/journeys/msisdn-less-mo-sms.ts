import type { T8ApiJourney } from '../support/t8-api-journey.ts';

/** The application port the operator maps to the journey's AS: the simulated UEs all send to it. */
const APPLICATION_PORT = 16000;

/**
 * 3gpp-msisdn-less-mo-sms: the AS never calls the API. The operator maps an application port to
 * the AS and its receiver (MO_SMS_APPLICATION_PORTS); a simulated UE that becomes reachable sends
 * an MO SMS to that port, which the SCEF POSTs to the AS as an MsisdnLessMoSmsNotification naming
 * the UE by externalId, when the AS was granted the UE.
 */
export const msisdnLessMoSmsJourney: T8ApiJourney = {
  kind: 'notification-only',
  api: '3gpp-msisdn-less-mo-sms',
  version: 'v1',
  schemaFile: 'msisdn-less-mo-sms',
  categories: ['mo-sms'],
  target: 'externalId',
  settings: (scsAsId, destination) => ({ MO_SMS_APPLICATION_PORTS: `${APPLICATION_PORT}:${scsAsId}:${destination}` }),
  notification: {
    schema: 'MsisdnLessMoSmsNotification',
    ueOf: n => (typeof n['externalId'] === 'string' && typeof n['sms'] === 'string' ? n['externalId'] : undefined),
    expect: { applicationPort: APPLICATION_PORT, supportedFeatures: '0' },
  },
};
