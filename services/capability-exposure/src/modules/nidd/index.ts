import { checkNotificationDestination } from '../../domain/notification-destination.js';
import { invalidParam, PROBLEM_CAUSES } from '../../domain/problem.js';
import type { StoredResource } from '../../domain/resource-store.js';
import type { NetworkEvent, UeView } from '../../network/network-adapter.js';
import type { ApiModule, ModuleDefinition, ModuleServices, PendingNotification, Reach, RouteRequest } from '../registry.js';
import { resourceLifecycle } from '../toolkit/lifecycle.js';
import type { Held } from '../toolkit/lifecycle.js';
import { assertIdentifiersSyntax, identifierTargets, resolveIdentifier } from '../ue-targets.js';
import type { IdentifiedBy } from '../ue-targets.js';
import { configurationKey, createDeliveries } from './deliveries.js';
import { assertData, assertPdnOption, assertScefMembers, identifierOf, IDENTIFIERS, NIDD_API, NIDD_CATEGORY, NIDD_CAUSES, sameIdentifier, SCHEMAS } from './model.js';
import type { Configuration, ConfigurationStatusNotification, UplinkNotification } from './model.js';
import { readUplink, SimulatedNiddNetwork } from './network.js';
import type { ConfigurationRef, NiddNetwork, UplinkData } from './network.js';

export { NIDD_API, NIDD_CATEGORY, NIDD_CAUSES } from './model.js';
export { uplinkEvent } from './network.js';

/** Members of a configuration only the SCEF writes (and, once it exists, the transfers it lists). */
const SCEF_MEMBERS = ['status', 'maximumPacketSize'] as const;
/** Members of a transfer inside a configuration create that only the SCEF writes. */
const TRANSFER_SCEF_MEMBERS = ['self', 'deliveryStatus', 'requestedRetransmissionTime'] as const;

interface ConfigurationState {
  readonly identifiedBy: IdentifiedBy;
}

/**
 * 3gpp-nidd (TS 29.122 clauses 4.4.5 and 5.6): non-IP data delivery between an AS and a UE or
 * the UEs of a group, through the SCEF. A NIDD configuration (201, status ACTIVE, the network's
 * maximumPacketSize) opens the path until its `duration`; downlink data goes through its
 * downlink-data-deliveries (see deliveries.ts); data a UE sends arrives as a
 * NiddUplinkDataNotification at the configuration's notificationDestination, and the end of a
 * configuration's duration as a NiddConfigurationStatusNotification (TERMINATED). RDS dynamic port
 * management (rds-ports) is not served.
 *
 * Uplink data belongs to one configuration (the T6a connection of that UE with that SCS/AS) and
 * goes to it alone, never to every AS configured for the UE. A group configuration covers the
 * group's members as the network has them now, for uplink and for its end alike: a UE that left
 * the group is no longer the business of the AS the group was granted to.
 */
