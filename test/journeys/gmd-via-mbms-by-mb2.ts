import { expect } from 'chai';
import type { T8ApiJourney } from '../support/t8-api-journey.ts';

/** The allocation has no destination of its own: the deliveries take the journey's, as the create was given it. */
let destination = '';

/**
 * 3gpp-group-message-delivery-mb2: the BM-SC allocates a TMGI for the group of the journey's UE
 * (the resource's `{tmgi}` is a UUID ending with the TMGI); PUT and PATCH renew its expiry. A
 * group message posted on the TMGI is broadcast at once, and the AS gets a GMDByMb2Notification
 * naming the delivery and whether the broadcast reached the group.
 */
export const gmdViaMbmsByMb2Journey: T8ApiJourney = {
  api: '3gpp-group-message-delivery-mb2',
  version: 'v1',
  schemaFile: 'gmd-via-mbms-by-mb2',
  collection: 'tmgi-allocation',
  categories: ['group-message'],
  target: 'externalGroupId',
  create: (ue, notificationDestination) => {
    destination = notificationDestination;
    return { externalGroupId: ue.externalGroupId };
  },
  // The official file answers the collection GET with one TMGIAllocation, so it is not served.
  schemas: { request: 'TMGIAllocation', resource: 'TMGIAllocation' },
  put: { status: 200, body: ue => ({ externalGroupId: ue.externalGroupId, mbmsLocArea: { cellId: ['00101000001'] } }) },
  patch: {
    contentType: 'application/merge-patch+json',
    schema: 'TMGIAllocationPatch',
    status: 200,
    body: { mbmsLocArea: { cellId: ['00101000002'] } },
    expect: { mbmsLocArea: { cellId: ['00101000002'] } },
  },
  notification: {
    schema: 'GMDByMb2Notification',
    provoke: async (allocation, calls) => {
      const body = { notificationDestination: destination, externalGroupId: allocation['externalGroupId'], groupMessagePayload: Buffer.from('journey').toString('base64') };
      const reply = await calls.call({ method: 'POST', path: `${calls.itemPath}/delivery-via-mbms`, body });
      expect(reply.status, reply.text).to.equal(201);
    },
    matches: (n, allocation) => String(n['transaction']).startsWith(`${String(allocation['self'])}/delivery-via-mbms/`) && typeof n['deliveryTriggerStatus'] === 'boolean',
  },
};
