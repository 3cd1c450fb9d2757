import { targetOf } from '@aese/t8-catalog';
import { invalidParam, notFound, problemBody, PROBLEM_CAUSES, T8Problem } from '../../domain/problem.js';
import { newStoredResource } from '../../domain/resource-store.js';
import type { StoredResource } from '../../domain/resource-store.js';
import type { UeView } from '../../network/network-adapter.js';
import type { ModuleRoute, ModuleServices, PendingNotification, Reach, RouteRequest } from '../registry.js';
import { stillAuthorized } from '../toolkit/authorize.js';
import { resourceLifecycle } from '../toolkit/lifecycle.js';
import type { LifecycleCall } from '../toolkit/lifecycle.js';
import { assertIdentifiersSyntax, resolveIdentifier } from '../ue-targets.js';
import type { IdentifiedBy } from '../ue-targets.js';
import {
  assertData,
  assertPdnOption,
  assertScefMembers,
  dataBytes,
  DELIVERY_STORE,
  identifierOf,
  IDENTIFIERS,
  NIDD_API,
  NIDD_CATEGORY,
  NIDD_CAUSES,
  sameIdentifier,
  SCHEMAS,
} from './model.js';
import type {
  Configuration,
  DeliveryFailure,
  DeliveryStatus,
  DeliveryStatusNotification,
  GmdResult,
  GroupDeliveryNotification,
  PdnOption,
  Transfer,
  TransferPatch,
} from './model.js';
import type { NiddNetwork } from './network.js';
import { niddMaxBufferingSecondsOf } from './settings.js';

/** How long the SCEF buffers data for a UE that cannot be reached, when the AS gives no maximumLatency (at most the operator's limit). */
export const DEFAULT_BUFFER_SECONDS = 3600;
/** Members of a transfer only the SCEF writes. */
const SCEF_MEMBERS = ['deliveryStatus', 'requestedRetransmissionTime'] as const;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** A UE the data still waits for: its handle, and its externalId for a group's results. */
interface WaitingUe {
  readonly handle: string;
  readonly externalId: string;
}

/** What the SCEF keeps beside a buffered transfer. */
export interface DeliveryState {
  readonly identifiedBy: IdentifiedBy;
  readonly waiting: readonly WaitingUe[];
  /** Results of the group's UEs already served (a group transfer only). */
  readonly results: readonly GmdResult[];
  readonly expiresAtMs: number;
  /** The configuration it belongs to (written by the lifecycle). */
  readonly parentId?: string;
}

/** What sending a transfer did at once. */
type Submitted =
  | { readonly kind: 'delivered'; readonly status: DeliveryStatus }
  | { readonly kind: 'refused' }
  | { readonly kind: 'buffered'; readonly set: Partial<Transfer>; readonly state: Omit<DeliveryState, 'parentId'> };

export interface Deliveries {
  readonly routes: readonly ModuleRoute[];
  /** Sends a configuration's own transfer (a create may carry one): the entry the configuration shows, and how to take back a buffered one. */
  fromConfiguration(transfer: Transfer, configuration: Configuration, call: LifecycleCall): Promise<{ entry: Transfer; undo?: () => Promise<void> }>;
  /** Sends what waits for a UE the network just changed; `reachable` when the event says it. The configurations by {@link configurationKey}. */
  deliverTo(ue: UeView, reachable: boolean | undefined, configurations: ReadonlyMap<string, Configuration>): Promise<PendingNotification[]>;
  /** Ends the transfers whose buffering time is over (FAILURE_TIMEOUT). */
  expire(configurations: ReadonlyMap<string, Configuration>): Promise<PendingNotification[]>;
  /** Drops the buffered transfers of a configuration that ends. */
  removeOf(configuration: StoredResource): Promise<void>;
}

const reachOf = (body: Transfer): Reach => {
  const id = identifierOf(body);
  return { dataCategories: [NIDD_CATEGORY], targets: id ? [targetOf(IDENTIFIERS[id.kind], id.value)] : [] };
};

const optionOf = (transfer: Transfer, configuration: Configuration): PdnOption =>
  (transfer.pdnEstablishmentOption ?? configuration.pdnEstablishmentOption ?? 'WAIT_FOR_UE') as PdnOption;

