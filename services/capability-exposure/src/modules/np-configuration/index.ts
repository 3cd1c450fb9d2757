import type { components } from '@aese/t8-openapi/np-configuration';
import { checkNotificationDestination } from '../../domain/notification-destination.js';
import { invalidParam, PROBLEM_CAUSES, T8Problem } from '../../domain/problem.js';
import type { StoredResource } from '../../domain/resource-store.js';
import type { NetworkEvent, UeView } from '../../network/network-adapter.js';
import type { ApiModule, ModuleDefinition, ModuleRoute, ModuleServices, PendingNotification, Reach, RouteRequest } from '../registry.js';
import { resourceLifecycle } from '../toolkit/lifecycle.js';
import type { LifecycleCall, Written } from '../toolkit/lifecycle.js';
import { assertIdentifiersSyntax, identifierTargets, resolveIdentifier } from '../ue-targets.js';
import type { IdentifiedBy, ResolvedUes } from '../ue-targets.js';
import { NP_CONFIGURATION_CAPABILITY, PARAMETERS_APPLIED, SimulatedParameterConfiguration } from './network.js';
import type { AppliedValues, ParameterConfigurationNetwork, UeResult } from './network.js';
import { DEFAULT_PARAMETER_RANGES, outOfRange, parametersOf, withinRange } from './parameters.js';
import type { OutOfRangePolicy, Parameter, Range } from './parameters.js';
import { outOfRangePolicyOf } from './settings.js';

export const NP_CONFIGURATION_API = NP_CONFIGURATION_CAPABILITY;
/** The one data category: the network parameters configured for UEs. */
export const NETWORK_PARAMETERS_CATEGORY = 'network-parameters';
/** ProblemDetails causes of this API, beside the shared ones. */
export const NP_CONFIGURATION_CAUSES = {
  parameterOutOfRange: 'PARAMETER_OUT_OF_RANGE',
} as const;
/** How often configurations past their validityTime are removed. */
export const DEFAULT_EXPIRY_SWEEP_MS = 60_000;

type Configuration = components['schemas']['NpConfiguration'];
type Notification = components['schemas']['ConfigurationNotification'];
type ConfigResult = components['schemas']['ConfigResult'];

const SCHEMAS = {
  configuration: 'NpConfiguration',
  patch: 'NpConfigurationPatch',
  notification: 'ConfigurationNotification',
  list: '#/paths/~1{scsAsId}~1configurations/get/responses/200/content/application~1json/schema',
} as const;
/** Members naming the UE or group, and the target kind each one is; exactly one is present. */
const IDENTIFIERS = { externalId: 'externalId', msisdn: 'msisdn', externalGroupId: 'externalGroupId' } as const;
/** The parameters a configuration is for; the guard time only says when a group's results are reported. */
const NETWORK_PARAMETERS = ['maximumLatency', 'maximumResponseTime', 'suggestedNumberOfDlPackets'] as const;
/** UE addresses would name a UE besides the identifier that authorization decides on. */
const UNSUPPORTED = ['ueIpAddr', 'ueMacAddr'] as const;

interface NpState {
  /** Counts the versions of the configuration: the network's answer to an older one is not reported. */
  readonly revision: number;
}

export interface NpConfigurationOptions {
  /** The network's side; the simulation over `services.network` unless given. */
  readonly network?: ParameterConfigurationNetwork;
  readonly answerDelayMs?: number;
  readonly ranges?: Readonly<Record<Parameter, Range>>;
  /** `adjust` unless told: out-of-range values are brought to the nearest bound and answered. */
  readonly outOfRange?: OutOfRangePolicy;
  readonly expirySweepMs?: number;
}

function identifierOf(body: Configuration): { kind: keyof typeof IDENTIFIERS; value: string } | undefined {
  const present = (Object.keys(IDENTIFIERS) as (keyof typeof IDENTIFIERS)[]).filter(k => typeof body[k] === 'string');
  return present.length === 1 ? { kind: present[0], value: body[present[0]]! } : undefined;
}

/** The patch schema calls the guard time `groupReportGuardTime`; the resource `groupReportingGuardTime`. */
function patchInResourceTerms(body: unknown): unknown {
  if (typeof body !== 'object' || body === null || Array.isArray(body) || !('groupReportGuardTime' in body)) return body;
  const { groupReportGuardTime, ...rest } = body as Record<string, unknown>;
  return { ...rest, groupReportingGuardTime: groupReportGuardTime };
}

