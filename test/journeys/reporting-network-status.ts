import type { T8ApiJourney } from '../support/t8-api-journey.ts';
import { listSchema } from '../support/t8-api-journey.ts';

/** Tracking areas of the simulated network's home PLMN (001-01): TAC 0001 of EPS and of 5GS. */
const EPS_TA = '001010001';
const NR_TA = '00101000001';
const UNTIL = '2099-01-01T00:00:00Z';

/**
 * 3gpp-net-stat-report: a continuous subscription to the congestion of a tracking area. It names
 * a place, not a UE (`ue` is not used): the radio network answers at once with the area's level,
 * a NetworkStatusReportingNotification naming the subscription, and reports its changes after.
 */
export const reportingNetworkStatusJourney: T8ApiJourney = {
  api: '3gpp-net-stat-report',
  version: 'v1',
  schemaFile: 'reporting-network-status',
  collection: 'subscriptions',
  categories: ['network-status'],
  target: 'none',
  create: (_ue, notificationDestination) => ({ notificationDestination, locationArea: { trackingAreaIds: [EPS_TA] }, timeDuration: UNTIL }),
  schemas: { request: 'NetworkStatusReportingSubscription', resource: 'NetworkStatusReportingSubscription', list: listSchema('subscriptions') },
  put: {
    status: 200,
    body: (_ue, notificationDestination) => ({ notificationDestination, locationArea: { trackingAreaIds: [EPS_TA, NR_TA] }, timeDuration: UNTIL, thresholdValues: [10, 20] }),
  },
  patch: {
    contentType: 'application/merge-patch+json',
    schema: 'NetStatusRepSubsPatch',
    status: 200,
    body: { thresholdValues: [5] },
    expect: { thresholdValues: [5] },
  },
  notification: {
    schema: 'NetworkStatusReportingNotification',
    matches: (n, subscription) => n['subscription'] === subscription['self'] && typeof n['nsiValue'] === 'number',
  },
};
