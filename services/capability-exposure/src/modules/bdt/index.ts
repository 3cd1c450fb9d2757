import { isDeepStrictEqual } from 'node:util';
import type { components } from '@aese/t8-openapi/resource-management-of-bdt';
import { checkNotificationDestination } from '../../domain/notification-destination.js';
import { invalidParam, notFound, PROBLEM_CAUSES, T8Problem } from '../../domain/problem.js';
import type { StoredResource } from '../../domain/resource-store.js';
import type { NetworkEvent } from '../../network/network-adapter.js';
import type { ApiModule, ModuleDefinition, ModuleRoute, ModuleServices, PendingNotification, Reach, RouteRequest, RouteResult } from '../registry.js';
import { resourceLifecycle } from '../toolkit/lifecycle.js';
import type { Held } from '../toolkit/lifecycle.js';
import { assertUeIdentifiers, ueTargetsOf } from '../toolkit/ue-members.js';
import { resolveIdentifier } from '../ue-targets.js';
import { LoadProfile } from './load-profile.js';
import { SimulatedPcrf } from './network.js';
import type { BdtPolicyControl, OfferedPolicy, Span, Transfer } from './network.js';
import { bdtMaxSubscriptionsOf } from './settings.js';

export const BDT_API = '3gpp-bdt';
/** The one data category of background data transfer agreements. */
export const BDT_CATEGORY = 'bdt';
/** ProblemDetails causes of this API, beside the shared ones. */
export const BDT_CAUSES = {
  noTransferPolicy: 'NO_TRANSFER_POLICY',
  /** The AS holds the most BDT subscriptions it may (BDT_MAX_SUBSCRIPTIONS_PER_AS). */
  quotaExceeded: 'BDT_QUOTA_EXCEEDED',
} as const;
/** Longest desired time window the SCEF negotiates. */
export const MAX_BDT_WINDOW_MS = 7 * 86_400_000;
/** Type of the capability event that reports a span where the network's performance for the agreed transfers degrades. */
export const BDT_DEGRADATION_EVENT = 'degradation';
/** How often subscriptions whose desired time window ended are removed. */
export const DEFAULT_BDT_SWEEP_MS = 60_000;

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
/** Warned spans remembered per agreement: enough not to repeat a warning, bounded whatever others agree. */
const MAX_REMEMBERED_WARNINGS = 16;

interface BdtState {
  /** Degraded spans warned of (`<start>/<stop>`), each with the event that warned: a redelivered event warns again. */
  readonly warnings: Readonly<Record<string, string>>;
  /** The candidate policies of the latest warning (its span): the AS may select one until its agreement changes. */
  readonly candidates?: { readonly span: string; readonly policies: readonly TransferPolicy[] } | undefined;
}

/** The state of a new agreement: nothing warned of, no candidates (stated, so an update drops the old ones). */
const NOTHING_WARNED: BdtState = { warnings: {}, candidates: undefined };

export interface BdtModuleOptions {
  readonly pcrf?: BdtPolicyControl;
  /** How often ended subscriptions are removed (default {@link DEFAULT_BDT_SWEEP_MS}). */
  readonly sweepMs?: number;
}

const msOf = (dateTime: string): number => Date.parse(dateTime);
const isoOf = (ms: number): string => new Date(ms).toISOString();
const spanOf = (w: { startTime: string; stopTime: string }): Span => ({ startMs: msOf(w.startTime), stopMs: msOf(w.stopTime) });
const windowOf = (s: Span) => ({ startTime: isoOf(s.startMs), stopTime: isoOf(s.stopMs) });
const overlaps = (a: Span, b: Span): boolean => a.startMs < b.stopMs && b.startMs < a.stopMs;
const hull = (spans: readonly Span[]): Span => ({ startMs: Math.min(...spans.map(x => x.startMs)), stopMs: Math.max(...spans.map(x => x.stopMs)) });
const keyOf = (s: Span): string => `${isoOf(s.startMs)}/${isoOf(s.stopMs)}`;

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

function noTransferPolicy(param: string, reason: string): T8Problem {
  return new T8Problem(400, BDT_CAUSES.noTransferPolicy, 'the network offers no transfer policy for this request', [{ param, reason }]);
}

