import type { JsonBody, JourneyUe, T8ApiJourney } from '../support/t8-api-journey.ts';
import { listSchema } from '../support/t8-api-journey.ts';

/** A UE reporting every hour for two minutes, stationary, on a replaceable battery. */
const hourly = (setId: string, periodicTime = 3600): JsonBody => ({
  setId,
  periodicCommunicationIndicator: 'PERIODICALLY',
  periodicTime,
  communicationDurationTime: 120,
  stationaryIndication: 'STATIONARY',
  batteryInds: ['BATTERY_REPLACE'],
});
const subscription = (ue: JourneyUe, periodicTime?: number): JsonBody => ({ externalId: ue.externalId, cpParameterSets: { meter: hourly('journey-meter', periodicTime) } });

/**
 * 3gpp-cp-parameter-provisioning: the communication pattern of one UE (named by externalId),
 * reporting hourly; the simulated HSS accepts the set, and a replacement makes it two-hourly.
 * The API has no PATCH and notifies nothing.
 */
export const cpProvisioningJourney: T8ApiJourney = {
  api: '3gpp-cp-parameter-provisioning',
  version: 'v1',
  schemaFile: 'cp-provisioning',
  collection: 'subscriptions',
  categories: ['communication-pattern'],
  target: 'externalId',
  create: ue => subscription(ue),
  schemas: { request: 'CpInfo', resource: 'CpInfo', list: listSchema('subscriptions') },
  put: { status: 200, body: ue => subscription(ue, 7200) },
};
