import { isDeepStrictEqual } from 'node:util';
import type { components } from '@aese/t8-openapi/resource-management-of-bdt';
import { checkNotificationDestination } from '../../domain/notification-destination.js';
import { invalidParam, PROBLEM_CAUSES, T8Problem } from '../../domain/problem.js';
import type { NetworkEvent } from '../../network/network-adapter.js';
import type { ApiModule, ModuleDefinition, ModuleServices, PendingNotification, Reach, RouteRequest } from '../registry.js';
import { resourceLifecycle } from '../toolkit/lifecycle.js';
import type { Held } from '../toolkit/lifecycle.js';
import { assertUeIdentifiers, ueTargetsOf } from '../toolkit/ue-members.js';
import { resolveIdentifier } from '../ue-targets.js';
import { SimulatedPcrf } from './network.js';
import type { BdtPolicyControl, OfferedPolicy, Span, Transfer } from './network.js';

export const BDT_API = '3gpp-bdt';
/** The one data category of background data transfer agreements. */
export const BDT_CATEGORY = 'bdt';
/** ProblemDetails causes of this API, beside the shared ones. */
export const BDT_CAUSES = {
  noTransferPolicy: 'NO_TRANSFER_POLICY',
} as const;
/** Longest desired time window the SCEF negotiates. */
export const MAX_BDT_WINDOW_MS = 7 * 86_400_000;
/** Type of the capability event that reports a span where the agreed transfers no longer fit. */
export const BDT_CONGESTION_EVENT = 'congestion';

type Bdt = components['schemas']['Bdt'];
type TransferPolicy = components['schemas']['TransferPolicy'];
type ExNotification = components['schemas']['ExNotification'];

const SCHEMAS = {
  bdt: 'Bdt',
  patch: 'BdtPatch',
  notification: 'ExNotification',
  list: '#/paths/~1{scsAsId}~1subscriptions/get/responses/200/content/application~1json/schema',
} as const;
/** Members the PCRF negotiates over: changing one is a new negotiation. */
const NEGOTIATED = ['volumePerUE', 'numberOfUEs', 'desiredTimeWindow', 'locationArea', 'locationArea5G', 'externalGroupId', 'trafficDes'] as const;
/** Members only the SCEF writes: absent from a create, sent back unchanged afterwards if at all. */
const SCEF_MEMBERS = ['transferPolicies', 'referenceId'] as const;
/** Marks a warning given for an event that carried no id (it is never sent twice). */
const UNNAMED_EVENT = '-';

interface BdtState {
  /** Congested spans warned of (`<start>/<stop>`), each with the event that warned: a redelivered event warns again. */
  readonly warnings: Readonly<Record<string, string>>;
}

const msOf = (dateTime: string): number => Date.parse(dateTime);
const isoOf = (ms: number): string => new Date(ms).toISOString();
const spanOf = (w: { startTime: string; stopTime: string }): Span => ({ startMs: msOf(w.startTime), stopMs: msOf(w.stopTime) });
const windowOf = (s: Span) => ({ startTime: isoOf(s.startMs), stopTime: isoOf(s.stopMs) });

/** Bytes one UE transfers: the total, or downlink and uplink together. */
function bytesPerUe(b: Bdt): number {
  const v = b.volumePerUE;
  return v.totalVolume ?? (v.downlinkVolume ?? 0) + (v.uplinkVolume ?? 0);
}

/** The transfer the AS asks for: its desired window and the volume of all its UEs. */
const requestOf = (b: Bdt): Transfer => ({ ...spanOf(b.desiredTimeWindow), bits: bytesPerUe(b) * 8 * b.numberOfUEs });

/** The policy an agreement follows: the one selected, or the only one offered (nothing to select). */
function agreedPolicy(b: Bdt): TransferPolicy | undefined {
  const offered = b.transferPolicies ?? [];
  if (b.selectedPolicy !== undefined) return offered.find(p => p.bdtPolicyId === b.selectedPolicy);
  return offered.length === 1 ? offered[0] : undefined;
}

function agreedTransfer(b: Bdt): Transfer | undefined {
  const policy = agreedPolicy(b);
  return policy ? { ...spanOf(policy.timeWindow), bits: requestOf(b).bits } : undefined;
}

const renegotiates = (next: Bdt, before: Bdt): boolean => NEGOTIATED.some(m => !isDeepStrictEqual(next[m], before[m]));

/** An offer as a T8 TransferPolicy; the bitrate is shared by both directions. */
const transferPolicy = (o: OfferedPolicy, bdtPolicyId: number): TransferPolicy => ({
  bdtPolicyId,
  ratingGroup: o.ratingGroup,
  timeWindow: windowOf(o),
  maxDownlinkBandwidth: o.maxBitrate,
  maxUplinkBandwidth: o.maxBitrate,
});