/** The ConfigurationNotification of the network's answer: what was applied for whom, and who failed why. */
function notificationOf(self: string, by: IdentifiedBy, perUe: readonly UeResult[], applied: AppliedValues): Notification {
  const named = (ues: readonly UeView[]) => (by === 'msisdn' ? { msisdns: ues.map(u => u.msisdn) } : { externalIds: ues.map(u => u.externalId) });
  const body: Notification = { configuration: self };
  const done = perUe.filter(r => r.applied).map(r => r.ue);
  if (done.length > 0) body.appliedParam = { ...named(done), ...applied };
  const failed = new Map<string, UeView[]>();
  for (const r of perUe) if (!r.applied) failed.set(r.reason, [...(failed.get(r.reason) ?? []), r.ue]);
  if (failed.size > 0) body.configResults = [...failed].map(([resultReason, ues]): ConfigResult => ({ ...named(ues), resultReason }));
  return body;
}

/**
 * 3gpp-network-parameter-configuration (TS 29.122 clauses 4.4.12 and 5.13): an AS suggests the
 * maximum latency, maximum response time and number of downlink packets to buffer for one UE
 * (externalId, msisdn) or an external group. The SCEF checks them against the operator's ranges
 * (rejecting or adjusting, by policy; the answer carries what it accepted) and hands them to the
 * network; the network's answer becomes a ConfigurationNotification with the values the serving
 * nodes applied and, per reason, the UEs that could not take them (a group's after its guard
 * time). Requests carry the `network-parameters` category and the UE or group as target.
 */