/** A buffered transfer's status: the SCEF triggered the device, or waits for it. */
const bufferedStatus = (transfer: Transfer, configuration: Configuration): DeliveryStatus => (optionOf(transfer, configuration) === 'SEND_TRIGGER' ? 'TRIGGERED' : 'BUFFERING');

/** The key of a configuration in the maps {@link Deliveries} takes. */
export const configurationKey = (scsAsId: string, id: string): string => `${scsAsId}\n${id}`;

/** What is sent: the reliable data service as the transfer asks, else as its configuration does. */
const downlinkOf = (transfer: Transfer, configuration: Configuration) => ({
  data: transfer.data,
  reliableDataService: transfer.reliableDataService ?? configuration.reliableDataService,
});

const isSuccess = (status: unknown): boolean => typeof status === 'string' && status.startsWith('SUCCESS');

/**
 * NIDD downlink data deliveries (TS 29.122 clause 4.4.5.3): mobile-terminated non-IP data for
 * the UE or group of a configuration. Data a UE can take now is sent at once and answered 200
 * with its delivery status (nothing is stored); data for a UE out of reach is buffered as a
 * resource (201, BUFFERING, or TRIGGERED with SEND_TRIGGER) until the UE can be reached or the
 * buffering time (maximumLatency) is over, and its outcome is notified to the configuration's
 * notificationDestination; INDICATE_ERROR (or a maximumLatency of 0) answers 500 instead of
 * buffering. A group's data goes to every member, and its report lists each member's result.
 *
 * A maximumLatency is the longest delay the AS accepts, within which the SCEF chooses how long it
 * buffers (TS 29.122, NiddDownlinkDataTransfer), so one beyond the operator's limit is lowered to
 * it and the resource shows what holds. Data sent later, once the UE can be reached, is decided
 * again first: without a grant it is not sent and the transfer ends with FAILURE.
 */
