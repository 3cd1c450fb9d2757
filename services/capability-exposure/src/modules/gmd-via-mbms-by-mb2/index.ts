import type { components } from '@aese/t8-openapi/gmd-via-mbms-by-mb2';
import { invalidParam, notFound, PROBLEM_CAUSES, T8Problem } from '../../domain/problem.js';
import type { StoredResource } from '../../domain/resource-store.js';
import { SimulatedBmSc } from '../mbms/bm-sc.js';
import type { BmScOptions } from '../mbms/bm-sc.js';
import { GROUP_MESSAGE_CATEGORY, groupMessageDeliveries } from '../mbms/deliveries.js';
import { assertGroup, checkGroupKnown, groupReach } from '../mbms/group.js';
import type { ApiModule, ModuleDefinition, ModuleServices, RouteRequest } from '../registry.js';
import { resourceLifecycle } from '../toolkit/lifecycle.js';
import { allocationId, tmgiOfAllocation } from './tmgi.js';

export const GMD_VIA_MBMS_BY_MB2_API = '3gpp-group-message-delivery-mb2';
/** How often expired TMGI allocations are looked for and released. */
export const DEFAULT_EXPIRY_SWEEP_MS = 10_000;

/** What the module's simulated BM-SC is like; tests shrink it. */
export interface GmdViaMbmsByMb2Options {
  readonly bmsc?: BmScOptions;
  readonly expirySweepMs?: number;
}

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
const expiryOf = (allocation: StoredResource): number => Date.parse(allocation.resource['tmgiExpiration'] as string);

/**
 * 3gpp-group-message-delivery-mb2 (TS 29.122 clause 5.8.2): an AS has the BM-SC
 * allocate a TMGI for an external group (`/tmgi-allocation`; PUT or PATCH renews its expiry,
 * DELETE deallocates it), then asks for group messages to be broadcast on it
 * (`/tmgi-allocation/{tmgi}/delivery-via-mbms`). Each broadcast's outcome reaches the AS as a
 * GMDByMb2Notification. The `{tmgi}` segment is a UUID that ends with the TMGI (tmgi.ts).
 * The group of an allocation is fixed: its deliveries are broadcast to it. When the BM-SC's TMGIs
 * are all taken, an allocation is refused (503). A TMGI whose expiry has passed is the BM-SC's
 * again: a sweep deletes its allocation and the deliveries on it, a renewal or a new delivery
 * finds it gone (404), and a new allocation may get its TMGI.
 */
export function createGmdViaMbmsByMb2Module(s: ModuleServices, options: GmdViaMbmsByMb2Options = {}): ApiModule {
  const bmsc = new SimulatedBmSc(s.network, s.now, options.bmsc);
  const expired = (allocation: StoredResource): boolean => expiryOf(allocation) <= s.now();

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
      if (expired(allocation)) throw notFound();
      if (body.externalGroupId !== allocation.resource['externalGroupId']) {
        throw invalidParam('/externalGroupId', 'is not the group the TMGI was allocated for', PROBLEM_CAUSES.invalidParameter);
      }
    },
    // The broadcast needs the TMGI still allocated when it goes out.
    audience: (delivery, allocation) => ({ externalGroupId: delivery.externalGroupId!, notAfterMs: expiryOf(allocation) }),
  });

  function validate(body: Allocation, req: RouteRequest): void {
    assertGroup(body.externalGroupId);
    // The expiry is the BM-SC's: an update may send back the one it read, nothing else.
    if (body.tmgiExpiration !== undefined && body.tmgiExpiration !== req.existing?.resource['tmgiExpiration']) {
      throw invalidParam('/tmgiExpiration', 'is written by the SCEF only', PROBLEM_CAUSES.invalidParameter);
    }
  }

  /** A TMGI no allocation of any AS holds (an expired one holds none); a 503 when the BM-SC has none free. */
  function newAllocationId(): string {
    const held = new Set(
      s.store
        .all(GMD_VIA_MBMS_BY_MB2_API)
        .filter(r => !expired(r))
        .map(r => tmgiOfAllocation(r.id)),
    );
    const tmgi = bmsc.allocateTmgi(t => held.has(t));
    if (tmgi === undefined) throw new T8Problem(503, PROBLEM_CAUSES.networkUnavailable, 'the BM-SC has no TMGI free; nothing was allocated');
    return allocationId(s.newId(), tmgi);
  }

  /** Deletes an allocation whose TMGI expired (unless renewed meanwhile), and the deliveries on it. */
  async function release(allocation: StoredResource): Promise<void> {
    let released = false;
    await s.store.update(GMD_VIA_MBMS_BY_MB2_API, allocation.scsAsId, allocation.id, current => {
      released = current !== undefined && expired(current);
      return released ? null : undefined;
    });
    if (released) await deliveries.removeUnder(allocation);
  }

  let sweeping: Promise<void> | undefined;
  async function sweep(): Promise<void> {
    let all: readonly StoredResource[];
    try {
      all = s.store.all(GMD_VIA_MBMS_BY_MB2_API);
    } catch {
      // The copy cannot be vouched for now (NATS unreachable): the next sweep looks again.
      return;
    }
    for (const allocation of all.filter(expired)) await release(allocation).catch(() => undefined);
  }
  let sweepTimer: NodeJS.Timeout | undefined;

  const allocations = resourceLifecycle<Allocation, AllocationState>({
    services: { ...s, newId: newAllocationId },
    api: GMD_VIA_MBMS_BY_MB2_API,
    schemaFile: 'gmd-via-mbms-by-mb2',
    collection: '/{scsAsId}/tmgi-allocation',
    idParam: 'tmgi',
    schemas: { resource: SCHEMAS.allocation },
    patch: { kind: 'merge-patch', schema: SCHEMAS.allocationPatch, answer: 200 },
    // Its deliveries go to the group it was allocated for.
    immutable: ['externalGroupId'],
    immutableCause: PROBLEM_CAUSES.ueIdentifierImmutable,
    reach: body => groupReach(body.externalGroupId),
    validate,
    check: body => checkGroupKnown(s.network, body.externalGroupId!),
    network: {
      create: async (_body, call) => ({ state: { tmgi: tmgiOfAllocation(call.id) }, set: { tmgiExpiration: iso(bmsc.tmgiExpiry()) } }),
      // Every update of an allocation is a renewal of its TMGI; an expired TMGI is no longer the AS's to renew.
      update: async (_next, held) => {
        if (expired(held.record)) {
          await release(held.record);
          throw notFound();
        }
        return { state: held.state, set: { tmgiExpiration: iso(bmsc.tmgiExpiry()) } };
      },
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
    start: async () => {
      await deliveries.start();
      sweepTimer ??= setInterval(() => {
        // A slow sweep is not overlapped by the next one.
        sweeping ??= sweep().finally(() => (sweeping = undefined));
      }, options.expirySweepMs ?? DEFAULT_EXPIRY_SWEEP_MS);
      sweepTimer.unref();
    },
    stop: async () => {
      clearInterval(sweepTimer);
      sweepTimer = undefined;
      await sweeping;
      await deliveries.stop();
    },
  };
}

/** The GMDviaMBMSbyMB2 module, as registered. */
export const gmdViaMbmsByMb2Module: ModuleDefinition = { name: GMD_VIA_MBMS_BY_MB2_API, create: s => createGmdViaMbmsByMb2Module(s) };
