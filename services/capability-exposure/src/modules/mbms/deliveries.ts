import type { T8ApiFile } from '@aese/t8-openapi';
import { checkNotificationDestination } from '../../domain/notification-destination.js';
import { invalidParam, notFound, PROBLEM_CAUSES, T8Problem } from '../../domain/problem.js';
import type { StoredResource } from '../../domain/resource-store.js';
import type { NetworkEvent } from '../../network/network-adapter.js';
import type { ModuleRoute, ModuleServices, PendingNotification, Reach, RouteRequest } from '../registry.js';
import { stillAuthorized } from '../toolkit/authorize.js';
import { resourceLifecycle } from '../toolkit/lifecycle.js';
import type { Held } from '../toolkit/lifecycle.js';
import { MAX_SCHEDULE_AHEAD_MS } from './bm-sc.js';
import type { SimulatedBmSc } from './bm-sc.js';

/** The data category of group message deliveries (payloads, groups, delivery outcomes). */
export const GROUP_MESSAGE_CATEGORY = 'group-message';
/** Capability event of a broadcast's outcome, as the simulated BM-SC reports it. */
export const DELIVERY_STATUS_EVENT = 'delivery-status';
/** Where the SCEF would take the payload over the user plane: written by the SCEF only. */
const SCEF_MEMBERS = ['scefMessageDeliveryIPv4', 'scefMessageDeliveryIPv6', 'scefMessageDeliveryPort'] as const;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** The members the deliveries of MB2 and xMB share. */
export interface GroupDelivery {
  self?: string;
  notificationDestination: string;
  requestTestNotification?: boolean;
  externalGroupId?: string;
  mbmsLocArea?: unknown;
  messageDeliveryStartTime?: string;
  messageDeliveryStopTime?: string;
  groupMessagePayload?: string;
}

interface DeliveryState {
  /** One per version of the message: a broadcast or report of an earlier one is not this one's. */
  readonly attempt: number;
  readonly broadcastAtMs: number;
  readonly status: 'scheduled' | 'broadcast';
  readonly delivered?: boolean;
  /** The TMGI allocation or service (set by the lifecycle). */
  readonly parentId?: string;
}

export interface GroupDeliveriesSpec<R extends GroupDelivery> {
  readonly services: ModuleServices;
  readonly bmsc: SimulatedBmSc;
  /** The module's name: the capability of its events, and the API its notifications are authorized for. */
  readonly api: string;
  readonly schemaFile: T8ApiFile;
  /** e.g. "/{scsAsId}/services/{serviceId}/delivery-via-mbms". */
  readonly collection: string;
  readonly parent: { readonly idParam: string; readonly store: string };
  readonly schemas: { readonly resource: string; readonly patch: string; readonly notification: string; readonly list?: string };
  readonly reach: (body: R) => Reach;
  /** Rules of the API beyond the shared ones that need nothing but the request. */
  readonly validate?: (body: R) => void;
  /** The group a delivery goes to, and the time after which it can no longer go out. */
  readonly audience: (delivery: R, parent: StoredResource) => { readonly externalGroupId: string; readonly notAfterMs?: number };
  /** Rules of the API that read the parent (run once authorized). */
  readonly check?: (body: R, parent: StoredResource) => void;
}

export interface GroupDeliveries {
  readonly routes: readonly ModuleRoute[];
  readonly onNetworkEvent: (event: NetworkEvent) => Promise<PendingNotification[]>;
  /** Cancels and removes the deliveries of a TMGI allocation or service being deleted. */
  readonly removeUnder: (parent: StoredResource) => Promise<void>;
  /** Schedules again the broadcasts stored as not yet sent (the timers of a stopped replica are gone). */
  readonly start: () => Promise<void>;
  readonly stop: () => Promise<void>;
}

const timeOf = (v: string | undefined): number | undefined => (v === undefined ? undefined : Date.parse(v));
/** What is broadcast: a change to anything else (the destination) does not send the message again. */
const contentOf = (r: GroupDelivery): string => JSON.stringify([r.externalGroupId, r.mbmsLocArea, r.messageDeliveryStartTime, r.messageDeliveryStopTime, r.groupMessagePayload]);

