import { createHash } from 'node:crypto';
import { targetOf } from '@aese/t8-catalog';
import type { components } from '@aese/t8-openapi/msisdn-less-mo-sms';
import { checkNotificationDestination } from '../../domain/notification-destination.js';
import { T8Problem } from '../../domain/problem.js';
import { newStoredResource } from '../../domain/resource-store.js';
import type { NetworkEvent } from '../../network/network-adapter.js';
import type { ApiModule, ModuleDefinition, ModuleServices, PendingNotification } from '../registry.js';
import { MSISDN_LESS_MO_SMS_API, readMoSms, SimulatedMoSmsNetwork } from './network.js';
import { moSmsRoutesOf } from './settings.js';

export { MSISDN_LESS_MO_SMS_API } from './network.js';
/** The one data category of MO SMS. */
export const MO_SMS_CATEGORY = 'mo-sms';

type Notification = components['schemas']['MsisdnLessMoSmsNotification'];

const NOTIFICATION_SCHEMA = 'MsisdnLessMoSmsNotification';
/** No optional feature of the API is supported. */
const SUPPORTED_FEATURES = '0';

/** A UUID-shaped id of the delivery of one MO SMS: the same for the same network event, so a redelivered event notifies under the same ids. */
function deliveryIdOf(eventId: string): string {
  const h = createHash('sha256').update(`aese-mo-sms-delivery/v1\n${eventId}`).digest();
  h[6] = (h[6] & 0x0f) | 0x80;
  h[8] = (h[8] & 0x3f) | 0x80;
  const x = h.subarray(0, 16).toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}

/**
 * 3gpp-msisdn-less-mo-sms (TS 29.122 clauses 4.4.14 and 5.15; TS 23.682 clause 5.15): here the
 * SCEF is the client. A UE without an MSISDN sends an SMS to an application port; the SMS-SC hands
 * it to the SCEF over T4, which finds the SCS/AS the operator configured for that port
 * (MO_SMS_APPLICATION_PORTS) and POSTs it there as an MsisdnLessMoSmsNotification naming the UE
 * by External Identifier. There is no T8 resource and no route: each SMS is authorized on its own
 * by the notification engine (operation notify, the UE as target, category mo-sms), so an AS gets
 * only the SMS of UEs it was granted.
 */
function createMsisdnLessMoSmsModule(s: ModuleServices): ApiModule {
  const routes = new Map(moSmsRoutesOf(s.settings).map(r => [r.applicationPort, r]));
  const devices = new SimulatedMoSmsNetwork(
    s.network,
    [...routes.keys()].sort((a, b) => a - b),
  );

  /** The operator's destination passes the rules an AS's does (https, public address, allowed port, resolves). */
  async function deliverable(destination: string): Promise<boolean> {
    try {
      await checkNotificationDestination(destination, s.destinations);
      return true;
    } catch (err) {
      if (err instanceof T8Problem) return false;
      throw err;
    }
  }

  async function onNetworkEvent(event: NetworkEvent): Promise<PendingNotification[]> {
    if (event.kind !== 'capability') {
      await devices.afterChange(event);
      return [];
    }
    const sms = readMoSms(event);
    const route = sms ? routes.get(sms.applicationPort) : undefined;
    // A port no SCS/AS was configured for, or a UE the network does not know: nobody to deliver to.
    if (!sms || !route || !(await s.network.findUe({ externalId: sms.externalId }))) return [];
    if (!(await deliverable(route.notificationDestination))) return [];
    const reach = { targets: [targetOf('externalId', sms.externalId)], dataCategories: [MO_SMS_CATEGORY] };
    const id = event.id === undefined ? s.newId() : deliveryIdOf(event.id);
    // No resource of the AS stands behind it: the record only says whom it is for and what it reaches.
    const record = newStoredResource(MSISDN_LESS_MO_SMS_API, route.scsAsId, id, {}, reach, {}, s.now());
    const body: Notification = { supportedFeatures: SUPPORTED_FEATURES, sms: sms.sms, externalId: sms.externalId, applicationPort: sms.applicationPort };
    return [{ record, body, dataCategories: [MO_SMS_CATEGORY], destination: route.notificationDestination }];
  }

  return {
    name: MSISDN_LESS_MO_SMS_API,
    version: 'v1',
    scope: MSISDN_LESS_MO_SMS_API,
    dataCategories: [MO_SMS_CATEGORY],
    schemaFile: 'msisdn-less-mo-sms',
    schemas: [NOTIFICATION_SCHEMA],
    notificationSchema: NOTIFICATION_SCHEMA,
    // No route: the AS never calls this API, so there is no request to reach anything.
    reach: async () => ({ dataCategories: [MO_SMS_CATEGORY], targets: [] }),
    routes: [],
    onNetworkEvent,
  };
}

/** The MsisdnLessMoSms module, as registered. */
export const msisdnLessMoSmsModule: ModuleDefinition = { name: MSISDN_LESS_MO_SMS_API, create: createMsisdnLessMoSmsModule };
