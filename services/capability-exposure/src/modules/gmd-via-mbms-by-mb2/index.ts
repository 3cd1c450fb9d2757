import type { components } from '@aese/t8-openapi/gmd-via-mbms-by-mb2';
import { invalidParam, PROBLEM_CAUSES } from '../../domain/problem.js';
import { SimulatedBmSc } from '../mbms/bm-sc.js';
import { GROUP_MESSAGE_CATEGORY, groupMessageDeliveries } from '../mbms/deliveries.js';
import { assertGroup, checkGroupKnown, groupReach } from '../mbms/group.js';
import type { ApiModule, ModuleDefinition, ModuleServices, RouteRequest } from '../registry.js';
import { resourceLifecycle } from '../toolkit/lifecycle.js';
import { allocationId, tmgiOfAllocation } from './tmgi.js';

export const GMD_VIA_MBMS_BY_MB2_API = '3gpp-group-message-delivery-mb2';

type Allocation = components['schemas']['TMGIAllocation'];
type Delivery = components['schemas']['GMDViaMBMSByMb2'];

/**
 * The collection GETs are not served: the official file answers them with one TMGIAllocation /
 * one GMDViaMBMSByMb2, not a list, so no list could be checked against it.
 */
const SCHEMAS = {
  allocation: 'TMGIAllocation',
  allocationPatch: 'TMGIAllocationPatch',
  delivery: 'GMDViaMBMSByMb2',
  deliveryPatch: 'GMDViaMBMSByMb2Patch',
  notification: 'GMDByMb2Notification',
} as const;

interface AllocationState {
  readonly tmgi: string;
}

const iso = (ms: number): string => new Date(ms).toISOString();

/**
 * 3gpp-group-message-delivery-mb2 (TS 29.122 clauses 4.4.13 and 5.12): an AS has the BM-SC
 * allocate a TMGI for an external group (`/tmgi-allocation`; PUT or PATCH renews its expiry,
 * DELETE deallocates it), then asks for group messages to be broadcast on it
 * (`/tmgi-allocation/{tmgi}/delivery-via-mbms`). Each broadcast's outcome reaches the AS as a
 * GMDByMb2Notification. The `{tmgi}` segment is a UUID that ends with the TMGI (tmgi.ts).
 */
function createGmdViaMbmsByMb2Module(s: ModuleServices): ApiModule {
  const bmsc = new SimulatedBmSc(s.network, s.now);

  const deliveries = groupMessageDeliveries<Delivery>({
    services: s,
    bmsc,
    api: GMD_VIA_MBMS_BY_MB2_API,
    schemaFile: 'gmd-via-mbms-by-mb2',
    collection: '/{scsAsId}/tmgi-allocation/{tmgi}/delivery-via-mbms',
    parent: { idParam: 'tmgi', store: GMD_VIA_MBMS_BY_MB2_API },
    schemas: { resource: SCHEMAS.delivery, patch: SCHEMAS.deliveryPatch, notification: SCHEMAS.notification },
    reach: body => groupReach(body.externalGroupId),
    validate: body => assertGroup(body.externalGroupId),
    check: (body, allocation) => {
      if (body.externalGroupId !== allocation.resource['externalGroupId']) {
        throw invalidParam('/externalGroupId', 'is not the group the TMGI was allocated for', PROBLEM_CAUSES.invalidParameter);
      }
    },
    // The broadcast needs the TMGI still allocated when it goes out.
    audience: (delivery, allocation) => ({ externalGroupId: delivery.externalGroupId!, notAfterMs: Date.parse(allocation.resource['tmgiExpiration'] as string) }),
  });

  function validate(body: Allocation, req: RouteRequest): void {
    assertGroup(body.externalGroupId);
    // The expiry is the BM-SC's: an update may send back the one it read, nothing else.
    if (body.tmgiExpiration !== undefined && body.tmgiExpiration !== req.existing?.resource['tmgiExpiration']) {
      throw invalidParam('/tmgiExpiration', 'is written by the SCEF only', PROBLEM_CAUSES.invalidParameter);
    }
  }

  /** A TMGI no allocation of any AS holds. */
  function newAllocationId(): string {
    const held = new Set(s.store.all(GMD_VIA_MBMS_BY_MB2_API).map(r => tmgiOfAllocation(r.id)));
    return allocationId(
      s.newId(),
      bmsc.allocateTmgi(tmgi => held.has(tmgi)),
    );
  }

  const allocations = resourceLifecycle<Allocation, AllocationState>({
    services: { ...s, newId: newAllocationId },
    api: GMD_VIA_MBMS_BY_MB2_API,
    schemaFile: 'gmd-via-mbms-by-mb2',
    collection: '/{scsAsId}/tmgi-allocation',
    idParam: 'tmgi',
    schemas: { resource: SCHEMAS.allocation },
    patch: { kind: 'merge-patch', schema: SCHEMAS.allocationPatch, answer: 200 },
    reach: body => groupReach(body.externalGroupId),
    validate,
    check: body => checkGroupKnown(s.network, body.externalGroupId!),
    network: {
      create: async (_body, call) => ({ state: { tmgi: tmgiOfAllocation(call.id) }, set: { tmgiExpiration: iso(bmsc.tmgiExpiry()) } }),
      // Every update of an allocation is a renewal of its TMGI.
      update: async (_next, held) => ({ state: held.state, set: { tmgiExpiration: iso(bmsc.tmgiExpiry()) } }),
      delete: held => deliveries.removeUnder(held.record),
    },
  });

  return {
    name: GMD_VIA_MBMS_BY_MB2_API,
    version: 'v1',
    scope: GMD_VIA_MBMS_BY_MB2_API,
    dataCategories: [GROUP_MESSAGE_CATEGORY],
    schemaFile: 'gmd-via-mbms-by-mb2',
    schemas: Object.values(SCHEMAS),
    notificationSchema: SCHEMAS.notification,
    reach: async body => groupReach((body as Allocation).externalGroupId),
    routes: [...allocations.routes, ...deliveries.routes],
    onNetworkEvent: deliveries.onNetworkEvent,
    start: deliveries.start,
    stop: deliveries.stop,
  };
}

/** The GMDviaMBMSbyMB2 module, as registered. */
export const gmdViaMbmsByMb2Module: ModuleDefinition = { name: GMD_VIA_MBMS_BY_MB2_API, create: createGmdViaMbmsByMb2Module };