/**
 * The group message deliveries below a TMGI allocation (MB2) or an xMB service: each one is a
 * payload the simulated BM-SC broadcasts to the external group at its start time (or at once);
 * the outcome comes back as a capability event and goes to the AS as a GMDByMb2Notification /
 * GMDByxMBNotification (`deliveryTriggerStatus`). A replacement or patch of the message sends it
 * again; deleting it before its time cancels it. Each broadcast is authorized again when it goes
 * out, on the delivery's stored reach (its group included): refused, nothing is broadcast and the
 * outcome is a failed delivery (`deliveryTriggerStatus` false).
 */
export function groupMessageDeliveries<R extends GroupDelivery>(spec: GroupDeliveriesSpec<R>): GroupDeliveries {
  const s = spec.services;
  const store = `${spec.api}-deliveries`;
  const timerKey = (scsAsId: string, id: string): string => `${scsAsId}\n${id}`;

  function validate(body: R): void {
    spec.validate?.(body);
    if (typeof body.groupMessagePayload !== 'string' || body.groupMessagePayload.length === 0) {
      throw invalidParam('/groupMessagePayload', 'is required: the payload travels in the request, not over the user plane', PROBLEM_CAUSES.invalidParameter);
    }
    if (!BASE64.test(body.groupMessagePayload)) throw invalidParam('/groupMessagePayload', 'must be base64', PROBLEM_CAUSES.invalidParameter);
    const now = s.now();
    const start = timeOf(body.messageDeliveryStartTime);
    const stop = timeOf(body.messageDeliveryStopTime);
    if (start !== undefined && start > now + MAX_SCHEDULE_AHEAD_MS) throw invalidParam('/messageDeliveryStartTime', 'is too far ahead', PROBLEM_CAUSES.invalidParameter);
    if (stop !== undefined && (stop <= now || (start !== undefined && stop <= start))) {
      throw invalidParam('/messageDeliveryStopTime', 'must be later than now and than the start time', PROBLEM_CAUSES.invalidParameter);
    }
  }

  async function parentOf(req: RouteRequest): Promise<StoredResource> {
    const parent = await s.store.get(spec.parent.store, req.scsAsId, req.params[spec.parent.idParam]);
    if (!parent || parent.scsAsId !== req.scsAsId) throw notFound();
    return parent;
  }

  /**
   * A new delivery goes to its parent's group, which its body may not name (xMB names none): the
   * group is authorized here too, so a grant withdrawn since the parent was made is honoured.
   */
  async function authorizeParentTargets(body: R, parent: StoredResource, req: RouteRequest): Promise<void> {
    const reach = spec.reach(body);
    if (parent.targets.every(t => reach.targets.includes(t))) return;
    let decision;
    try {
      const targets = [...new Set([...reach.targets, ...parent.targets])].sort();
      decision = await s.decide({ scsAsId: req.scsAsId, api: spec.api, operation: 'create', dataCategories: reach.dataCategories, targets, pathScsAsId: req.scsAsId });
    } catch {
      throw new T8Problem(503, PROBLEM_CAUSES.authorizationUnavailable, 'authorization is unavailable; the request was not executed');
    }
    if (!decision.allowed) throw new T8Problem(403, decision.denyCause || PROBLEM_CAUSES.requestNotAuthorized, 'the request is not authorized');
  }

  async function check(body: R, req: RouteRequest): Promise<void> {
    const parent = await parentOf(req);
    if (!req.existing) await authorizeParentTargets(body, parent, req);
    spec.check?.(body, parent);
    await checkNotificationDestination(body.notificationDestination, s.destinations);
  }

  /** The broadcast of one version of a delivery: once, by whichever replica claims it first. */
  async function broadcast(scsAsId: string, id: string, attempt: number): Promise<void> {
    const current = (r: StoredResource | undefined): r is StoredResource => r?.state['attempt'] === attempt && r.state['status'] === 'scheduled';
    const record = await s.store.get(store, scsAsId, id);
    if (!current(record)) return;
    const parent = await s.store.get(spec.parent.store, scsAsId, record.state['parentId'] as string);
    if (!parent) return;
    const audience = spec.audience(record.resource as R, parent);
    // Decided again as it goes out (it may have waited days): one its AS may no longer send fails,
    // unsent; with no answer it stays scheduled and is tried again, as a broadcast not reported is.
    const decision = await stillAuthorized(s, spec.api, record);
    if (decision === 'unavailable') throw new Error('authorization unavailable: the broadcast waits');
    const delivered = decision === 'allowed' && (await spec.bmsc.broadcast(audience.externalGroupId, audience.notAfterMs));
    const mark = (from: DeliveryState['status'], to: DeliveryState['status']) => {
      let claimed = false;
      const claim = s.store.update(store, scsAsId, id, r => {
        claimed = r?.state['attempt'] === attempt && r.state['status'] === from;
        return claimed ? { ...r!, state: { ...r!.state, status: to, delivered }, updatedAtMs: s.now() } : undefined;
      });
      return claim.then(() => claimed);
    };
    if (!(await mark('scheduled', 'broadcast'))) return;
    try {
      await s.network.emit({ capability: spec.api, type: DELIVERY_STATUS_EVENT, payload: { scsAsId, deliveryId: id, attempt, delivered } });
    } catch (err) {
      // Not reported: scheduled again, so a retry broadcasts and reports it.
      await mark('broadcast', 'scheduled');
      throw err;
    }
  }

  function schedule(scsAsId: string, id: string, state: DeliveryState): void {
    spec.bmsc.schedule(timerKey(scsAsId, id), state.broadcastAtMs, () => broadcast(scsAsId, id, state.attempt));
  }

  const scheduled = (attempt: number, body: R): DeliveryState => ({ attempt, status: 'scheduled', broadcastAtMs: spec.bmsc.broadcastTime(timeOf(body.messageDeliveryStartTime)) });

  const deliveries = resourceLifecycle<R, DeliveryState>({
    services: s,
    api: spec.api,
    schemaFile: spec.schemaFile,
    collection: spec.collection,
    idParam: 'transactionId',
    store,
    parent: { idParam: spec.parent.idParam, store: spec.parent.store },
    schemas: { resource: spec.schemas.resource, ...(spec.schemas.list ? { list: spec.schemas.list } : {}) },
    patch: { kind: 'merge-patch', schema: spec.schemas.patch, answer: 200 },
    scefMembers: SCEF_MEMBERS,
    reach: spec.reach,
    validate,
    check,
    network: {
      create: async (body, call) => {
        const state = scheduled(1, body);
        schedule(call.req.scsAsId, call.id, state);
        return { state, undo: async () => spec.bmsc.cancel(timerKey(call.req.scsAsId, call.id)) };
      },
      update: async (next, held) => {
        if (contentOf(next) === contentOf(held.resource)) return { state: held.state };
        const state = scheduled(held.state.attempt + 1, next);
        schedule(held.record.scsAsId, held.record.id, state);
        return { state };
      },
      delete: async held => spec.bmsc.cancel(timerKey(held.record.scsAsId, held.record.id)),
    },
  });

  async function onNetworkEvent(event: NetworkEvent): Promise<PendingNotification[]> {
    if (event.kind !== 'capability' || event.capability !== spec.api || event.type !== DELIVERY_STATUS_EVENT) return [];
    const { scsAsId, deliveryId, attempt, delivered } = event.payload;
    if (typeof delivered !== 'boolean') return [];
    const match = deliveries.all().find(d => d.record.scsAsId === scsAsId && d.record.id === deliveryId && d.state.attempt === attempt);
    if (!match) return [];
    return [
      {
        // Grants are per API: the notification is authorized as the API's, not as its store's.
        record: { ...match.record, api: spec.api },
        body: { transaction: match.resource.self, deliveryTriggerStatus: delivered },
        dataCategories: [GROUP_MESSAGE_CATEGORY],
        schema: spec.schemas.notification,
      },
    ];
  }

  const pending = (h: Held<R, DeliveryState>): boolean => h.state.status === 'scheduled';

  return {
    routes: deliveries.routes,
    onNetworkEvent,
    removeUnder: async parent => {
      for (const r of await s.store.list(store, parent.scsAsId)) {
        if (r.state['parentId'] !== parent.id) continue;
        spec.bmsc.cancel(timerKey(r.scsAsId, r.id));
        await s.store.delete(store, r.scsAsId, r.id);
      }
    },
    start: async () => {
      for (const h of deliveries.all().filter(pending)) schedule(h.record.scsAsId, h.record.id, h.state);
    },
    stop: async () => spec.bmsc.stop(),
  };
}
