import type { JsonBody, T8ApiJourney } from '../support/t8-api-journey.ts';
import { listSchema } from '../support/t8-api-journey.ts';

/**
 * 3gpp-monitoring-event: a continuous LOCATION_REPORTING subscription of one UE by externalId.
 * It ends at a time far off rather than after a number of reports, so it lives as long as the
 * journey; the simulated UE moves every few ticks, and each move is a MonitoringNotification
 * naming the subscription and the UE.
 */
export const monitoringEventJourney: T8ApiJourney = {
  api: '3gpp-monitoring-event',
  version: 'v1',
  schemaFile: 'monitoring-event',
  collection: 'subscriptions',
  categories: ['location'],
  target: 'externalId',
  create: (ue, notificationDestination) => ({
    externalId: ue.externalId,
    notificationDestination,
    monitoringType: 'LOCATION_REPORTING',
    monitorExpireTime: '2099-01-01T00:00:00Z',
  }),
  schemas: { request: 'MonitoringEventSubscription', resource: 'MonitoringEventSubscription', list: listSchema('subscriptions') },
  put: {
    status: 200,
    body: (ue, notificationDestination) => ({
      externalId: ue.externalId,
      notificationDestination,
      monitoringType: 'LOCATION_REPORTING',
      locationType: 'CURRENT_LOCATION',
      monitorExpireTime: '2099-12-31T23:00:00Z',
    }),
  },
  patch: {
    contentType: 'application/json-patch+json',
    schema: '#/paths/~1{scsAsId}~1subscriptions~1{subscriptionId}/patch/requestBody/content/application~1json-patch+json/schema',
    status: 204,
    body: [{ op: 'replace', path: '/monitorExpireTime', value: '2099-06-30T12:00:00Z' }],
    expect: { monitorExpireTime: '2099-06-30T12:00:00Z' },
  },
  notification: {
    schema: 'MonitoringNotification',
    matches: (n, subscription) => {
      const reports = (n['monitoringEventReports'] as JsonBody[] | undefined) ?? [];
      return (
        n['subscription'] === subscription['self'] &&
        reports.length > 0 &&
        reports.every(r => r['monitoringType'] === 'LOCATION_REPORTING' && r['externalId'] === subscription['externalId'] && typeof r['locationInfo'] === 'object')
      );
    },
  },
};
