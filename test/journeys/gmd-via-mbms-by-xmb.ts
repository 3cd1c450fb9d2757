import { expect } from 'chai';
import type { T8ApiJourney } from '../support/t8-api-journey.ts';
import { listSchema } from '../support/t8-api-journey.ts';

/** The service has no destination of its own: the deliveries take the journey's, as the create was given it. */
let destination = '';

/**
 * 3gpp-group-message-delivery-xmb: the BM-SC creates an MBMS user service for the group of the
 * journey's UE (no PUT or PATCH on a service). A group message posted on the service is broadcast
 * at once, and the AS gets a GMDByxMBNotification naming the delivery and whether it reached the group.
 */
export const gmdViaMbmsByXmbJourney: T8ApiJourney = {
  api: '3gpp-group-message-delivery-xmb',
  version: 'v1',
  schemaFile: 'gmd-via-mbms-by-xmb',
  collection: 'services',
  categories: ['group-message'],
  target: 'externalGroupId',
  create: (ue, notificationDestination) => {
    destination = notificationDestination;
    return { externalGroupId: ue.externalGroupId };
  },
  schemas: { request: 'ServiceCreation', resource: 'ServiceCreation', list: listSchema('services') },
  notification: {
    schema: 'GMDByxMBNotification',
    provoke: async (_service, calls) => {
      const body = { notificationDestination: destination, groupMessagePayload: Buffer.from('journey').toString('base64') };
      const reply = await calls.call({ method: 'POST', path: `${calls.itemPath}/delivery-via-mbms`, body });
      expect(reply.status, reply.text).to.equal(201);
    },
    matches: (n, service) => String(n['transaction']).startsWith(`${String(service['self'])}/delivery-via-mbms/`) && typeof n['deliveryTriggerStatus'] === 'boolean',
  },
};
