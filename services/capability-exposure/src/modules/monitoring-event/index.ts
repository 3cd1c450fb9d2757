import type { components } from '@aese/t8-openapi/monitoring-event';
import { checkNotificationDestination } from '../../domain/notification-destination.js';
import { invalidParam, PROBLEM_CAUSES } from '../../domain/problem.js';
import type { NetworkEvent, UeView } from '../../network/network-adapter.js';
import type { ApiModule, ModuleDefinition, ModuleServices, PendingNotification, Reach } from '../registry.js';
import { resourceLifecycle } from '../toolkit/lifecycle.js';
import type { ImmediateAnswer } from '../toolkit/lifecycle.js';
import { assertIdentifiersSyntax, identifierTargets, resolveIdentifier } from '../ue-targets.js';
import type { IdentifiedBy, ResolvedUes } from '../ue-targets.js';
import { isoTime, isSupportedType, locationInfo, LOSS_REASON_MAX_DETECTION_TIME_EXPIRED, MONITORING_CATEGORIES, reportIdentity } from './reports.js';
import type { MonitoringType } from './reports.js';

export const MONITORING_EVENT_API = '3gpp-monitoring-event';
/** ProblemDetails causes of this API, beside the shared ones. */
export const MONITORING_CAUSES = {
  unsupportedMonitoringType: 'UNSUPPORTED_MONITORING_TYPE',
} as const;

type Subscription = components['schemas']['MonitoringEventSubscription'];
/** A report as built here; the notification and response schemas check it. */
type Report = Record<string, unknown>;

const P = '#/paths/~1{scsAsId}~1subscriptions';
const PI = '#/paths/~1{scsAsId}~1subscriptions~1{subscriptionId}';
const SCHEMAS = {
  subscription: 'MonitoringEventSubscription',
  report: 'MonitoringEventReport',
  reports: 'MonitoringEventReports',
  notification: 'MonitoringNotification',
  list: `${P}/get/responses/200/content/application~1json/schema`,
  immediate: `${P}/post/responses/200/content/application~1json/schema`,
  patch: `${PI}/patch/requestBody/content/application~1json-patch+json/schema`,
} as const;

/** Request members naming UEs, and the target kind each one is. */
const IDENTIFIERS = {
  externalId: 'externalId',
  msisdn: 'msisdn',
  externalGroupId: 'externalGroupId',
  addedExternalIds: 'externalId',
  addedMsisdns: 'msisdn',
} as const;
/** Members only the SCEF writes: an AS that sends them is refused. */
const SCEF_MEMBERS = ['monitoringEventReport', 'addnMonEventReports'] as const;

interface MonitoringState {
  readonly identifiedBy: IdentifiedBy;
  readonly ueHandles: readonly string[];
  readonly reportsSent: number;
}

function typesOf(body: Subscription): MonitoringType[] {
  return [body.monitoringType, ...(body.addnMonTypes ?? [])].filter(isSupportedType);
}

function mainIdentifier(body: Subscription): { kind: 'externalId' | 'msisdn' | 'externalGroupId'; value: string } | undefined {
  const present = (['externalId', 'msisdn', 'externalGroupId'] as const).filter(k => typeof body[k] === 'string');
  if (present.length !== 1) return undefined;
  return { kind: present[0], value: body[present[0]]! };
}

/**
 * 3gpp-monitoring-event (TS 29.122 clause 5.3): LOCATION_REPORTING, UE_REACHABILITY,
 * LOSS_OF_CONNECTIVITY and ROAMING_STATUS for one UE (externalId or msisdn) or an external
 * group. A one-time request (maximumNumberOfReports = 1) that the network can answer now gets
 * 200 with the report; everything else becomes a subscription (201 + Location) whose reports
 * arrive as MonitoringNotifications.
 */
