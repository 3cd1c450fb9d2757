import type { T8ApiJourney } from '../support/t8-api-journey.ts';
import { listSchema } from '../support/t8-api-journey.ts';

/**
 * 3gpp-network-parameter-configuration: suggested network parameters for one UE by externalId.
 * The simulated network answers each version of the configuration with a ConfigurationNotification
 * naming it and the values the UE's serving nodes applied.
 */
export const npConfigurationJourney: T8ApiJourney = {
  api: '3gpp-network-parameter-configuration',
  version: 'v1',
  schemaFile: 'np-configuration',
  collection: 'configurations',
  categories: ['network-parameters'],
  target: 'externalId',
  create: (ue, notificationDestination) => ({ externalId: ue.externalId, maximumLatency: 1000, maximumResponseTime: 100, notificationDestination }),
  schemas: { request: 'NpConfiguration', resource: 'NpConfiguration', list: listSchema('configurations') },
  put: {
    status: 200,
    body: (ue, notificationDestination) => ({ externalId: ue.externalId, maximumLatency: 2621, suggestedNumberOfDlPackets: 8, notificationDestination }),
  },
  patch: {
    contentType: 'application/merge-patch+json',
    schema: 'NpConfigurationPatch',
    status: 200,
    body: { maximumResponseTime: 60, suggestedNumberOfDlPackets: null },
    expect: { maximumLatency: 2621, maximumResponseTime: 60 },
  },
  notification: {
    schema: 'ConfigurationNotification',
    matches: (n, configuration) => {
      const applied = n['appliedParam'] as Record<string, unknown> | undefined;
      return n['configuration'] === configuration['self'] && (applied?.['externalIds'] as string[] | undefined)?.includes(configuration['externalId'] as string) === true;
    },
  },
};
