import { T8Problem, PROBLEM_CAUSES, invalidParam } from '../../domain/problem.js';
import { applyJsonPatch } from '../../domain/patch.js';
import type { PatchOperation } from '../../domain/patch.js';
import { checkNotificationDestination } from '../../domain/notification-destination.js';
import { newStoredResource } from '../../domain/resource-store.js';
import type { StoredResource } from '../../domain/resource-store.js';
import type { NetworkEvent, UeView } from '../../network/network-adapter.js';
import type { ApiModule, ModuleDefinition, ModuleServices, PendingNotification, RouteRequest, RouteResult } from '../registry.js';
import { assertIdentifiersSyntax, identifierTargets, resolveIdentifier } from '../ue-targets.js';
import type { IdentifiedBy } from '../ue-targets.js';
import { isoTime, isSupportedType, locationInfo, LOSS_REASON_MAX_DETECTION_TIME_EXPIRED, MONITORING_CATEGORIES, reportIdentity } from './reports.js';
import type { MonitoringType } from './reports.js';

export const MONITORING_EVENT_API = '3gpp-monitoring-event';

type Body = Record<string, unknown>;

const COLLECTION = '/{scsAsId}/subscriptions';
const ITEM = '/{scsAsId}/subscriptions/{subscriptionId}';
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

function typesOf(body: Body): MonitoringType[] {
  const types = [body['monitoringType'], ...((body['addnMonTypes'] as unknown[] | undefined) ?? [])];
  return types.filter(isSupportedType);
}

function mainIdentifier(body: Body): { kind: 'externalId' | 'msisdn' | 'externalGroupId'; value: string } | undefined {
  const present = (['externalId', 'msisdn', 'externalGroupId'] as const).filter(k => typeof body[k] === 'string');
  if (present.length !== 1) return undefined;
  return { kind: present[0], value: body[present[0]] as string };
}

function stripSelf(resource: Body): Body {
  const { self: _self, ...rest } = resource;
  return rest;
}

/**
 * 3gpp-monitoring-event (TS 29.122 clause 5.3): LOCATION_REPORTING, UE_REACHABILITY,
 * LOSS_OF_CONNECTIVITY and ROAMING_STATUS for one UE (externalId or msisdn) or an external
 * group. A one-time request (maximumNumberOfReports = 1) that the network can answer now gets
 * 200 with the report; everything else becomes a subscription (201 + Location) whose reports
 * arrive as MonitoringNotifications.
 */
