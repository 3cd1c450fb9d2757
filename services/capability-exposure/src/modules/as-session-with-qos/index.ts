import type { components } from '@aese/t8-openapi/as-session-with-qos';
import { targetOf } from '@aese/t8-catalog';
import { checkNotificationDestination } from '../../domain/notification-destination.js';
import { invalidParam, PROBLEM_CAUSES } from '../../domain/problem.js';
import type { NetworkEvent, UeRef, UeView } from '../../network/network-adapter.js';
import type { ApiModule, ModuleDefinition, ModuleServices, PendingNotification, Reach } from '../registry.js';
import { resourceLifecycle } from '../toolkit/lifecycle.js';
import { addressTarget, assertIdentifierSyntax } from '../ue-targets.js';

export const AS_SESSION_WITH_QOS_API = '3gpp-as-session-with-qos';
/** The one data category of QoS sessions. */
export const QOS_CATEGORY = 'qos';

type Subscription = components['schemas']['AsSessionWithQoSSubscription'];
type Notification = components['schemas']['UserPlaneNotificationData'];
type UserPlaneEventReport = components['schemas']['UserPlaneEventReport'];

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

/** The UE reference of a body: its address, or its GPSI ("msisdn-..." / "extid-..."). */
function ueRefOf(body: Subscription): UeRef | undefined {
  const present = UE_MEMBERS.filter(m => typeof body[m] === 'string');
  if (present.length !== 1) return undefined;
  const v = body[present[0]]!;
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
  async function findUe(body: Subscription): Promise<UeView | undefined> {
    const ref = ueRefOf(body);
    return ref ? s.network.findUe(ref) : undefined;
  }

  /**
   * Targets: the GPSI as the AS gave it, or the UE its address belongs to (a free address is
   * authorized like an ungranted UE, so answers tell nothing of which addresses are in use).
   */
  async function reachOf(body: Subscription): Promise<Reach> {
    const targets: string[] = [];
    const ref = ueRefOf(body);
    if (ref?.externalId !== undefined) targets.push(targetOf('externalId', ref.externalId));
    else if (ref?.msisdn !== undefined) targets.push(targetOf('msisdn', ref.msisdn));
    else if (ref) targets.push(await addressTarget(s.network, ref));
    if (typeof body.extGroupId === 'string') targets.push(targetOf('externalGroupId', body.extGroupId));
    return { dataCategories: [QOS_CATEGORY], targets };
  }

  function validate(body: Subscription): void {
    const ref = ueRefOf(body);
    if (!ref) throw invalidParam('/ueIpv4Addr', 'exactly one of ueIpv4Addr, ueIpv6Addr, macAddr or gpsi (msisdn-/extid-) is required', PROBLEM_CAUSES.ueIdentifierRequired);
    if (ref.externalId !== undefined) assertIdentifierSyntax('/gpsi', 'externalId', ref.externalId);
    if (ref.msisdn !== undefined) assertIdentifierSyntax('/gpsi', 'msisdn', ref.msisdn);
    if ('extGroupId' in body) throw invalidParam('/extGroupId', 'group QoS sessions are not supported', PROBLEM_CAUSES.invalidParameter);
    if (typeof body.qosReference !== 'string') throw invalidParam('/qosReference', 'is required', PROBLEM_CAUSES.invalidParameter);
  }

  /** What the network offers and where notifications go (DNS): only once the request is authorized. */
  async function check(body: Subscription): Promise<void> {
    const known = s.network.qosReferences();
    if (!known.includes(body.qosReference!)) throw invalidParam('/qosReference', 'is not a QoS reference of this network', PROBLEM_CAUSES.invalidParameter);
    (body.altQoSReferences ?? []).forEach((r, i) => {
      if (!known.includes(r)) throw invalidParam(`/altQoSReferences/${i}`, 'is not a QoS reference of this network', PROBLEM_CAUSES.invalidParameter);
    });
    await checkNotificationDestination(body.notificationDestination, s.destinations);
  }

  function sessionRequest(body: Subscription, ue: UeView) {
    return { ue, qosReference: body.qosReference, altQosReferences: body.altQoSReferences };
  }

  async function resolve(body: Subscription): Promise<UeView> {
    const ue = await findUe(body);
    if (!ue) throw invalidParam(`/${UE_MEMBERS.find(m => typeof body[m] === 'string')}`, 'is not known to the network', PROBLEM_CAUSES.unknownUe);
    return ue;
  }

  const subscriptions = resourceLifecycle<Subscription, QosState>({
    services: s,
    api: AS_SESSION_WITH_QOS_API,
    schemaFile: 'as-session-with-qos',
    collection: '/{scsAsId}/subscriptions',
    idParam: 'subscriptionId',
    schemas: { resource: SCHEMAS.subscription, list: SCHEMAS.list },
    patch: { kind: 'merge-patch', schema: SCHEMAS.patch, answer: 200 },
    immutable: UE_MEMBERS,
    immutableCause: PROBLEM_CAUSES.ueIdentifierImmutable,
    reach: reachOf,
    validate,
    check,
    network: {
      create: async body => {
        const ue = await resolve(body);
        const session = await s.network.createQosSession(sessionRequest(body, ue));
        return { state: { sessionId: session.id, ueHandle: ue.handle }, undo: async () => void (await s.network.deleteQosSession(session.id)) };
      },
      update: async (next, held) => {
        const ue = await resolve(next);
        const updated = await s.network.updateQosSession(held.state.sessionId, sessionRequest(next, ue));
        if (!updated) await s.network.restoreQosSession(held.state.sessionId, sessionRequest(next, ue));
        return { state: held.state };
      },
      delete: async held => void (await s.network.deleteQosSession(held.state.sessionId)),
    },
  });

  async function onNetworkEvent(event: NetworkEvent): Promise<PendingNotification[]> {
    if (event.kind !== 'qos') return [];
    const out: PendingNotification[] = [];
    for (const { record, resource, state } of subscriptions.all()) {
      if (state.sessionId !== event.sessionId || !(resource.events ?? []).includes(event.event)) continue;
      const report: UserPlaneEventReport = { event: event.event };
      if (event.event === 'QOS_NOT_GUARANTEED' && event.appliedQosRef !== undefined) report.appliedQosRef = event.appliedQosRef;
      const body: Notification = { transaction: resource.self!, eventReports: [report] };
      out.push({ record, body, dataCategories: [QOS_CATEGORY] });
    }
    return out;
  }

  return {
    name: AS_SESSION_WITH_QOS_API,
    version: 'v1',
    scope: AS_SESSION_WITH_QOS_API,
    dataCategories: [QOS_CATEGORY],
    schemaFile: 'as-session-with-qos',
    schemas: [SCHEMAS.subscription, SCHEMAS.patch, SCHEMAS.notification],
    notificationSchema: SCHEMAS.notification,
    reach: body => reachOf(body as Subscription),
    routes: subscriptions.routes,
    onNetworkEvent,
    start: async () => {
      // The network may have lost sessions while the SCEF was down (the simulator always has).
      for (const { resource, state } of subscriptions.all()) {
        const ue = await findUe(resource);
        if (ue) await s.network.restoreQosSession(state.sessionId, sessionRequest(resource, ue));
      }
    },
  };
}

/** The AsSessionWithQoS module, as registered. */
export const asSessionWithQosModule: ModuleDefinition = { name: AS_SESSION_WITH_QOS_API, create: createAsSessionWithQosModule };
