import { simulatedUeIdentifiers } from '../../services/capability-exposure/src/network/simulated-core.ts';
import type { JourneyUe, T8ApiJourney } from '../support/t8-api-journey.ts';
import { listSchema } from '../support/t8-api-journey.ts';

/** The IPv4 address the simulated network gives a UE (bodies of this API name the UE by address). */
function ipv4Of(ue: JourneyUe): string {
  return simulatedUeIdentifiers(Number(/^ue(\d+)@/.exec(ue.externalId)![1])).ipv4Addr;
}

/**
 * 3gpp-chargeable-party: the AS asks to sponsor the data of one UE's session, named by the UE's
 * IPv4 address (authorized as the UE holding it); it may switch sponsoring off and on (PATCH).
 * The simulated PCRF reports the allocation of the sponsored resources at once.
 */
export const chargeablePartyJourney: T8ApiJourney = {
  api: '3gpp-chargeable-party',
  version: 'v1',
  schemaFile: 'chargeable-party',
  collection: 'transactions',
  categories: ['sponsoring'],
  target: 'externalId',
  create: (ue, notificationDestination) => ({
    notificationDestination,
    ipv4Addr: ipv4Of(ue),
    sponsorInformation: { sponsorId: 'sponsor-1', aspId: 'asp-1' },
    sponsoringEnabled: true,
    events: ['SUCCESSFUL_RESOURCES_ALLOCATION', 'USAGE_REPORT'],
  }),
  schemas: { request: 'ChargeableParty', resource: 'ChargeableParty', list: listSchema('transactions') },
  patch: {
    contentType: 'application/merge-patch+json',
    schema: 'ChargeablePartyPatch',
    status: 200,
    body: { sponsoringEnabled: false },
    expect: { sponsoringEnabled: false },
  },
  notification: {
    schemaFile: 'common-data',
    schema: 'NotificationData',
    matches: (n, transaction) => n['transaction'] === transaction['self'] && JSON.stringify(n['eventReports']) === '[{"event":"SUCCESSFUL_RESOURCES_ALLOCATION"}]',
  },
};