export function createDeliveries(s: ModuleServices, net: NiddNetwork): Deliveries {
  const maxBufferingSeconds = niddMaxBufferingSecondsOf(s.settings);
  /** How long data waits: as the AS asks, else the default, and never past the operator's limit. */
  const bufferingSeconds = (maximumLatency: number | undefined): number => Math.min(maximumLatency ?? DEFAULT_BUFFER_SECONDS, maxBufferingSeconds);
  /** The maximumLatency a buffered transfer shows: the one that holds, when the AS gave one. */
  const latencyShown = (maximumLatency: number | undefined): Partial<Transfer> => (maximumLatency === undefined ? {} : { maximumLatency: bufferingSeconds(maximumLatency) });

  async function parentOf(req: RouteRequest): Promise<StoredResource> {
    const id = req.params['configurationId'];
    const parent = UUID.test(id) ? await s.store.get(NIDD_API, req.scsAsId, id) : undefined;
    if (!parent || parent.scsAsId !== req.scsAsId) throw notFound();
    return parent;
  }

  function validate(body: Transfer, existing: Record<string, unknown> | undefined): void {
    if (!identifierOf(body)) throw invalidParam('/externalId', 'exactly one of externalId, msisdn or externalGroupId is required', PROBLEM_CAUSES.ueIdentifierRequired);
    assertIdentifiersSyntax(body, IDENTIFIERS);
    assertData('/data', body.data);
    assertPdnOption('/pdnEstablishmentOption', body.pdnEstablishmentOption);
    assertScefMembers(body, SCEF_MEMBERS, existing);
  }

  /** What the configuration allows: its UE or group, its packet size, its RDS ports. */
  function assertFits(body: Transfer, configuration: Configuration, prefix = ''): void {
    const id = identifierOf(body)!;
    if (!sameIdentifier(id, identifierOf(configuration))) throw invalidParam(`${prefix}/${id.kind}`, 'does not name the UE or group of the NIDD configuration');
    if (dataBytes(body.data)! * 8 > (configuration.maximumPacketSize ?? net.maximumPacketSizeBits)) {
      throw new T8Problem(403, NIDD_CAUSES.dataTooLarge, 'the non-IP data is larger than the maximumPacketSize of the NIDD configuration');
    }
    const port = body.rdsPort;
    if (port && configuration.rdsPorts && !configuration.rdsPorts.some(p => p.portUE === port.portUE && p.portSCEF === port.portSCEF)) {
      throw new T8Problem(403, NIDD_CAUSES.rdsPortUnknown, 'the rdsPort is not one of the NIDD configuration');
    }
  }

  /** Sends a transfer to its UE or to every UE of its group, or buffers it for those out of reach. */
  async function submit(body: Transfer, configuration: Configuration): Promise<Submitted> {
    const id = identifierOf(body)!;
    const resolved = await resolveIdentifier(s.network, id.kind, id.value);
    if (!resolved || resolved.ues.length === 0) throw invalidParam(`/${id.kind}`, 'is not known to the network', PROBLEM_CAUSES.unknownUe);
    const group = id.kind === 'externalGroupId';
    if (optionOf(body, configuration) === 'INDICATE_ERROR' || body.maximumLatency === 0) {
      // No buffering: all or nothing, so a refusal never leaves a group half served.
      for (const ue of resolved.ues) if (!(await net.reachable(ue))) return { kind: 'refused' };
    }
    const results: GmdResult[] = [];
    const waiting: WaitingUe[] = [];
    for (const ue of resolved.ues) {
      const status = await net.send(ue, downlinkOf(body, configuration));
      if (status) results.push({ externalId: ue.externalId, deliveryStatus: status });
      else waiting.push({ handle: ue.handle, externalId: ue.externalId });
    }
    if (waiting.length === 0) return { kind: 'delivered', status: group ? 'SUCCESS' : (results[0].deliveryStatus as DeliveryStatus) };
    const expiresAtMs = s.now() + bufferingSeconds(body.maximumLatency) * 1000;
    return {
      kind: 'buffered',
      set: { deliveryStatus: bufferedStatus(body, configuration), ...latencyShown(body.maximumLatency) },
      state: { identifiedBy: resolved.identifiedBy, waiting, results: group ? results : [], expiresAtMs },
    };
  }

  const failure = (): DeliveryFailure => ({
    problemDetail: problemBody(500, NIDD_CAUSES.temporarilyNotReachable, 'the UE cannot be reached now and the request asked for no buffering') as DeliveryFailure['problemDetail'],
  });

  // The buffering a create decided, for the create step that stores it (same call).
  const buffered = new WeakMap<LifecycleCall, Extract<Submitted, { kind: 'buffered' }>>();

  const lifecycle = resourceLifecycle<Transfer, DeliveryState>({
    services: s,
    api: NIDD_API,
    schemaFile: 'nidd',
    collection: '/{scsAsId}/configurations/{configurationId}/downlink-data-deliveries',
    idParam: 'downlinkDataDeliveryId',
    store: DELIVERY_STORE,
    parent: { idParam: 'configurationId', store: NIDD_API },
    schemas: { resource: SCHEMAS.transfer, list: SCHEMAS.deliveries, createAnswers: { 200: SCHEMAS.transfer, 500: SCHEMAS.failure } },
    immutable: Object.keys(IDENTIFIERS),
    reach: reachOf,
    validate: (body, req) => validate(body, req.existing?.resource),
    check: async (body, req) => assertFits(body, (await parentOf(req)).resource as Configuration),
    immediate: async (body, call) => {
      const submitted = await submit(body, (await parentOf(call.req)).resource as Configuration);
      if (submitted.kind === 'delivered') return { status: 200, body: { ...body, deliveryStatus: submitted.status }, dataCategories: [NIDD_CATEGORY] };
      if (submitted.kind === 'refused') return { status: 500, body: failure(), dataCategories: [] };
      buffered.set(call, submitted);
      return undefined;
    },
    network: {
      create: async (_body, call) => {
        const b = buffered.get(call)!;
        return { state: b.state, set: b.set };
      },
      // A replacement waits anew, for its own maximumLatency.
      update: async (next, held, call) => {
        const configuration = (await parentOf(call.req)).resource as Configuration;
        return {
          state: { ...held.state, expiresAtMs: s.now() + bufferingSeconds(next.maximumLatency) * 1000 },
          set: { deliveryStatus: bufferedStatus(next, configuration), ...latencyShown(next.maximumLatency) },
        };
      },
    },
  });

  /** PATCH with application/json (NiddDownlinkDataTransferPatch): the members given replace the stored ones. */
  function patchRoute(put: ModuleRoute): ModuleRoute {
    const resourceSchema = s.schemas.validator('nidd', SCHEMAS.transfer, 'request');
    return {
      ...put,
      method: 'PATCH',
      request: { contentType: 'application/json', schema: SCHEMAS.transferPatch },
      responses: { 200: SCHEMAS.transfer },
      document: req => {
        const next = { ...req.existing!.resource, ...(req.body as TransferPatch) };
        if (!resourceSchema(next)) throw new T8Problem(400, PROBLEM_CAUSES.invalidParameter, 'the patched resource does not match the schema', resourceSchema.violations());
        return next;
      },
      handler: async req => {
        const held = lifecycle.held(req.existing!);
        const patch = req.body as TransferPatch;
        const configuration = (await parentOf(req)).resource as Configuration;
        const state = patch.maximumLatency === undefined ? {} : { expiresAtMs: s.now() + bufferingSeconds(patch.maximumLatency) * 1000 };
        await lifecycle.save(held, { set: { ...patch, ...latencyShown(patch.maximumLatency), deliveryStatus: bufferedStatus(req.document as Transfer, configuration) }, state });
        const stored = await s.store.get(DELIVERY_STORE, req.scsAsId, held.record.id);
        if (!stored) throw notFound();
        return { status: 200, body: stored.resource, dataCategories: stored.dataCategories };
      },
    };
  }

  const put = lifecycle.routes.find(r => r.method === 'PUT')!;
  const routes: ModuleRoute[] = lifecycle.routes.map(r =>
    r.method !== 'POST'
      ? r
      : {
          ...r,
          // A new transfer: no self link, and no parent to compare with yet (checked once authorized).
          validate: (body: unknown) => {
            const t = body as Transfer;
            if ('self' in t) throw invalidParam('/self', 'does not match the resource', PROBLEM_CAUSES.idMismatch);
            validate(t, undefined);
          },
        },
  );
  routes.push(patchRoute(put));

  /** Records an outcome for some waiting UEs; once none waits, the transfer ends with its report. */
  async function settle(record: StoredResource, handles: readonly string[], status: DeliveryStatus): Promise<PendingNotification[]> {
    const outcome: { ended?: { record: StoredResource; results: GmdResult[] } } = {};
    await s.store.update(DELIVERY_STORE, record.scsAsId, record.id, current => {
      outcome.ended = undefined;
      if (!current) return undefined;
      const st = current.state as unknown as DeliveryState;
      const served = st.waiting.filter(w => handles.includes(w.handle));
      if (served.length === 0) return undefined;
      const waiting = st.waiting.filter(w => !handles.includes(w.handle));
      const results = [...st.results, ...served.map(w => ({ externalId: w.externalId, deliveryStatus: status }))];
      if (waiting.length > 0) return { ...current, state: { ...st, waiting, results }, updatedAtMs: s.now() };
      outcome.ended = { record: current, results };
      return null;
    });
    return outcome.ended ? report(outcome.ended.record, outcome.ended.results, status) : [];
  }

  /** The report of an ended transfer, sent to its configuration's notificationDestination. */
  async function report(record: StoredResource, results: GmdResult[], status: DeliveryStatus): Promise<PendingNotification[]> {
    const st = record.state as unknown as DeliveryState;
    const self = record.resource['self'] as string;
    const group = st.identifiedBy === 'externalGroupId';
    const final = group ? (results.every(r => isSuccess(r.deliveryStatus)) ? 'SUCCESS' : 'FAILURE') : status;
    const parent = await s.store.get(NIDD_API, record.scsAsId, st.parentId!);
    if (!parent) return [];
    await showOutcome(parent, self, final);
    if (group) {
      const body: GroupDeliveryNotification = { niddDownlinkDataTransfer: self, gmdResults: results };
      return [{ record: parent, body, dataCategories: [NIDD_CATEGORY], schema: SCHEMAS.groupDelivery }];
    }
    const body: DeliveryStatusNotification = { niddDownlinkDataTransfer: self, deliveryStatus: final };
    return [{ record: parent, body, dataCategories: [NIDD_CATEGORY], schema: SCHEMAS.deliveryStatus }];
  }

  /** A transfer the configuration was created with shows its outcome there (its resource is gone). */
  async function showOutcome(parent: StoredResource, self: string, status: string): Promise<void> {
    const entries = (parent.resource as Configuration).niddDownlinkDataTransfers;
    if (!entries?.some(e => e.self === self)) return;
    await s.store.update(NIDD_API, parent.scsAsId, parent.id, current => {
      const list = (current?.resource as Configuration | undefined)?.niddDownlinkDataTransfers;
      if (!current || !list) return undefined;
      const shown = list.map(e => (e.self === self ? { ...Object.fromEntries(Object.entries(e).filter(([k]) => k !== 'self')), deliveryStatus: status } : e));
      return { ...current, resource: { ...current.resource, niddDownlinkDataTransfers: shown }, updatedAtMs: s.now() };
    });
  }

  /** A group's data goes to the UEs that are still members (the group is what the AS was granted). */
  async function stillMember(h: { resource: Transfer }, ue: UeView): Promise<boolean> {
    const id = identifierOf(h.resource)!;
    if (id.kind !== 'externalGroupId') return true;
    return ((await s.network.groupMembers(id.value)) ?? []).some(m => m.handle === ue.handle);
  }

  // Transfers whose configuration is not stored (yet, or any more) are left alone.
  const live = (configurations: ReadonlyMap<string, Configuration>) =>
    lifecycle.all().flatMap(h => {
      const configuration = configurations.get(configurationKey(h.record.scsAsId, h.state.parentId!));
      return configuration ? [{ ...h, configuration }] : [];
    });

  return {
    routes,
    fromConfiguration: async (transfer, configuration, call) => {
      assertFits(transfer, configuration, '/niddDownlinkDataTransfers/0');
      const submitted = await submit(transfer, configuration);
      if (submitted.kind === 'delivered') return { entry: { ...transfer, deliveryStatus: submitted.status } };
      if (submitted.kind === 'refused') return { entry: { ...transfer, deliveryStatus: 'FAILURE_TEMPORARILY_NOT_REACHABLE' } };
      const id = s.newId();
      const resource = { ...transfer, ...submitted.set, self: `${call.self}/downlink-data-deliveries/${id}` };
      const reach = reachOf(transfer);
      await s.store.put(newStoredResource(DELIVERY_STORE, call.req.scsAsId, id, resource, reach, { ...submitted.state, parentId: call.id }, s.now()));
      return { entry: resource, undo: () => s.store.delete(DELIVERY_STORE, call.req.scsAsId, id) };
    },
    deliverTo: async (ue, reachable, configurations) => {
      const pending = live(configurations).filter(h => h.state.waiting.some(w => w.handle === ue.handle));
      if (pending.length === 0 || !(reachable ?? (await net.reachable(ue)))) return [];
      const out: PendingNotification[] = [];
      for (const h of pending) {
        const decision = await stillAuthorized(s, NIDD_API, h.record);
        // No answer now: the data stays buffered for the UE's next wake, within its maximum latency.
        if (decision === 'unavailable') continue;
        if (decision === 'denied') {
          // The grant (or the AS) is gone: none of it is sent, to this UE or any other of the group.
          const everyone = h.state.waiting.map(w => w.handle);
          out.push(...(await settle(h.record, everyone, 'FAILURE')));
          continue;
        }
        if (!(await stillMember(h, ue))) {
          out.push(...(await settle(h.record, [ue.handle], 'FAILURE')));
          continue;
        }
        const status = await net.send(ue, downlinkOf(h.resource, h.configuration), true);
        if (status) out.push(...(await settle(h.record, [ue.handle], status)));
      }
      return out;
    },
    expire: async configurations => {
      const out: PendingNotification[] = [];
      for (const h of live(configurations)) {
        if (h.state.expiresAtMs <= s.now())
          out.push(
            ...(await settle(
              h.record,
              h.state.waiting.map(w => w.handle),
              'FAILURE_TIMEOUT',
            )),
          );
      }
      return out;
    },
    removeOf: async configuration => {
      for (const r of await s.store.list(DELIVERY_STORE, configuration.scsAsId)) {
        if (r.state['parentId'] === configuration.id) await s.store.delete(DELIVERY_STORE, r.scsAsId, r.id);
      }
    },
  };
}
