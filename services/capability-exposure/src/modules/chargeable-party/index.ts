import { checkNotificationDestination } from '../../domain/notification-destination.js';
import type { ApiModule, ModuleDefinition, ModuleServices, Reach } from '../registry.js';
import { resourceLifecycle } from '../toolkit/lifecycle.js';
import { assertUeIdentifiers, ueTargetsOf } from '../toolkit/ue-members.js';
import { chargeablePartyNetwork } from './network.js';
import type { Resource, State } from './network.js';

export const CHARGEABLE_PARTY_API = '3gpp-chargeable-party';
/** The data category of this API's resources and notifications. */
export const CHARGEABLE_PARTY_CATEGORY = 'sponsoring';

/**
 * 3gpp-chargeable-party (TS29122_ChargeableParty.yaml): the transactions of an SCS/AS, checked against the
 * official schema, authorized for every UE they name, and stored; what they do in the network is
 * ./network.ts (docs/adding-a-t8-api.md).
 */
function createChargeablePartyModule(s: ModuleServices): ApiModule {
  const network = chargeablePartyNetwork(s);
  const reach = async (body: Resource): Promise<Reach> => ({ dataCategories: [CHARGEABLE_PARTY_CATEGORY], targets: await ueTargetsOf(s.network, body) });
  const resources = resourceLifecycle<Resource, State>({
    services: s,
    api: CHARGEABLE_PARTY_API,
    schemaFile: 'chargeable-party',
    collection: '/{scsAsId}/transactions',
    idParam: 'transactionId',
    schemas: { resource: 'ChargeableParty', list: '#/paths/~1{scsAsId}~1transactions/get/responses/200/content/application~1json/schema' },
    replace: false,
    patch: { kind: 'merge-patch', schema: 'ChargeablePartyPatch', answer: 200 },
    reach,
    validate: body => assertUeIdentifiers(body),
    check: body => checkNotificationDestination(body.notificationDestination, s.destinations),
    network,
  });
  return {
    name: CHARGEABLE_PARTY_API,
    version: 'v1',
    scope: CHARGEABLE_PARTY_API,
    dataCategories: [CHARGEABLE_PARTY_CATEGORY],
    schemaFile: 'chargeable-party',
    schemas: ['ChargeableParty'],
    notificationSchema:
      '#/paths/~1{scsAsId}~1transactions/post/callbacks/eventNotification/{$request.body#~1notificationDestination}/post/requestBody/content/application~1json/schema',
    reach: body => reach(body as Resource),
    routes: resources.routes,
    onNetworkEvent: async event => (await network.onNetworkEvent?.(event, resources)) ?? [],
    stop: async () => network.stop?.(),
  };
}

/** The 3gpp-chargeable-party module, as registered. */
export const chargeablePartyModule: ModuleDefinition = { name: CHARGEABLE_PARTY_API, create: createChargeablePartyModule };
