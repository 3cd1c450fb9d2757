import { checkNotificationDestination } from '../../domain/notification-destination.js';
import { applyMergePatch } from '../../domain/patch.js';
import { invalidParam, PROBLEM_CAUSES, T8Problem } from '../../domain/problem.js';
import { newStoredResource } from '../../domain/resource-store.js';
import type { StoredResource } from '../../domain/resource-store.js';
import type { NetworkEvent, UeRef, UeView } from '../../network/network-adapter.js';
import { targetOf } from '@aese/t8-catalog';
import type { ApiModule, ModuleDefinition, ModuleServices, PendingNotification, Reach, RouteRequest, RouteResult } from '../registry.js';
import { addressTarget, assertIdentifierSyntax } from '../ue-targets.js';

export const AS_SESSION_WITH_QOS_API = '3gpp-as-session-with-qos';
/** The one data category of QoS sessions. */
export const QOS_CATEGORY = 'qos';

type Body = Record<string, unknown>;

const COLLECTION = '/{scsAsId}/subscriptions';
const ITEM = '/{scsAsId}/subscriptions/{subscriptionId}';
const SCHEMAS = {
  subscription: 'AsSessionWithQoSSubscription',
  patch: 'AsSessionWithQoSSubscriptionPatch',
  notification: 'UserPlaneNotificationData',
  list: '#/paths/~1{scsAsId}~1subscriptions/get/responses/200/content/application~1json/schema',
} as const;
/** Members identifying the UE; exactly one is required, and it cannot change afterwards. */
const UE_MEMBERS = ['ueIpv4Addr', 'ueIpv6Addr', 'macAddr', 'gpsi'] as const;

interface QosState {
  readonly sessionId: string;
  readonly ueHandle: string;
}

function stripSelf(resource: Body): Body {
  const { self: _self, ...rest } = resource;
  return rest;
}

/** The UE reference of a body: its address, or its GPSI ("msisdn-..." / "extid-..."). */
function ueRefOf(body: Body): UeRef | undefined {
  const present = UE_MEMBERS.filter(m => typeof body[m] === 'string');
  if (present.length !== 1) return undefined;
  const v = body[present[0]] as string;
  switch (present[0]) {
    case 'ueIpv4Addr':
      return { ipv4Addr: v };
    case 'ueIpv6Addr':
      return { ipv6Addr: v };
    case 'macAddr':
      return { macAddr: v };
    default:
      if (v.startsWith('msisdn-')) return { msisdn: v.slice(7) };
      if (v.startsWith('extid-')) return { externalId: v.slice(6) };
      return undefined;
  }
}

/**
 * 3gpp-as-session-with-qos (TS 29.122 clause 5.14): an AS asks for a pre-defined QoS
 * (`qosReference`, `altQoSReferences`) for its session with one UE, named by its address or
 * GPSI; the network keeps a QoS session and the AS is notified of the user-plane events it
 * listed in `events` (QOS_GUARANTEED, QOS_NOT_GUARANTEED, ...) as UserPlaneNotificationData.
 */
