import type { JsonBody, T8ApiJourney } from '../support/t8-api-journey.ts';
import { listSchema } from '../support/t8-api-journey.ts';

const QOS_EVENTS = ['QOS_GUARANTEED', 'QOS_NOT_GUARANTEED'];

/**
 * 3gpp-as-session-with-qos: a QoS session for one UE named by its GPSI (`extid-...`, authorized
 * as the externalId), asking for the guarantee events; the simulated network flips a session's
 * guarantee every few ticks, and each flip is a UserPlaneNotificationData naming the session.
 */
export const asSessionWithQosJourney: T8ApiJourney = {
  api: '3gpp-as-session-with-qos',
  version: 'v1',
  schemaFile: 'as-session-with-qos',
  collection: 'subscriptions',
  categories: ['qos'],
  target: 'externalId',
  create: (ue, notificationDestination) => ({ notificationDestination, gpsi: `extid-${ue.externalId}`, qosReference: 'qos-gold', events: QOS_EVENTS }),
  schemas: { request: 'AsSessionWithQoSSubscription', resource: 'AsSessionWithQoSSubscription', list: listSchema('subscriptions') },
  put: {
    status: 200,
    body: (ue, notificationDestination) => ({
      notificationDestination,
      gpsi: `extid-${ue.externalId}`,
      qosReference: 'qos-silver',
      altQoSReferences: ['qos-bronze'],
      events: QOS_EVENTS,
    }),
  },
  patch: {
    contentType: 'application/merge-patch+json',
    schema: 'AsSessionWithQoSSubscriptionPatch',
    status: 200,
    body: { qosReference: 'qos-gold', altQoSReferences: ['qos-silver'] },
    expect: { qosReference: 'qos-gold', altQoSReferences: ['qos-silver'] },
  },
  notification: {
    schema: 'UserPlaneNotificationData',
    matches: (n, session) => {
      const reports = (n['eventReports'] as JsonBody[] | undefined) ?? [];
      return n['transaction'] === session['self'] && reports.length > 0 && reports.every(r => QOS_EVENTS.includes(r['event'] as string));
    },
  },
};