/** A congestion event's span, or undefined for a payload that is not one. */
function congestedSpan(payload: Readonly<Record<string, unknown>>): Span | undefined {
  const { startTime, stopTime } = payload;
  if (typeof startTime !== 'string' || typeof stopTime !== 'string') return undefined;
  const span = spanOf({ startTime, stopTime });
  return Number.isFinite(span.startMs) && Number.isFinite(span.stopMs) && span.stopMs > span.startMs ? span : undefined;
}

/**
 * 3gpp-bdt (TS 29.122 clauses 4.4.3 and 5.4): an AS negotiates a background data transfer for a
 * number of UEs (volume per UE, desired time window). The simulated PCRF offers the off-peak and
 * shoulder windows that still carry the volume, each with its rating group; the AS selects one
 * (PATCH selectedPolicy) or renegotiates (PUT). When agreed transfers come to need more than the
 * network carries in a window, the agreements there that enabled warnings get an ExNotification
 * with candidate policies, which the AS may then select.
 *
 * Authorization targets: a BDT request names no UE, only counts and volumes, so it reaches no
 * target unless it names an external group (then that group). It is authorized by operation and
 * the `bdt` data category; a grant need not list UEs for it.
 */
function createBdtModule(s: ModuleServices, pcrf: BdtPolicyControl = new SimulatedPcrf()): ApiModule {
  const reachOf = async (b: Bdt): Promise<Reach> => ({ dataCategories: [BDT_CATEGORY], targets: await ueTargetsOf(s.network, b) });

  function validate(b: Bdt, req: RouteRequest): void {
    assertUeIdentifiers(b);
    // The SCEF maps the AS to its ASP itself (clause 4.4.3); another ASP would be charged otherwise.
    if (b.aspId !== undefined && b.aspId !== req.scsAsId) throw new T8Problem(403, PROBLEM_CAUSES.scsAsIdMismatch, 'the aspId is not the authenticated SCS/AS');
    if (!(bytesPerUe(b) > 0)) throw invalidParam('/volumePerUE', 'needs a totalVolume, downlinkVolume or uplinkVolume above 0');
    if (b.warnNotifEnabled === true && b.notificationDestination === undefined) throw invalidParam('/notificationDestination', 'is required when warnNotifEnabled is true');
    const before = req.existing?.resource as Bdt | undefined;
    for (const m of SCEF_MEMBERS) if (m in b && (!before || !isDeepStrictEqual(b[m], before[m]))) throw invalidParam(`/${m}`, 'is written by the SCEF only');
    if (!before || renegotiates(b, before)) {
      const window = spanOf(b.desiredTimeWindow);
      if (!(window.stopMs > window.startMs)) throw invalidParam('/desiredTimeWindow/stopTime', 'must be after startTime');
      if (window.stopMs <= s.now()) throw invalidParam('/desiredTimeWindow/stopTime', 'is in the past');
      if (window.stopMs - window.startMs > MAX_BDT_WINDOW_MS) throw invalidParam('/desiredTimeWindow', `is longer than ${MAX_BDT_WINDOW_MS / 86_400_000} days`);
    }
    if (b.selectedPolicy === undefined) return;
    if (!before) throw invalidParam('/selectedPolicy', 'selects among offered policies: it has no place in a create');
    if (renegotiates(b, before)) throw invalidParam('/selectedPolicy', 'cannot be given while the request is negotiated again: select among the new offers');
    if (!(before.transferPolicies ?? []).some(p => p.bdtPolicyId === b.selectedPolicy)) throw invalidParam('/selectedPolicy', 'is not one of the offered transfer policies');
  }

  /** Where warnings go (DNS) and whether the group exists: only once the request is authorized. */
  async function check(b: Bdt): Promise<void> {
    if (b.notificationDestination !== undefined) await checkNotificationDestination(b.notificationDestination, s.destinations);
    if (b.externalGroupId !== undefined && !(await resolveIdentifier(s.network, 'externalGroupId', b.externalGroupId))) {
      throw invalidParam('/externalGroupId', 'is not known to the network', PROBLEM_CAUSES.unknownUe);
    }
  }

  /** The transfers agreed so far, but for one agreement (the one being negotiated again). */
  const committed = (except?: string): Transfer[] =>
    agreements
      .all()
      .filter(h => h.record.id !== except)
      .flatMap(h => agreedTransfer(h.resource) ?? []);

  function negotiate(b: Bdt, except?: string): TransferPolicy[] {
    const offers = pcrf.offer(requestOf(b), committed(except), s.now());
    if (offers.length === 0) {
      throw new T8Problem(400, BDT_CAUSES.noTransferPolicy, 'the network offers no transfer policy for this request', [
        { param: '/desiredTimeWindow', reason: 'no window in it carries the volume' },
      ]);
    }
    return offers.map((o, i) => transferPolicy(o, i + 1));
  }

  /**
   * Once an agreement is stored, the PCRF reports where the agreed transfers no longer fit, as a
   * network event: whichever replica handles it warns the agreements there.
   */
  async function reportCongestion(): Promise<void> {
    for (const span of pcrf.congested(committed(), s.now())) await s.network.emit({ capability: BDT_API, type: BDT_CONGESTION_EVENT, payload: windowOf(span) });
  }

  const agreements = resourceLifecycle<Bdt, BdtState>({
    services: s,
    api: BDT_API,
    schemaFile: 'resource-management-of-bdt',
    collection: '/{scsAsId}/subscriptions',
    idParam: 'subscriptionId',
    schemas: { resource: SCHEMAS.bdt, list: SCHEMAS.list },
    patch: { kind: 'merge-patch', schema: SCHEMAS.patch, answer: 200 },
    reach: reachOf,
    validate,
    check,
    network: {
      create: async b => ({ state: { warnings: {} }, set: { referenceId: s.newId(), transferPolicies: negotiate(b) }, after: reportCongestion }),
      update: async (next, held) => {
        const again = renegotiates(next, held.resource);
        const transferPolicies = again ? negotiate(next, held.record.id) : (held.resource.transferPolicies ?? []);
        const same = !again && isDeepStrictEqual(agreedPolicy({ ...next, transferPolicies }), agreedPolicy(held.resource));
        // A new agreement is warned of afresh.
        return { state: { warnings: same ? held.state.warnings : {} }, set: { referenceId: held.resource.referenceId!, transferPolicies }, after: reportCongestion };
      },
    },
  });

  /** The warning of one agreement for a congested span, or undefined when it is not affected or was warned. */
  async function warning(held: Held<Bdt, BdtState>, span: Span, event: NetworkEvent): Promise<PendingNotification | undefined> {
    const { record, resource, state } = held;
    const current = agreedPolicy(resource);
    if (resource.warnNotifEnabled !== true || resource.notificationDestination === undefined || !current) return undefined;
    const agreed = spanOf(current.timeWindow);
    const hit = { startMs: Math.max(agreed.startMs, span.startMs), stopMs: Math.min(agreed.stopMs, span.stopMs) };
    if (hit.stopMs <= hit.startMs) return undefined;
    const key = `${isoOf(span.startMs)}/${isoOf(span.stopMs)}`;
    const by = event.id ?? UNNAMED_EVENT;
    const warnedBy = state.warnings[key];
    if (warnedBy !== undefined && (warnedBy !== by || by === UNNAMED_EVENT)) return undefined;
    // Candidates: what the network offers now for the same request, numbered after the offers so far.
    const first = Math.max(...(resource.transferPolicies ?? []).map(p => p.bdtPolicyId)) + 1;
    const candPolicies = pcrf.offer(requestOf(resource), committed(record.id), s.now()).map((o, i) => transferPolicy(o, first + i));
    // The candidates become selectable; the agreed policy stays selected until the AS picks another.
    await agreements.save(held, {
      state: { warnings: { ...state.warnings, [key]: by } },
      set: { transferPolicies: [current, ...candPolicies], selectedPolicy: current.bdtPolicyId },
    });
    const body: ExNotification = {
      bdtRefId: resource.referenceId!,
      timeWindow: windowOf(hit),
      ...(resource.locationArea5G ? { locationArea5G: resource.locationArea5G } : {}),
      ...(candPolicies.length > 0 ? { candPolicies } : {}),
    };
    return { record, body, dataCategories: [BDT_CATEGORY] };
  }

  async function onNetworkEvent(event: NetworkEvent): Promise<PendingNotification[]> {
    if (event.kind !== 'capability' || event.capability !== BDT_API || event.type !== BDT_CONGESTION_EVENT) return [];
    const span = congestedSpan(event.payload);
    if (!span) return [];
    const out: PendingNotification[] = [];
    for (const held of agreements.all()) {
      const pending = await warning(held, span, event);
      if (pending) out.push(pending);
    }
    return out;
  }

  return {
    name: BDT_API,
    version: 'v1',
    scope: BDT_API,
    dataCategories: [BDT_CATEGORY],
    schemaFile: 'resource-management-of-bdt',
    schemas: [SCHEMAS.bdt, SCHEMAS.patch, SCHEMAS.notification],
    notificationSchema: SCHEMAS.notification,
    reach: body => reachOf(body as Bdt),
    routes: agreements.routes,
    onNetworkEvent,
  };
}

/** The ResourceManagementOfBdt module, as registered. */
export const bdtModule: ModuleDefinition = { name: BDT_API, causes: BDT_CAUSES, create: s => createBdtModule(s) };
