import type { components } from '@aese/t8-openapi/reporting-network-status';
import { checkNotificationDestination } from '../../domain/notification-destination.js';
import { invalidParam } from '../../domain/problem.js';
import type { StoredResource } from '../../domain/resource-store.js';
import type { NetworkEvent } from '../../network/network-adapter.js';
import type { ApiModule, ModuleDefinition, ModuleServices, PendingNotification, Reach } from '../registry.js';
import { resourceLifecycle } from '../toolkit/lifecycle.js';
import { areaSpecOf, LOCATION_AREA_CAUSES, plmnOf } from './location-area.js';
import { simulatedRcaf } from './network.js';
import type { CongestionReporting, SimulatedRcafOptions } from './network.js';
import { CONGESTION_TYPES, reportOf, worthReporting } from './reports.js';

export const REPORTING_NETWORK_STATUS_API = '3gpp-net-stat-report';
/** The one data category: the congestion of areas of the network, about no UE in particular. */
export const NETWORK_STATUS_CATEGORY = 'network-status';
/** ProblemDetails causes of this API, beside the shared ones. */
export const NETWORK_STATUS_CAUSES = { ...LOCATION_AREA_CAUSES } as const;
/** How long the radio network takes to answer a new subscription with the area's status. */
export const DEFAULT_INITIAL_REPORT_DELAY_MS = 100;

type Subscription = components['schemas']['NetworkStatusReportingSubscription'];

const SCHEMAS = {
  subscription: 'NetworkStatusReportingSubscription',
  patch: 'NetStatusRepSubsPatch',
  notification: 'NetworkStatusReportingNotification',
  list: '#/paths/~1{scsAsId}~1subscriptions/get/responses/200/content/application~1json/schema',
} as const;
/** The capability event that the radio network's first answer to a subscription arrived. */
const INITIAL_REPORT = 'initial-report';
/** Members whose change makes a new request to the radio network (and a new first report). */
const REQUESTED = ['locationArea', 'thresholdValues', 'thresholdTypes'] as const;

interface NetworkStatusState {
  /** The area's level last seen; null until the first report. */
  readonly lastLevel: number | null;
}

export interface ReportingNetworkStatusOptions extends SimulatedRcafOptions {
  /** The radio network's congestion reporting; the simulation over `services.network` unless given. */
  readonly congestion?: CongestionReporting;
  readonly initialReportDelayMs?: number;
}

/** A subscription with a `timeDuration` reports until then; one without reports once (TS 29.122 clause 4.4.8). */
const continuous = (sub: Subscription): boolean => sub.timeDuration !== undefined;

/**
 * 3gpp-net-stat-report (TS 29.122 clauses 4.4.8 and 5.9): an AS subscribes to the congestion of
 * a location area (tracking areas, cells, eNodeBs). The radio network answers with the area's
 * level first; a continuous subscription (`timeDuration`) then hears of the changes it asked for
 * (any, or crossing its `thresholdValues` / `thresholdTypes`) until that time. Reports are
 * NetworkStatusReportingNotifications, in abstracted values (`nsiType`) when the AS asked in
 * those. The API names places, not UEs: its requests carry the `network-status` category and no
 * UE target.
 */
