import { expect } from 'chai';
import type { T8ApiJourney } from '../support/t8-api-journey.ts';
import { listSchema } from '../support/t8-api-journey.ts';

/**
 * 3gpp-nidd: a NIDD configuration of one UE by externalId. The simulated UE sends an uplink
 * reading on each of its configurations when it wakes or moves while reachable, each a
 * NiddUplinkDataNotification to that configuration alone, naming it and the UE; before waiting for one, the journey also sends the UE downlink data
 * through the configuration's downlink-data-deliveries (200 delivered, or 201 buffered).
 */
export const niddJourney: T8ApiJourney = {
  api: '3gpp-nidd',
  version: 'v1',
  schemaFile: 'nidd',
  collection: 'configurations',
  categories: ['nidd'],
  target: 'externalId',
  create: (ue, notificationDestination) => ({ externalId: ue.externalId, notificationDestination, pdnEstablishmentOption: 'WAIT_FOR_UE', duration: '2099-01-01T00:00:00Z' }),
  schemas: { request: 'NiddConfiguration', resource: 'NiddConfiguration', list: listSchema('configurations') },
  patch: {
    contentType: 'application/merge-patch+json',
    schema: 'NiddConfigurationPatch',
    status: 200,
    body: { pdnEstablishmentOption: 'SEND_TRIGGER', reliableDataService: true },
    expect: { pdnEstablishmentOption: 'SEND_TRIGGER', reliableDataService: true, status: 'ACTIVE' },
  },
  notification: {
    schema: 'NiddUplinkDataNotification',
    provoke: async (configuration, calls) => {
      const body = { externalId: configuration['externalId'], data: Buffer.from('journey').toString('base64') };
      const reply = await calls.call({ method: 'POST', path: `${calls.itemPath}/downlink-data-deliveries`, body });
      expect(reply.status, reply.text).to.be.oneOf([200, 201]);
      expect(reply.json<Record<string, unknown>>()['deliveryStatus']).to.be.oneOf(['SUCCESS_ACKNOWLEDGED', 'TRIGGERED']);
    },
    matches: (n, configuration) => n['niddConfiguration'] === configuration['self'] && n['externalId'] === configuration['externalId'] && typeof n['data'] === 'string',
  },
};