export function createNpConfigurationModule(s: ModuleServices, options: NpConfigurationOptions = {}): ApiModule {
  const network = options.network ?? new SimulatedParameterConfiguration(s.network, options.answerDelayMs);
  const ranges = options.ranges ?? DEFAULT_PARAMETER_RANGES;
  const policy = options.outOfRange ?? outOfRangePolicyOf(s.settings);
  let sweeper: NodeJS.Timeout | undefined;

  const inFuture = (time: string): boolean => Date.parse(time) > s.now();
  const reachOf = (body: Configuration): Reach => ({ dataCategories: [NETWORK_PARAMETERS_CATEGORY], targets: identifierTargets(body, IDENTIFIERS) });

  function validate(body: Configuration): void {
    if (!identifierOf(body)) throw invalidParam('/externalId', 'exactly one of externalId, msisdn or externalGroupId is required', PROBLEM_CAUSES.ueIdentifierRequired);
    assertIdentifiersSyntax(body, IDENTIFIERS);
    for (const m of UNSUPPORTED) if (m in body) throw invalidParam(`/${m}`, 'is not supported: name the UE by externalId or msisdn');
    if (body.externalGroupId !== undefined && body.notificationDestination === undefined) {
      throw invalidParam('/notificationDestination', 'is required for a group: the results of its members are notified');
    }
    if (!NETWORK_PARAMETERS.some(p => body[p] !== undefined)) throw invalidParam('/maximumLatency', `names no parameter: one of ${NETWORK_PARAMETERS.join(', ')} is required`);
    if (body.validityTime !== undefined && !inFuture(body.validityTime)) throw invalidParam('/validityTime', 'is not in the future');
  }

  /** Operator policy and where notifications go: only once the request is authorized. */
  async function check(body: Configuration): Promise<void> {
    const violations = policy === 'reject' ? outOfRange(parametersOf(body), ranges) : [];
    if (violations.length > 0) throw new T8Problem(403, NP_CONFIGURATION_CAUSES.parameterOutOfRange, 'parameters are outside the range the operator allows', violations);
    if (body.notificationDestination !== undefined) await checkNotificationDestination(body.notificationDestination, s.destinations);
  }

  async function resolve(body: Configuration): Promise<ResolvedUes> {
    const id = identifierOf(body)!;
    const resolved = await resolveIdentifier(s.network, IDENTIFIERS[id.kind], id.value);
    if (!resolved) throw invalidParam(`/${id.kind}`, 'is not known to the network', PROBLEM_CAUSES.unknownUe);
    return resolved;
  }

  /** Accepts the values (adjusted into range by policy) and hands them to the network. */
  async function configure(body: Configuration, call: LifecycleCall, revision: number): Promise<Written<Configuration, NpState>> {
    await resolve(body);
    const accepted = withinRange(parametersOf(body), ranges);
    const holdMs = body.externalGroupId !== undefined ? (accepted.groupReportingGuardTime ?? 0) * 1000 : 0;
    const withdraw = network.configure({ scsAsId: call.req.scsAsId, configurationId: call.id, revision }, holdMs);
    return { state: { revision }, set: accepted, undo: async () => withdraw() };
  }

  const configurations = resourceLifecycle<Configuration, NpState>({
    services: s,
    api: NP_CONFIGURATION_API,
    schemaFile: 'np-configuration',
    collection: '/{scsAsId}/configurations',
    idParam: 'configurationId',
    schemas: { resource: SCHEMAS.configuration, list: SCHEMAS.list },
    patch: { kind: 'merge-patch', schema: SCHEMAS.patch, answer: 200 },
    immutable: Object.keys(IDENTIFIERS),
    immutableCause: PROBLEM_CAUSES.ueIdentifierImmutable,
    reach: reachOf,
    validate,
    check,
    network: {
      create: (body, call) => configure(body, call, 1),
      update: (next, held, call) => configure(next, call, held.state.revision + 1),
      delete: async held => network.withdraw(held.record.scsAsId, held.record.id),
    },
  });
  const routes: ModuleRoute[] = configurations.routes.map(r =>
    r.method === 'PATCH' && r.document ? { ...r, document: (req: RouteRequest) => r.document!({ ...req, body: patchInResourceTerms(req.body) }) } : r,
  );

  async function remove(record: StoredResource): Promise<void> {
    network.withdraw(record.scsAsId, record.id);
    await s.store.delete(record.api, record.scsAsId, record.id);
  }

  async function onNetworkEvent(event: NetworkEvent): Promise<PendingNotification[]> {
    if (event.kind !== 'capability' || event.capability !== NP_CONFIGURATION_API || event.type !== PARAMETERS_APPLIED) return [];
    const { scsAsId, configurationId, revision } = event.payload;
    if (typeof scsAsId !== 'string' || typeof configurationId !== 'string') return [];
    const record = await s.store.get(NP_CONFIGURATION_API, scsAsId, configurationId);
    if (!record || configurations.held(record).state.revision !== revision) return [];
    const cfg = configurations.held(record).resource;
    if (cfg.validityTime !== undefined && !inFuture(cfg.validityTime)) {
      await remove(record);
      return [];
    }
    if (cfg.notificationDestination === undefined) return [];
    const id = identifierOf(cfg)!;
    const resolved = await resolveIdentifier(s.network, IDENTIFIERS[id.kind], id.value);
    if (!resolved) return [];
    const { perUe, applied } = await network.results(resolved.ues, parametersOf(cfg));
    return [{ record, body: notificationOf(cfg.self!, resolved.identifiedBy, perUe, applied), dataCategories: [NETWORK_PARAMETERS_CATEGORY] }];
  }

  /** Configurations past their validityTime are removed, here and in the network (any replica may; removing twice is harmless). */
  async function sweepExpired(): Promise<void> {
    for (const { record, resource } of configurations.all()) {
      if (resource.validityTime !== undefined && !inFuture(resource.validityTime)) await remove(record);
    }
  }

  return {
    name: NP_CONFIGURATION_API,
    version: 'v1',
    scope: NP_CONFIGURATION_API,
    dataCategories: [NETWORK_PARAMETERS_CATEGORY],
    schemaFile: 'np-configuration',
    schemas: [SCHEMAS.configuration, SCHEMAS.patch, SCHEMAS.notification],
    notificationSchema: SCHEMAS.notification,
    reach: async body => reachOf(body as Configuration),
    routes,
    onNetworkEvent,
    start: async () => {
      sweeper = setInterval(() => {
        // A store that cannot vouch for its copy now is swept at the next turn.
        sweepExpired().catch(() => undefined);
      }, options.expirySweepMs ?? DEFAULT_EXPIRY_SWEEP_MS);
      sweeper.unref();
    },
    stop: async () => {
      clearInterval(sweeper);
      network.stop();
    },
  };
}

/** The NpConfiguration module, as registered. */
export const npConfigurationModule: ModuleDefinition = { name: NP_CONFIGURATION_API, causes: NP_CONFIGURATION_CAUSES, create: s => createNpConfigurationModule(s) };