function createMonitoringEventModule(s: ModuleServices): ApiModule {
  function validate(body: Subscription): void {
    if (!isSupportedType(body.monitoringType)) throw invalidParam('/monitoringType', 'monitoring type not supported', MONITORING_CAUSES.unsupportedMonitoringType);
    (body.addnMonTypes ?? []).forEach((t, i) => {
      if (!isSupportedType(t)) throw invalidParam(`/addnMonTypes/${i}`, 'monitoring type not supported', MONITORING_CAUSES.unsupportedMonitoringType);
    });
    if (!mainIdentifier(body)) {
      throw invalidParam('/externalId', 'exactly one of externalId, msisdn or externalGroupId is required', PROBLEM_CAUSES.ueIdentifierRequired);
    }
    assertIdentifiersSyntax(body, IDENTIFIERS);
  }

  /** Resolves the destinations (DNS): only once the request is authorized. */
  async function checkDestinations(body: Subscription): Promise<void> {
    await checkNotificationDestination(body.notificationDestination, s.destinations);
    if (typeof body.revocationNotifUri === 'string') await checkNotificationDestination(body.revocationNotifUri, s.destinations, '/revocationNotifUri');
  }

  async function resolve(body: Subscription) {
    const id = mainIdentifier(body)!;
    const resolved = await resolveIdentifier(s.network, id.kind, id.value);
    if (!resolved || resolved.ues.length === 0) throw invalidParam(`/${id.kind}`, 'is not known to the network', PROBLEM_CAUSES.unknownUe);
    return resolved;
  }

  const reachOf = (body: Subscription): Reach => ({
    dataCategories: [...new Set(typesOf(body).map(t => MONITORING_CATEGORIES[t]))].sort(),
    targets: identifierTargets(body, IDENTIFIERS),
  });

  async function reportFor(type: MonitoringType, ue: UeView, by: IdentifiedBy, body: Subscription): Promise<Report | undefined> {
    const now = s.now();
    const who = reportIdentity(ue, by);
    switch (type) {
      case 'LOCATION_REPORTING':
        return { ...who, monitoringType: type, locationInfo: locationInfo(await s.network.locate(ue), now), eventTime: isoTime(now) };
      case 'ROAMING_STATUS': {
        const r = await s.network.roaming(ue);
        return { ...who, monitoringType: type, roamingStatus: r.roaming, ...(body.plmnIndication === true ? { plmnId: { ...r.servingPlmn } } : {}), eventTime: isoTime(now) };
      }
      case 'UE_REACHABILITY': {
        const r = await s.network.reachability(ue);
        return r.reachable ? { ...who, monitoringType: type, reachabilityType: body.reachabilityType ?? 'DATA', eventTime: isoTime(now) } : undefined;
      }
      case 'LOSS_OF_CONNECTIVITY':
        return undefined;
    }
  }

  /** A one-time request (one report, no expiry, one type) the network can answer now: 200 with the report(s). */
  async function immediate(body: Subscription): Promise<ImmediateAnswer | undefined> {
    if (body.maximumNumberOfReports !== 1 || body.monitorExpireTime !== undefined || typesOf(body).length !== 1) return undefined;
    const resolved = await resolve(body);
    const reports: Report[] = [];
    for (const ue of resolved.ues) {
      const r = await reportFor(body.monitoringType as MonitoringType, ue, resolved.identifiedBy, body);
      if (r) reports.push(r);
    }
    if (reports.length !== resolved.ues.length) return undefined;
    const answer = resolved.identifiedBy === 'externalGroupId' ? { monitoringEventReports: reports } : reports[0];
    return { status: 200, body: answer, dataCategories: reachOf(body).dataCategories };
  }

  async function stateOf(body: Subscription): Promise<{ resolved: ResolvedUes; state: Omit<MonitoringState, 'reportsSent'> }> {
    const resolved = await resolve(body);
    return { resolved, state: { identifiedBy: resolved.identifiedBy, ueHandles: resolved.ues.map(u => u.handle) } };
  }

  const subscriptions = resourceLifecycle<Subscription, MonitoringState>({
    services: s,
    api: MONITORING_EVENT_API,
    schemaFile: 'monitoring-event',
    collection: '/{scsAsId}/subscriptions',
    idParam: 'subscriptionId',
    schemas: { resource: SCHEMAS.subscription, list: SCHEMAS.list, createAnswers: { 200: SCHEMAS.immediate } },
    patch: { kind: 'json-patch', schema: SCHEMAS.patch, answer: 204 },
    scefMembers: SCEF_MEMBERS,
    reach: reachOf,
    validate,
    check: checkDestinations,
    immediate,
    network: {
      create: async body => {
        const { resolved, state } = await stateOf(body);
        let set: Partial<Subscription> | undefined;
        if (body.immediateRep === true && resolved.ues.length === 1) {
          const r = await reportFor(body.monitoringType as MonitoringType, resolved.ues[0], resolved.identifiedBy, body);
          if (r) set = { monitoringEventReport: r as Subscription['monitoringEventReport'] };
        }
        return { state: { ...state, reportsSent: 0 }, ...(set ? { set } : {}) };
      },
      // The report count and the reports in flight (the notification engine's) carry over.
      update: async (next, held) => ({ state: { ...held.state, ...(await stateOf(next)).state } }),
    },
  });

  function eventType(e: NetworkEvent): MonitoringType | undefined {
    if (e.kind === 'location') return 'LOCATION_REPORTING';
    if (e.kind === 'roaming') return 'ROAMING_STATUS';
    if (e.kind === 'reachability') return e.reachable ? 'UE_REACHABILITY' : 'LOSS_OF_CONNECTIVITY';
    return undefined;
  }

  async function onNetworkEvent(event: NetworkEvent): Promise<PendingNotification[]> {
    const type = eventType(event);
    if (!type || (event.kind !== 'location' && event.kind !== 'roaming' && event.kind !== 'reachability')) return [];
    const out: PendingNotification[] = [];
    for (const { record, resource: body, state } of subscriptions.all()) {
      if (!typesOf(body).includes(type) || !state.ueHandles.includes(event.ue.handle)) continue;
      if (typeof body.monitorExpireTime === 'string' && Date.parse(body.monitorExpireTime) <= s.now()) {
        await s.store.delete(record.api, record.scsAsId, record.id);
        continue;
      }
      const who = reportIdentity(event.ue, state.identifiedBy);
      const at = isoTime(event.atMs);
      let report: Report;
      if (event.kind === 'location') report = { ...who, monitoringType: type, locationInfo: locationInfo(event.location, s.now()), eventTime: at };
      else if (event.kind === 'roaming')
        report = {
          ...who,
          monitoringType: type,
          roamingStatus: event.roaming.roaming,
          ...(body.plmnIndication === true ? { plmnId: { ...event.roaming.servingPlmn } } : {}),
          eventTime: at,
        };
      else if (type === 'UE_REACHABILITY') report = { ...who, monitoringType: type, reachabilityType: body.reachabilityType ?? 'DATA', eventTime: at };
      else report = { ...who, monitoringType: type, lossOfConnectReason: LOSS_REASON_MAX_DETECTION_TIME_EXPIRED, eventTime: at };
      out.push({ record, body: { subscription: body.self, monitoringEventReports: [report] }, dataCategories: [MONITORING_CATEGORIES[type]] });
    }
    return out;
  }

  return {
    name: MONITORING_EVENT_API,
    version: 'v1',
    scope: MONITORING_EVENT_API,
    dataCategories: Object.values(MONITORING_CATEGORIES),
    schemaFile: 'monitoring-event',
    schemas: Object.values(SCHEMAS).filter(x => !x.startsWith('#')),
    notificationSchema: SCHEMAS.notification,
    reach: async body => reachOf(body as Subscription),
    routes: subscriptions.routes,
    onNetworkEvent,
    reportLimit: record => subscriptions.held(record).resource.maximumNumberOfReports,
  };
}

/** The MonitoringEvent module, as registered. */
export const monitoringEventModule: ModuleDefinition = { name: MONITORING_EVENT_API, causes: MONITORING_CAUSES, create: createMonitoringEventModule };