function createAsSessionWithQosModule(s: ModuleServices): ApiModule {
  const module: ApiModule = {
    name: AS_SESSION_WITH_QOS_API,
    version: 'v1',
    scope: AS_SESSION_WITH_QOS_API,
    dataCategories: [QOS_CATEGORY],
    schemaFile: 'as-session-with-qos',
    schemas: [SCHEMAS.subscription, SCHEMAS.patch, SCHEMAS.notification],
    notificationSchema: SCHEMAS.notification,
    reach: async body => reachOf(body as Body),
    validate: (body, req) => validate(body as Body, req),
    check: async body => check(body as Body),
    routes: [
      { method: 'GET', path: COLLECTION, operation: 'read', target: 'collection', responses: { 200: SCHEMAS.list }, handler: list },
      {
        method: 'POST',
        path: COLLECTION,
        operation: 'create',
        target: 'collection',
        request: { contentType: 'application/json', schema: SCHEMAS.subscription },
        responses: { 201: SCHEMAS.subscription },
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
        request: { contentType: 'application/merge-patch+json', schema: SCHEMAS.patch },
        responses: { 200: SCHEMAS.subscription },
        document: mergedResource,
        handler: patch,
      },
      { method: 'DELETE', path: ITEM, operation: 'delete', target: 'item', responses: { 204: undefined }, handler: remove },
    ],
    onNetworkEvent: event => onNetworkEvent(event),
    start: async () => {
      // The network may have lost sessions while the SCEF was down (the simulator always has).
      for (const r of s.store.all(AS_SESSION_WITH_QOS_API)) {
        const ue = await findUe(r.resource);
        if (ue) await s.network.restoreQosSession((r.state as unknown as QosState).sessionId, sessionRequest(r.resource, ue));
      }
    },
  };

  async function findUe(body: Body): Promise<UeView | undefined> {
    const ref = ueRefOf(body);
    return ref ? s.network.findUe(ref) : undefined;
  }

  /**
   * Targets: the GPSI as the AS gave it, or the UE its address belongs to (a free address is
   * authorized like an ungranted UE, so answers tell nothing of which addresses are in use).
   */
  async function reachOf(body: Body): Promise<Reach> {
    const targets: string[] = [];
    const ref = ueRefOf(body);
    if (ref?.externalId !== undefined) targets.push(targetOf('externalId', ref.externalId));
    else if (ref?.msisdn !== undefined) targets.push(targetOf('msisdn', ref.msisdn));
    else if (ref) targets.push(await addressTarget(s.network, ref));
    if (typeof body['extGroupId'] === 'string') targets.push(targetOf('externalGroupId', body['extGroupId']));
    return { dataCategories: [QOS_CATEGORY], targets };
  }

  function validate(body: Body, req: RouteRequest): void {
    const ref = ueRefOf(body);
    if (!ref) throw invalidParam('/ueIpv4Addr', 'exactly one of ueIpv4Addr, ueIpv6Addr, macAddr or gpsi (msisdn-/extid-) is required', PROBLEM_CAUSES.ueIdentifierRequired);
    if (ref.externalId !== undefined) assertIdentifierSyntax('/gpsi', 'externalId', ref.externalId);
    if (ref.msisdn !== undefined) assertIdentifierSyntax('/gpsi', 'msisdn', ref.msisdn);
    if ('extGroupId' in body) throw invalidParam('/extGroupId', 'group QoS sessions are not supported', PROBLEM_CAUSES.invalidParameter);
    if (req.existing) {
      for (const m of UE_MEMBERS) {
        if (body[m] !== req.existing.resource[m]) throw invalidParam(`/${m}`, 'the UE of a session cannot change', PROBLEM_CAUSES.ueIdentifierImmutable);
      }
    }
    if ('self' in body && (!req.existing || body['self'] !== req.resourceUri(req.existing.id))) {
      throw invalidParam('/self', 'does not match the resource', PROBLEM_CAUSES.idMismatch);
    }
    if (typeof body['qosReference'] !== 'string') throw invalidParam('/qosReference', 'is required', PROBLEM_CAUSES.invalidParameter);
  }

  /** What the network offers and where notifications go (DNS): only once the request is authorized. */
  async function check(body: Body): Promise<void> {
    const known = s.network.qosReferences();
    if (!known.includes(body['qosReference'] as string)) throw invalidParam('/qosReference', 'is not a QoS reference of this network', PROBLEM_CAUSES.invalidParameter);
    ((body['altQoSReferences'] as unknown[] | undefined) ?? []).forEach((r, i) => {
      if (typeof r !== 'string' || !known.includes(r)) throw invalidParam(`/altQoSReferences/${i}`, 'is not a QoS reference of this network', PROBLEM_CAUSES.invalidParameter);
    });
    await checkNotificationDestination(body['notificationDestination'] as string, s.destinations);
  }

  function sessionRequest(body: Body, ue: UeView) {
    return { ue, qosReference: body['qosReference'] as string, altQosReferences: body['altQoSReferences'] as string[] | undefined };
  }

  async function resolve(body: Body): Promise<UeView> {
    const ue = await findUe(body);
    if (!ue) throw invalidParam(`/${UE_MEMBERS.find(m => typeof body[m] === 'string')}`, 'is not known to the network', PROBLEM_CAUSES.unknownUe);
    return ue;
  }

  async function list(req: RouteRequest): Promise<RouteResult> {
    return { status: 200, body: req.visible.map(r => r.resource), dataCategories: req.visible.length > 0 ? [QOS_CATEGORY] : [] };
  }

  async function read(req: RouteRequest): Promise<RouteResult> {
    return { status: 200, body: req.existing!.resource, dataCategories: [QOS_CATEGORY] };
  }

  async function create(req: RouteRequest): Promise<RouteResult> {
    const body = req.body as Body;
    const ue = await resolve(body);
    const reach = await reachOf(body);
    const session = await s.network.createQosSession(sessionRequest(body, ue));
    const id = s.newId();
    const now = s.now();
    const resource: Body = { ...body, self: req.resourceUri(id) };
    const state: QosState = { sessionId: session.id, ueHandle: ue.handle };
    const record = newStoredResource(AS_SESSION_WITH_QOS_API, req.scsAsId, id, resource, reach, state, now);
    try {
      await s.store.put(record);
    } catch (err) {
      // No stored subscription, no network session: never leave one without the other.
      await s.network.deleteQosSession(session.id);
      throw err;
    }
    return {
      status: 201,
      body: resource,
      location: resource['self'] as string,
      dataCategories: [QOS_CATEGORY],
      ...(body['requestTestNotification'] === true ? { after: () => s.sendTestNotification(record) } : {}),
    };
  }

  async function write(req: RouteRequest, next: Body): Promise<StoredResource> {
    const existing = req.existing!;
    const ue = await resolve(next);
    const state = existing.state as unknown as QosState;
    const updated = await s.network.updateQosSession(state.sessionId, sessionRequest(next, ue));
    if (!updated) await s.network.restoreQosSession(state.sessionId, sessionRequest(next, ue));
    const reach = await reachOf(next);
    const record: StoredResource = {
      ...existing,
      resource: { ...stripSelf(next), self: req.resourceUri(existing.id) },
      targets: reach.targets,
      dataCategories: reach.dataCategories,
      updatedAtMs: s.now(),
    };
    await s.store.put(record);
    return record;
  }

  async function replace(req: RouteRequest): Promise<RouteResult> {
    const record = await write(req, req.body as Body);
    return { status: 200, body: record.resource, dataCategories: [QOS_CATEGORY] };
  }

  function mergedResource(req: RouteRequest): Body {
    const merged = applyMergePatch(stripSelf(req.existing!.resource), req.body) as Body;
    const valid = s.schemas.validator('as-session-with-qos', SCHEMAS.subscription, 'request');
    if (!valid(merged)) throw new T8Problem(400, PROBLEM_CAUSES.invalidParameter, 'the patched subscription does not match the schema', valid.violations());
    return merged;
  }

  async function patch(req: RouteRequest): Promise<RouteResult> {
    const record = await write(req, req.document as Body);
    return { status: 200, body: record.resource, dataCategories: [QOS_CATEGORY] };
  }

  async function remove(req: RouteRequest): Promise<RouteResult> {
    await s.network.deleteQosSession((req.existing!.state as unknown as QosState).sessionId);
    await s.store.delete(AS_SESSION_WITH_QOS_API, req.scsAsId, req.existing!.id);
    return { status: 204, dataCategories: [] };
  }

  async function onNetworkEvent(event: NetworkEvent): Promise<PendingNotification[]> {
    if (event.kind !== 'qos') return [];
    const out: PendingNotification[] = [];
    for (const record of s.store.all(AS_SESSION_WITH_QOS_API)) {
      if ((record.state as unknown as QosState).sessionId !== event.sessionId) continue;
      const wanted = (record.resource['events'] as unknown[] | undefined) ?? [];
      if (!wanted.includes(event.event)) continue;
      const report: Body = { event: event.event };
      if (event.event === 'QOS_NOT_GUARANTEED' && event.appliedQosRef !== undefined) report['appliedQosRef'] = event.appliedQosRef;
      out.push({ record, body: { transaction: record.resource['self'], eventReports: [report] }, dataCategories: [QOS_CATEGORY] });
    }
    return out;
  }

  return module;
}

/** The AsSessionWithQoS module, as registered. */
export const asSessionWithQosModule: ModuleDefinition = { name: AS_SESSION_WITH_QOS_API, create: createAsSessionWithQosModule };