export function createReportingNetworkStatusModule(s: ModuleServices, options: ReportingNetworkStatusOptions = {}): ApiModule {
  const ran = options.congestion ?? simulatedRcaf(s.network, options);
  const delayMs = options.initialReportDelayMs ?? DEFAULT_INITIAL_REPORT_DELAY_MS;
  /** Pending first answers of the radio network, by subscription. */
  const pending = new Map<string, NodeJS.Timeout>();

  const reachOf = (): Reach => ({ dataCategories: [NETWORK_STATUS_CATEGORY], targets: [] });
  const inFuture = (time: string): boolean => Date.parse(time) > s.now();

  function validate(body: Subscription): void {
    areaSpecOf(body.locationArea);
    (body.thresholdTypes ?? []).forEach((t, i) => {
      if (!(CONGESTION_TYPES as readonly string[]).includes(t)) throw invalidParam(`/thresholdTypes/${i}`, `is not one of ${CONGESTION_TYPES.join(', ')}`);
    });
    if (body.timeDuration !== undefined && !inFuture(body.timeDuration)) throw invalidParam('/timeDuration', 'is not in the future');
  }

  /** The area is in a network this SCEF reports on, and notifications may go where asked: once authorized. */
  async function check(body: Subscription): Promise<void> {
    const area = areaSpecOf(body.locationArea);
    const { plmns } = await ran.current();
    const unknown = (member: string, ids: readonly string[], kind: 'tai' | 'cgi'): void => {
      const i = ids.findIndex(id => !plmns.has(plmnOf(id, kind)));
      if (i >= 0) throw invalidParam(`/locationArea/${member}/${i}`, 'is not in a network this SCEF reports on', LOCATION_AREA_CAUSES.unknownLocationArea);
    };
    unknown('trackingAreaIds', area.trackingAreas, 'tai');
    unknown('cellIds', area.cells, 'cgi');
    await checkNotificationDestination(body.notificationDestination, s.destinations);
  }

  const keyOf = (scsAsId: string, id: string): string => `${scsAsId}\n${id}`;
  const cancel = (key: string): void => {
    clearTimeout(pending.get(key));
    pending.delete(key);
  };
  /** Asks the radio network for the area's status; its answer comes back as a capability event. */
  function requestInitialReport(scsAsId: string, subscriptionId: string): () => Promise<void> {
    const key = keyOf(scsAsId, subscriptionId);
    cancel(key);
    const timer = setTimeout(() => {
      pending.delete(key);
      // An answer that cannot be sent is lost like one the radio network never gave; the next change is reported.
      s.network.emit({ capability: REPORTING_NETWORK_STATUS_API, type: INITIAL_REPORT, payload: { scsAsId, subscriptionId } }).catch(() => undefined);
    }, delayMs);
    timer.unref();
    pending.set(key, timer);
    return async () => cancel(key);
  }

  const subscriptions = resourceLifecycle<Subscription, NetworkStatusState>({
    services: s,
    api: REPORTING_NETWORK_STATUS_API,
    schemaFile: 'reporting-network-status',
    collection: '/{scsAsId}/subscriptions',
    idParam: 'subscriptionId',
    schemas: { resource: SCHEMAS.subscription, list: SCHEMAS.list },
    patch: { kind: 'merge-patch', schema: SCHEMAS.patch, answer: 200 },
    reach: reachOf,
    validate,
    check,
    network: {
      create: async (_body, call) => ({ state: { lastLevel: null }, undo: requestInitialReport(call.req.scsAsId, call.id) }),
      update: async (next, held) => {
        if (REQUESTED.every(m => JSON.stringify(next[m]) === JSON.stringify(held.resource[m]))) return { state: held.state };
        requestInitialReport(held.record.scsAsId, held.record.id);
        return { state: { lastLevel: null } };
      },
      delete: async held => cancel(keyOf(held.record.scsAsId, held.record.id)),
    },
  });

  /**
   * Reports the current level of each subscription's area where it is due: always on the radio
   * network's first answer (`initial`), otherwise when a continuous subscription asked for the
   * change. The last level is moved in one step with other replicas, so a change is reported once.
   */
  async function reportLevels(records: readonly StoredResource[], initial: boolean): Promise<PendingNotification[]> {
    const view = await ran.current();
    const out: PendingNotification[] = [];
    for (const record of records) {
      const sub = subscriptions.held(record).resource;
      if (sub.timeDuration !== undefined && !inFuture(sub.timeDuration)) {
        await s.store.delete(record.api, record.scsAsId, record.id);
        continue;
      }
      const level = view.levelOf(areaSpecOf(sub.locationArea));
      let due: StoredResource | undefined;
      await s.store.update(record.api, record.scsAsId, record.id, current => {
        due = undefined;
        if (!current) return undefined;
        const before = current.state['lastLevel'];
        const latest = current.resource as Subscription;
        if (initial || (typeof before === 'number' && continuous(latest) && worthReporting(latest, before, level))) due = current;
        return before === level ? undefined : { ...current, state: { ...current.state, lastLevel: level }, updatedAtMs: s.now() };
      });
      if (due) out.push({ record: due, body: reportOf(due.resource as Subscription, level), dataCategories: [NETWORK_STATUS_CATEGORY] });
    }
    return out;
  }

  async function onNetworkEvent(event: NetworkEvent): Promise<PendingNotification[]> {
    if (event.kind === 'capability') {
      if (event.capability !== REPORTING_NETWORK_STATUS_API || event.type !== INITIAL_REPORT) return [];
      const { scsAsId, subscriptionId } = event.payload;
      if (typeof scsAsId !== 'string' || typeof subscriptionId !== 'string') return [];
      const record = await s.store.get(REPORTING_NETWORK_STATUS_API, scsAsId, subscriptionId);
      return record ? reportLevels([record], true) : [];
    }
    // Congestion is load: it moves when UEs move, attach or detach, or leave for another network.
    if (event.kind !== 'location' && event.kind !== 'reachability' && event.kind !== 'roaming') return [];
    const watched = subscriptions
      .all()
      .filter(h => continuous(h.resource))
      .map(h => h.record);
    return watched.length === 0 ? [] : reportLevels(watched, false);
  }

  return {
    name: REPORTING_NETWORK_STATUS_API,
    version: 'v1',
    scope: REPORTING_NETWORK_STATUS_API,
    dataCategories: [NETWORK_STATUS_CATEGORY],
    schemaFile: 'reporting-network-status',
    schemas: [SCHEMAS.subscription, SCHEMAS.patch, SCHEMAS.notification],
    notificationSchema: SCHEMAS.notification,
    reach: async () => reachOf(),
    routes: subscriptions.routes,
    onNetworkEvent,
    // A one-time subscription ends with its one report.
    reportLimit: record => (continuous(subscriptions.held(record).resource) ? undefined : 1),
    stop: async () => {
      for (const key of [...pending.keys()]) cancel(key);
    },
  };
}

/** The ReportingNetworkStatus module, as registered. */
export const reportingNetworkStatusModule: ModuleDefinition = {
  name: REPORTING_NETWORK_STATUS_API,
  causes: NETWORK_STATUS_CAUSES,
  create: s => createReportingNetworkStatusModule(s),
};