function createNiddModule(s: ModuleServices, net: NiddNetwork = new SimulatedNiddNetwork(s.network)): ApiModule {
  const deliveries = createDeliveries(s, net);

  const reachOf = (body: Configuration): Reach => ({ dataCategories: [NIDD_CATEGORY], targets: identifierTargets(body, IDENTIFIERS) });

  function validate(body: Configuration, req: RouteRequest): void {
    const existing = req.existing?.resource as Configuration | undefined;
    const id = identifierOf(body);
    if (!id) throw invalidParam('/externalId', 'exactly one of externalId, msisdn or externalGroupId is required', PROBLEM_CAUSES.ueIdentifierRequired);
    assertIdentifiersSyntax(body, IDENTIFIERS);
    assertScefMembers(body, SCEF_MEMBERS, existing);
    assertPdnOption('/pdnEstablishmentOption', body.pdnEstablishmentOption);
    if (body.duration !== undefined && body.duration !== existing?.duration && Date.parse(body.duration) <= s.now()) throw invalidParam('/duration', 'must be in the future');
    if (existing) {
      // Once created, the transfers a configuration lists are the SCEF's.
      assertScefMembers(body, ['niddDownlinkDataTransfers'], existing);
      return;
    }
    const transfers = body.niddDownlinkDataTransfers ?? [];
    if (transfers.length > 1) throw invalidParam('/niddDownlinkDataTransfers', 'a create carries at most one transfer');
    for (const t of transfers) {
      const at = '/niddDownlinkDataTransfers/0';
      assertScefMembers(t, TRANSFER_SCEF_MEMBERS, undefined, at);
      const tid = identifierOf(t);
      if (!sameIdentifier(tid, id)) throw invalidParam(`${at}/${tid?.kind ?? id.kind}`, 'must name the UE or group of the configuration');
      assertData(`${at}/data`, t.data);
      assertPdnOption(`${at}/pdnEstablishmentOption`, t.pdnEstablishmentOption);
    }
  }

  async function resolve(body: Configuration): Promise<ConfigurationState> {
    const id = identifierOf(body)!;
    const resolved = await resolveIdentifier(s.network, id.kind, id.value);
    if (!resolved || resolved.ues.length === 0) throw invalidParam(`/${id.kind}`, 'is not known to the network', PROBLEM_CAUSES.unknownUe);
    return { identifiedBy: resolved.identifiedBy };
  }

  const configurations = resourceLifecycle<Configuration, ConfigurationState>({
    services: s,
    api: NIDD_API,
    schemaFile: 'nidd',
    collection: '/{scsAsId}/configurations',
    idParam: 'configurationId',
    schemas: { resource: SCHEMAS.configuration, list: SCHEMAS.configurations },
    replace: false,
    patch: { kind: 'merge-patch', schema: SCHEMAS.configurationPatch, answer: 200 },
    immutable: Object.keys(IDENTIFIERS),
    reach: reachOf,
    validate,
    check: body => checkNotificationDestination(body.notificationDestination, s.destinations),
    network: {
      create: async (body, call) => {
        const state = await resolve(body);
        const set: Partial<Configuration> = { status: 'ACTIVE', maximumPacketSize: net.maximumPacketSizeBits };
        const transfer = body.niddDownlinkDataTransfers?.[0];
        if (!transfer) return { state, set };
        const sent = await deliveries.fromConfiguration(transfer, { ...body, ...set }, call);
        return { state, set: { ...set, niddDownlinkDataTransfers: [sent.entry] }, ...(sent.undo ? { undo: sent.undo } : {}) };
      },
      delete: held => deliveries.removeOf(held.record),
    },
  });

  const ended = (h: Held<Configuration, ConfigurationState>): boolean => h.resource.duration !== undefined && Date.parse(h.resource.duration) <= s.now();

  /** The identifier a notification names a UE by: the configuration's kind (a group's members by externalId). */
  const named = (held: Held<Configuration, ConfigurationState>, ue: { externalId: string; msisdn: string }) =>
    held.state.identifiedBy === 'msisdn' ? { msisdn: ue.msisdn } : { externalId: ue.externalId };

  /** Whether a configuration covers a UE now: its UE, or a current member of its group. */
  async function covers(h: Held<Configuration, ConfigurationState>, ue: UeView): Promise<boolean> {
    const id = identifierOf(h.resource)!;
    const resolved = await resolveIdentifier(s.network, id.kind, id.value);
    return resolved?.ues.some(u => u.handle === ue.handle) ?? false;
  }

  /** The live configurations covering a UE, each the connection of one AS's application on it. */
  async function configurationsOf(ue: UeView): Promise<ConfigurationRef[]> {
    const out: ConfigurationRef[] = [];
    for (const h of configurations.all()) if (!ended(h) && (await covers(h, ue))) out.push({ scsAsId: h.record.scsAsId, configurationId: h.record.id });
    return out;
  }

  /** The notification of uplink data to the one configuration it was sent on, if that still exists and covers the UE. */
  async function uplinkNotifications(uplink: UplinkData): Promise<PendingNotification[]> {
    const record = await s.store.get(NIDD_API, uplink.scsAsId, uplink.configurationId);
    if (!record || record.scsAsId !== uplink.scsAsId || record.id !== uplink.configurationId) return [];
    const h = configurations.held(record);
    const ue = await s.network.findUe({ externalId: uplink.externalId });
    if (!ue || ended(h) || !(await covers(h, ue))) return [];
    const body: UplinkNotification = { niddConfiguration: h.resource.self!, ...named(h, ue), data: uplink.data };
    return [{ record: h.record, body, dataCategories: [NIDD_CATEGORY] }];
  }

  /** Ends the configurations whose duration is over: TERMINATED for each of their UEs, and their buffered data dropped. */
  async function endExpired(all: readonly Held<Configuration, ConfigurationState>[]): Promise<PendingNotification[]> {
    const out: PendingNotification[] = [];
    for (const h of all) {
      if (!ended(h)) continue;
      const taken: { record?: StoredResource } = {};
      await s.store.update(NIDD_API, h.record.scsAsId, h.record.id, current => {
        taken.record = current;
        return current ? null : undefined;
      });
      if (!taken.record) continue;
      await deliveries.removeOf(taken.record);
      const id = identifierOf(h.resource)!;
      const ues = id.kind === 'externalGroupId' ? ((await s.network.groupMembers(id.value)) ?? []).map(ue => ({ externalId: ue.externalId })) : [{ [id.kind]: id.value }];
      for (const who of ues) {
        const body: ConfigurationStatusNotification = { niddConfiguration: h.resource.self!, ...who, status: 'TERMINATED' };
        out.push({ record: taken.record, body, dataCategories: [NIDD_CATEGORY], schema: SCHEMAS.configurationStatus });
      }
    }
    return out;
  }

  async function onNetworkEvent(event: NetworkEvent): Promise<PendingNotification[]> {
    if (event.kind === 'capability') {
      const uplink = readUplink(event, net.maximumPacketSizeBits / 8);
      return uplink ? uplinkNotifications(uplink) : [];
    }
    const all = configurations.all();
    if (event.kind === 'location' || event.kind === 'reachability') await net.afterChange(event, configurationsOf);
    const live = new Map(all.map(h => [configurationKey(h.record.scsAsId, h.record.id), h.resource]));
    const out = [...(await endExpired(all)), ...(await deliveries.expire(live))];
    if (event.kind === 'location' || event.kind === 'reachability') {
      out.push(...(await deliveries.deliverTo(event.ue, event.kind === 'reachability' ? event.reachable : undefined, live)));
    }
    return out;
  }

  return {
    name: NIDD_API,
    version: 'v1',
    scope: NIDD_API,
    dataCategories: [NIDD_CATEGORY],
    schemaFile: 'nidd',
    schemas: Object.values(SCHEMAS).filter(x => !x.startsWith('#')),
    notificationSchema: SCHEMAS.uplink,
    reach: async body => reachOf(body as Configuration),
    routes: [...configurations.routes, ...deliveries.routes],
    onNetworkEvent,
  };
}

/** The NIDD module, as registered. */
export const niddModule: ModuleDefinition = { name: NIDD_API, causes: NIDD_CAUSES, create: s => createNiddModule(s) };