/** A degradation event's span, or undefined for a payload that is not one. */
function eventSpan(payload: Readonly<Record<string, unknown>>): Span | undefined {
  const { startTime, stopTime } = payload;
  if (typeof startTime !== 'string' || typeof stopTime !== 'string') return undefined;
  const span = spanOf({ startTime, stopTime });
  return Number.isFinite(span.startMs) && Number.isFinite(span.stopMs) && span.stopMs > span.startMs ? span : undefined;
}

/** The warnings to remember once `key` is warned of by `by`: the latest few whose span has not passed. */
function remembered(warnings: Readonly<Record<string, string>>, key: string, by: string, nowMs: number): Record<string, string> {
  const kept = Object.entries(warnings).filter(([k]) => k !== key && msOf(k.split('/')[1]) > nowMs);
  const latest: [string, string][] = [...kept, [key, by]];
  return Object.fromEntries(latest.slice(-MAX_REMEMBERED_WARNINGS));
}

/**
 * 3gpp-bdt (TS 29.122 clauses 4.4.3 and 5.4): an AS negotiates a background data transfer for a
 * number of UEs (volume per UE, desired time window). The simulated PCRF offers the off-peak and
 * shoulder windows that still carry the volume, each with its rating group and the bitrate the
 * volume needs there; the AS selects one (PATCH selectedPolicy, weighed again against what others
 * agreed meanwhile) or renegotiates (PUT). Where agreed transfers come to load a window past the
 * operator's performance criterion, the agreements there that enabled warnings get an
 * ExNotification with candidate policies, which their AS may then select. A subscription whose
 * desired time window has ended is over: it no longer counts and is removed.
 *
 * Authorization targets: a BDT request names no UE, only counts and volumes, so it reaches no
 * target unless it names an external group (then that group). It is authorized by operation and
 * the `bdt` data category; a grant need not list UEs for it.
 */
