import type { components } from '@aese/t8-openapi/gmd-via-mbms-by-xmb';
import { SimulatedBmSc } from '../mbms/bm-sc.js';
import { GROUP_MESSAGE_CATEGORY, groupMessageDeliveries } from '../mbms/deliveries.js';
import { assertGroup, checkGroupKnown, groupReach } from '../mbms/group.js';
import type { ApiModule, ModuleDefinition, ModuleServices } from '../registry.js';
import { resourceLifecycle } from '../toolkit/lifecycle.js';

export const GMD_VIA_MBMS_BY_XMB_API = '3gpp-group-message-delivery-xmb';

type Service = components['schemas']['ServiceCreation'];
type Delivery = components['schemas']['GMDViaMBMSByxMB'];

const P = '#/paths/~1{scsAsId}~1services';
const SCHEMAS = {
  service: 'ServiceCreation',
  delivery: 'GMDViaMBMSByxMB',
  deliveryPatch: 'GMDViaMBMSByxMBPatch',
  notification: 'GMDByxMBNotification',
  serviceList: `${P}/get/responses/200/content/application~1json/schema`,
  deliveryList: `${P}~1{serviceId}~1delivery-via-mbms/get/responses/200/content/application~1json/schema`,
} as const;
/** What the BM-SC says of the service it created: the AS names only the group. */
const SERVICE_MEMBERS = ['userServiceId', 'serviceClass', 'serviceLanguages', 'serviceNames', 'receiveOnlyMode', 'serviceAnnouncementMode'] as const;

/** The MBMS user service the simulated BM-SC creates for a group: announced by the BM-SC (SACH). */
function serviceDescription(id: string): Partial<Service> {
  return {
    userServiceId: `urn:aese:mbms:user-service:${id}`,
    serviceClass: 'urn:aese:mbms:service-class:group-message',
    serviceLanguages: ['en'],
    serviceNames: ['Group message delivery'],
    receiveOnlyMode: false,
    serviceAnnouncementMode: 'SACH',
  };
}

/**
 * 3gpp-group-message-delivery-xmb (TS 29.122 clause 5.8.3): an AS has the BM-SC
 * create an MBMS user service for an external group (`/services`), then asks for group messages
 * to be broadcast on it (`/services/{serviceId}/delivery-via-mbms`), each between its start and
 * stop time. Each broadcast's outcome reaches the AS as a GMDByxMBNotification.
 */
function createGmdViaMbmsByXmbModule(s: ModuleServices): ApiModule {
  const bmsc = new SimulatedBmSc(s.network, s.now);

  const deliveries = groupMessageDeliveries<Delivery>({
    services: s,
    bmsc,
    api: GMD_VIA_MBMS_BY_XMB_API,
    schemaFile: 'gmd-via-mbms-by-xmb',
    collection: '/{scsAsId}/services/{serviceId}/delivery-via-mbms',
    parent: { idParam: 'serviceId', store: GMD_VIA_MBMS_BY_XMB_API },
    schemas: { resource: SCHEMAS.delivery, patch: SCHEMAS.deliveryPatch, notification: SCHEMAS.notification, list: SCHEMAS.deliveryList },
    // A delivery names no group: it goes to its service's, authorized with the service's targets.
    reach: () => groupReach(undefined),
    audience: (delivery, service) => ({
      externalGroupId: service.resource['externalGroupId'] as string,
      ...(delivery.messageDeliveryStopTime === undefined ? {} : { notAfterMs: Date.parse(delivery.messageDeliveryStopTime) }),
    }),
  });

  const services = resourceLifecycle<Service, Record<string, never>>({
    services: s,
    api: GMD_VIA_MBMS_BY_XMB_API,
    schemaFile: 'gmd-via-mbms-by-xmb',
    collection: '/{scsAsId}/services',
    idParam: 'serviceId',
    schemas: { resource: SCHEMAS.service, list: SCHEMAS.serviceList },
    replace: false,
    scefMembers: SERVICE_MEMBERS,
    reach: body => groupReach(body.externalGroupId),
    validate: body => assertGroup(body.externalGroupId),
    check: body => checkGroupKnown(s.network, body.externalGroupId!),
    network: {
      create: async (_body, call) => ({ state: {}, set: serviceDescription(call.id) }),
      delete: held => deliveries.removeUnder(held.record),
    },
  });

  return {
    name: GMD_VIA_MBMS_BY_XMB_API,
    version: 'v1',
    scope: GMD_VIA_MBMS_BY_XMB_API,
    dataCategories: [GROUP_MESSAGE_CATEGORY],
    schemaFile: 'gmd-via-mbms-by-xmb',
    schemas: [SCHEMAS.service, SCHEMAS.delivery, SCHEMAS.deliveryPatch, SCHEMAS.notification],
    notificationSchema: SCHEMAS.notification,
    reach: async body => groupReach((body as Service).externalGroupId),
    routes: [...services.routes, ...deliveries.routes],
    onNetworkEvent: deliveries.onNetworkEvent,
    start: deliveries.start,
    stop: deliveries.stop,
  };
}

/** The GMDviaMBMSbyxMB module, as registered. */
export const gmdViaMbmsByXmbModule: ModuleDefinition = { name: GMD_VIA_MBMS_BY_XMB_API, create: createGmdViaMbmsByXmbModule };