function createMonitoringEventModule(s: ModuleServices): ApiModule {
  const module: ApiModule = {
    name: MONITORING_EVENT_API,
    version: 'v1',
    scope: MONITORING_EVENT_API,
    dataCategories: Object.values(MONITORING_CATEGORIES),
    schemaFile: 'monitoring-event',
    schemas: Object.values(SCHEMAS).filter(x => !x.startsWith('#')),
    notificationSchema: SCHEMAS.notification,
    reach: async body => {
      const b = body as Body;
      return { dataCategories: [...new Set(typesOf(b).map(t => MONITORING_CATEGORIES[t]))].sort(), targets: identifierTargets(b, IDENTIFIERS) };
    },
    validate: (body, req) => validate(body as Body, req),
    check: async body => checkDestinations(body as Body),
    routes: [
      { method: 'GET', path: COLLECTION, operation: 'read', target: 'collection', responses: { 200: SCHEMAS.list }, handler: list },
      {
        method: 'POST',
        path: COLLECTION,
        operation: 'create',
        target: 'collection',
        request: { contentType: 'application/json', schema: SCHEMAS.subscription },
        responses: { 200: SCHEMAS.immediate, 201: SCHEMAS.subscription },
        handler: create,
      },
      { method: 'GET', path: ITEM, operation: 'read', target: 'item', responses: { 200: SCHEMAS.subscription }, handler: read },
      {
        method: 'PUT',
        path: ITEM,
        operation: 'update',
        target: 'item',
        request: { contentType: 'application/json', schema: SCHEMAS.subscription },
        responses: { 200: SCHEMAS.subscription },
        handler: replace,
      },
      {
        method: 'PATCH',
        path: ITEM,
        operation: 'update',
        target: 'item',
        request: { contentType: 'application/json-patch+json', schema: SCHEMAS.patch },
        responses: { 204: undefined },
        document: patchedResource,
        handler: patch,
      },
      { method: 'DELETE', path: ITEM, operation: 'delete', target: 'item', responses: { 204: undefined }, handler: remove },
    ],
    onNetworkEvent: event => onNetworkEvent(event),
    reportLimit: record => {
      const max = record.resource['maximumNumberOfReports'];
      return typeof max === 'number' ? max : undefined;
    },
  };

  function validate(body: Body, req: RouteRequest): void {
    if (!isSupportedType(body['monitoringType'])) throw invalidParam('/monitoringType', 'monitoring type not supported', PROBLEM_CAUSES.unsupportedMonitoringType);
    const extra = (body['addnMonTypes'] as unknown[] | undefined) ?? [];
    extra.forEach((t, i) => {
      if (!isSupportedType(t)) throw invalidParam(`/addnMonTypes/${i}`, 'monitoring type not supported', PROBLEM_CAUSES.unsupportedMonitoringType);
    });
    if (!mainIdentifier(body)) {
      throw invalidParam('/externalId', 'exactly one of externalId, msisdn or externalGroupId is required', PROBLEM_CAUSES.ueIdentifierRequired);
    }
    assertIdentifiersSyntax(body, IDENTIFIERS);
    for (const m of SCEF_MEMBERS) if (m in body) throw invalidParam(`/${m}`, 'is written by the SCEF only', PROBLEM_CAUSES.invalidParameter);
    if ('self' in body) {
      // A self link that names another resource (or another AS) is smuggling, not a no-op.
      if (!req.existing || body['self'] !== req.resourceUri(req.existing.id)) throw invalidParam('/self', 'does not match the resource', PROBLEM_CAUSES.idMismatch);
    }
  }

  /** Resolves the destinations (DNS): only once the request is authorized. */
  async function checkDestinations(body: Body): Promise<void> {
    await checkNotificationDestination(body['notificationDestination'] as string, s.destinations);
    if (typeof body['revocationNotifUri'] === 'string') {
      await checkNotificationDestination(body['revocationNotifUri'], s.destinations, '/revocationNotifUri');
    }
  }

  async function resolve(body: Body) {
    const id = mainIdentifier(body)!;
    const resolved = await resolveIdentifier(s.network, id.kind, id.value);
    if (!resolved || resolved.ues.length === 0) throw invalidParam(`/${id.kind}`, 'is not known to the network', PROBLEM_CAUSES.unknownUe);
    return resolved;
  }

  async function reportFor(type: MonitoringType, ue: UeView, by: IdentifiedBy, body: Body): Promise<Body | undefined> {
    const now = s.now();
    const who = reportIdentity(ue, by);
    switch (type) {
      case 'LOCATION_REPORTING':
        return { ...who, monitoringType: type, locationInfo: locationInfo(await s.network.locate(ue), now), eventTime: isoTime(now) };
      case 'ROAMING_STATUS': {
        const r = await s.network.roaming(ue);
        return { ...who, monitoringType: type, roamingStatus: r.roaming, ...(body['plmnIndication'] === true ? { plmnId: { ...r.servingPlmn } } : {}), eventTime: isoTime(now) };
      }
      case 'UE_REACHABILITY': {
        const r = await s.network.reachability(ue);
        return r.reachable ? { ...who, monitoringType: type, reachabilityType: body['reachabilityType'] ?? 'DATA', eventTime: isoTime(now) } : undefined;
      }
      case 'LOSS_OF_CONNECTIVITY':
        return undefined;
    }
  }

  async function list(req: RouteRequest): Promise<RouteResult> {
    return { status: 200, body: req.visible.map(r => r.resource), dataCategories: [...new Set(req.visible.flatMap(r => r.dataCategories))] };
  }

  async function read(req: RouteRequest): Promise<RouteResult> {
    return { status: 200, body: req.existing!.resource, dataCategories: req.existing!.dataCategories };
  }

  async function create(req: RouteRequest): Promise<RouteResult> {
    const body = req.body as Body;
    const resolved = await resolve(body);
    const type = body['monitoringType'] as MonitoringType;
    const reach = await module.reach(body);
    const oneTime = body['maximumNumberOfReports'] === 1 && body['monitorExpireTime'] === undefined && typesOf(body).length === 1;
    if (oneTime) {
      const reports: Body[] = [];
      for (const ue of resolved.ues) {
        const r = await reportFor(type, ue, resolved.identifiedBy, body);
        if (r) reports.push(r);
      }
      if (reports.length === resolved.ues.length) {
        const answer = resolved.identifiedBy === 'externalGroupId' ? { monitoringEventReports: reports } : reports[0];
        return { status: 200, body: answer, dataCategories: reach.dataCategories };
      }
    }
    const id = s.newId();
    const now = s.now();
    const resource: Body = { ...body, self: req.resourceUri(id) };
    if (body['immediateRep'] === true && resolved.ues.length === 1) {
      const r = await reportFor(type, resolved.ues[0], resolved.identifiedBy, body);
      if (r) resource['monitoringEventReport'] = r;
    }
    const state: MonitoringState = { identifiedBy: resolved.identifiedBy, ueHandles: resolved.ues.map(u => u.handle), reportsSent: 0 };
    const record = newStoredResource(MONITORING_EVENT_API, req.scsAsId, id, resource, reach, state, now);
    await s.store.put(record);
    return {
      status: 201,
      body: resource,
      location: resource['self'] as string,
      dataCategories: reach.dataCategories,
      ...(body['requestTestNotification'] === true ? { after: () => s.sendTestNotification(record) } : {}),
    };
  }

  async function write(req: RouteRequest, next: Body): Promise<StoredResource> {
    const existing = req.existing!;
    const resolved = await resolve(next);
    const reach = await module.reach(next);
    const resource: Body = { ...stripSelf(next), self: req.resourceUri(existing.id) };
    const state: MonitoringState = {
      identifiedBy: resolved.identifiedBy,
      ueHandles: resolved.ues.map(u => u.handle),
      reportsSent: (existing.state['reportsSent'] as number | undefined) ?? 0,
    };
    // The report count and the reports in flight (the notification engine's) carry over.
    const record: StoredResource = {
      ...existing,
      resource,
      targets: reach.targets,
      dataCategories: reach.dataCategories,
      updatedAtMs: s.now(),
      state: { ...existing.state, ...state },
    };
    await s.store.put(record);
    return record;
  }

  async function replace(req: RouteRequest): Promise<RouteResult> {
    const record = await write(req, req.body as Body);
    return { status: 200, body: record.resource, dataCategories: record.dataCategories };
  }

  function patchedResource(req: RouteRequest): Body {
    const ops = req.body as PatchOperation[];
    ops.forEach((o, i) => {
      if (o.path === '/self' || o.path.startsWith('/self/') || o.from === '/self') throw invalidParam(`/${i}/path`, 'the self link cannot be changed', PROBLEM_CAUSES.idMismatch);
    });
    const patched = applyJsonPatch(stripSelf(req.existing!.resource), ops);
    const valid = s.schemas.validator('monitoring-event', SCHEMAS.subscription, 'request');
    if (!valid(patched)) throw new T8Problem(400, PROBLEM_CAUSES.invalidParameter, 'the patched subscription does not match the schema', valid.violations());
    return patched as Body;
  }

  async function patch(req: RouteRequest): Promise<RouteResult> {
    const record = await write(req, req.document as Body);
    return { status: 204, dataCategories: record.dataCategories };
  }

  async function remove(req: RouteRequest): Promise<RouteResult> {
    await s.store.delete(MONITORING_EVENT_API, req.scsAsId, req.existing!.id);
    return { status: 204, dataCategories: [] };
  }

  function eventType(e: NetworkEvent): MonitoringType | undefined {
    if (e.kind === 'location') return 'LOCATION_REPORTING';
    if (e.kind === 'roaming') return 'ROAMING_STATUS';
    if (e.kind === 'reachability') return e.reachable ? 'UE_REACHABILITY' : 'LOSS_OF_CONNECTIVITY';
    return undefined;
  }

  async function onNetworkEvent(event: NetworkEvent): Promise<PendingNotification[]> {
    const type = eventType(event);
    if (!type || event.kind === 'qos') return [];
    const out: PendingNotification[] = [];
    for (const record of s.store.all(MONITORING_EVENT_API)) {
      const body = record.resource;
      const state = record.state as unknown as MonitoringState;
      if (!typesOf(body).includes(type) || !state.ueHandles.includes(event.ue.handle)) continue;
      const expire = body['monitorExpireTime'];
      if (typeof expire === 'string' && Date.parse(expire) <= s.now()) {
        await s.store.delete(record.api, record.scsAsId, record.id);
        continue;
      }
      const who = reportIdentity(event.ue, state.identifiedBy);
      const at = isoTime(event.atMs);
      let report: Body;
      if (event.kind === 'location') report = { ...who, monitoringType: type, locationInfo: locationInfo(event.location, s.now()), eventTime: at };
      else if (event.kind === 'roaming')
        report = {
          ...who,
          monitoringType: type,
          roamingStatus: event.roaming.roaming,
          ...(body['plmnIndication'] === true ? { plmnId: { ...event.roaming.servingPlmn } } : {}),
          eventTime: at,
        };
      else if (type === 'UE_REACHABILITY') report = { ...who, monitoringType: type, reachabilityType: body['reachabilityType'] ?? 'DATA', eventTime: at };
      else report = { ...who, monitoringType: type, lossOfConnectReason: LOSS_REASON_MAX_DETECTION_TIME_EXPIRED, eventTime: at };
      out.push({ record, body: { subscription: body['self'], monitoringEventReports: [report] }, dataCategories: [MONITORING_CATEGORIES[type]] });
    }
    return out;
  }

  return module;
}

/** The MonitoringEvent module, as registered. */
export const monitoringEventModule: ModuleDefinition = { name: MONITORING_EVENT_API, create: createMonitoringEventModule };