export function createBdtModule(s: ModuleServices, options: BdtModuleOptions = {}): ApiModule {
  const pcrf = options.pcrf ?? new SimulatedPcrf();
  const maxPerAs = bdtMaxSubscriptionsOf(s.settings);
  let sweeper: NodeJS.Timeout | undefined;
  let writing: Promise<unknown> = Promise.resolve();

  const reachOf = async (b: Bdt): Promise<Reach> => ({ dataCategories: [BDT_CATEGORY], targets: await ueTargetsOf(s.network, b) });
  /** Over once its desired time window has ended: the collection holds active subscriptions only. */
  const over = (b: Bdt): boolean => !(msOf(b.desiredTimeWindow.stopTime) > s.now());
  const candidatesOf = (state: Partial<BdtState> | undefined): readonly TransferPolicy[] => state?.candidates?.policies ?? [];
  /** The agreed transfer while it still runs: a window that has passed takes nothing from anyone. */
  const liveTransfer = (b: Bdt): Transfer | undefined => {
    const t = agreedTransfer(b);
    return t && t.stopMs > s.now() ? t : undefined;
  };

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
    const selectable = [...(before.transferPolicies ?? []), ...candidatesOf(req.existing?.state)];
    if (!selectable.some(p => p.bdtPolicyId === b.selectedPolicy)) throw invalidParam('/selectedPolicy', 'is not one of the offered or candidate transfer policies');
  }

  /** Where warnings go (DNS) and whether the group exists: only once the request is authorized. */
  async function check(b: Bdt): Promise<void> {
    if (b.notificationDestination !== undefined) await checkNotificationDestination(b.notificationDestination, s.destinations);
    if (b.externalGroupId !== undefined && !(await resolveIdentifier(s.network, 'externalGroupId', b.externalGroupId))) {
      throw invalidParam('/externalGroupId', 'is not known to the network', PROBLEM_CAUSES.unknownUe);
    }
  }

  /** The load of every transfer agreed and still to run, built once per negotiation or warning round. */
  const load = (): LoadProfile => LoadProfile.of(agreements.all().flatMap(h => (over(h.resource) ? [] : (liveTransfer(h.resource) ?? []))));

  function negotiate(b: Bdt, committed: LoadProfile, own?: Transfer): TransferPolicy[] {
    const offers = pcrf.offer(requestOf(b), committed, s.now(), own ? { own } : {});
    if (offers.length === 0) throw noTransferPolicy('/desiredTimeWindow', 'no window in it carries the volume');
    return offers.map((o, i) => transferPolicy(o, i + 1));
  }

  /** Removes a subscription that is over (any replica may; removing twice is harmless, a renewed one is kept). */
  async function removeEnded(record: StoredResource): Promise<void> {
    await s.store.update(BDT_API, record.scsAsId, record.id, current => (current && over(current.resource as Bdt) ? null : undefined));
  }

  /** Each agreement is weighed in every negotiation and warning: an AS holds a bounded number of them. */
  async function assertBelowQuota(scsAsId: string): Promise<void> {
    const held = await s.store.list(BDT_API, scsAsId);
    const ended = held.filter(r => over(r.resource as Bdt));
    for (const r of ended) await removeEnded(r);
    if (held.length - ended.length >= maxPerAs) throw new T8Problem(403, BDT_CAUSES.quotaExceeded, `at most ${maxPerAs} active BDT subscriptions per SCS/AS`);
  }

  /**
   * Once an agreement is stored, the PCRF reports whether the network's performance degrades in
   * its window, as a network event: whichever replica handles it warns the agreements there.
   */
  async function reportDegradation(agreed: Transfer | undefined): Promise<void> {
    if (!agreed) return;
    const spans = pcrf.degraded(load(), s.now(), agreed);
    if (spans.length > 0) await s.network.emit({ capability: BDT_API, type: BDT_DEGRADATION_EVENT, payload: windowOf(hull(spans)) });
  }

  /** The offered policies, with the candidate the AS selects when it selects one: that becomes an offered policy. */
  function offeredWith(held: Held<Bdt, BdtState>, selected: number | undefined): TransferPolicy[] {
    const offered = held.resource.transferPolicies ?? [];
    if (selected === undefined || offered.some(p => p.bdtPolicyId === selected)) return [...offered];
    const candidate = candidatesOf(held.state).find(p => p.bdtPolicyId === selected);
    return candidate ? [...offered, candidate] : [...offered];
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
      create: async (b, call) => {
        await assertBelowQuota(call.req.scsAsId);
        const transferPolicies = negotiate(b, load());
        const agreed = agreedTransfer({ ...b, transferPolicies });
        return { state: NOTHING_WARNED, set: { referenceId: s.newId(), transferPolicies }, after: () => reportDegradation(agreed) };
      },
      update: async (next, held) => {
        const committed = load();
        const own = liveTransfer(held.resource);
        const referenceId = held.resource.referenceId!;
        if (renegotiates(next, held.resource)) {
          const transferPolicies = negotiate(next, committed, own);
          return { state: NOTHING_WARNED, set: { referenceId, transferPolicies }, after: () => reportDegradation(agreedTransfer({ ...next, transferPolicies })) };
        }
        const transferPolicies = offeredWith(held, next.selectedPolicy);
        const agreed = agreedPolicy({ ...next, transferPolicies });
        if (isDeepStrictEqual(agreed, agreedPolicy(held.resource))) return { state: held.state, set: { referenceId, transferPolicies } };
        // A selection is weighed against what the others agreed since the offer was made.
        const transfer = agreedTransfer({ ...next, transferPolicies });
        if (transfer && !pcrf.fits(transfer, committed, s.now(), own)) {
          throw noTransferPolicy('/selectedPolicy', 'its window no longer carries the volume: select another policy or negotiate again');
        }
        // A new agreement is warned of afresh.
        return { state: NOTHING_WARNED, set: { referenceId, transferPolicies }, after: () => reportDegradation(transfer) };
      },
    },
  });

  /** Writes weigh the load the write before them stored: on this replica they run one at a time. */
  function serially<T>(work: () => Promise<T>): Promise<T> {
    const run = writing.then(work);
    writing = run.catch(() => undefined);
    return run;
  }

  /** A subscription met after its time window ended is removed and answered as absent. */
  const unlessEnded =
    (handler: ModuleRoute['handler']) =>
    async (req: RouteRequest): Promise<RouteResult> => {
      if (req.existing && over(req.existing.resource as Bdt)) {
        await removeEnded(req.existing);
        throw notFound();
      }
      return handler(req);
    };

  const routes: ModuleRoute[] = agreements.routes.map(r => {
    if (r.target === 'collection' && r.method === 'GET') {
      return {
        ...r,
        handler: async req => {
          for (const ended of req.visible.filter(v => over(v.resource as Bdt))) await removeEnded(ended);
          return r.handler({ ...req, visible: req.visible.filter(v => !over(v.resource as Bdt)) });
        },
      };
    }
    const handler = r.target === 'item' ? unlessEnded(r.handler) : r.handler;
    return { ...r, handler: r.method === 'GET' || r.method === 'DELETE' ? handler : req => serially(() => handler(req)) };
  });

  /** The warning of one agreement for the degraded spans, or undefined when it is not affected or was warned. */
  async function warning(held: Held<Bdt, BdtState>, degraded: readonly Span[], committed: LoadProfile, event: NetworkEvent): Promise<PendingNotification | undefined> {
    const { record, resource, state } = held;
    const current = agreedPolicy(resource);
    if (resource.warnNotifEnabled !== true || resource.notificationDestination === undefined || !current || over(resource)) return undefined;
    const agreed = spanOf(current.timeWindow);
    const hits = degraded.filter(d => overlaps(d, agreed));
    if (hits.length === 0) return undefined;
    const around = hull(hits);
    const hit = { startMs: Math.max(around.startMs, agreed.startMs), stopMs: Math.min(around.stopMs, agreed.stopMs) };
    const key = keyOf(hit);
    const by = event.id ?? UNNAMED_EVENT;
    const warnedBy = state.warnings[key];
    if (warnedBy !== undefined && (warnedBy !== by || by === UNNAMED_EVENT)) return undefined;
    let candPolicies = state.candidates?.span === key ? state.candidates.policies : undefined;
    if (!candPolicies || warnedBy === undefined) {
      // Candidates: what the network offers the same request elsewhere now, numbered after every policy so far.
      const first = Math.max(0, ...[...(resource.transferPolicies ?? []), ...candidatesOf(state)].map(p => p.bdtPolicyId)) + 1;
      const offers = pcrf.offer(requestOf(resource), committed, s.now(), { own: liveTransfer(resource), avoid: agreed });
      candPolicies = offers.map((o, i) => transferPolicy(o, first + i));
    }
    // Only the SCEF's own bookkeeping changes: the agreement stays as its AS made it until it selects a candidate.
    await agreements.save(held, { state: { warnings: remembered(state.warnings, key, by, s.now()), candidates: { span: key, policies: candPolicies } } });
    const body: ExNotification = {
      bdtRefId: resource.referenceId!,
      timeWindow: windowOf(hit),
      ...(resource.locationArea5G ? { locationArea5G: resource.locationArea5G } : {}),
      ...(candPolicies.length > 0 ? { candPolicies: [...candPolicies] } : {}),
    };
    return { record, body, dataCategories: [BDT_CATEGORY] };
  }

  async function onNetworkEvent(event: NetworkEvent): Promise<PendingNotification[]> {
    if (event.kind !== 'capability' || event.capability !== BDT_API || event.type !== BDT_DEGRADATION_EVENT) return [];
    const span = eventSpan(event.payload);
    if (!span) return [];
    // One load and one set of degraded spans for the round, whatever the number of agreements; what
    // has resolved since the event was sent is not warned of.
    const committed = load();
    const degraded = pcrf.degraded(committed, s.now(), span);
    if (degraded.length === 0) return [];
    const out: PendingNotification[] = [];
    for (const held of agreements.all()) {
      const pending = await warning(held, degraded, committed, event);
      if (pending) out.push(pending);
    }
    return out;
  }

  async function sweepEnded(): Promise<void> {
    for (const { record, resource } of agreements.all()) if (over(resource)) await removeEnded(record);
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
    routes,
    onNetworkEvent,
    start: async () => {
      sweeper = setInterval(() => {
        // A store that cannot vouch for its copy now is swept at the next turn.
        sweepEnded().catch(() => undefined);
      }, options.sweepMs ?? DEFAULT_BDT_SWEEP_MS);
      sweeper.unref();
    },
    stop: async () => {
      clearInterval(sweeper);
    },
  };
}

/** The ResourceManagementOfBdt module, as registered. */
export const bdtModule: ModuleDefinition = { name: BDT_API, causes: BDT_CAUSES, create: s => createBdtModule(s) };
