import { randomUUID } from 'node:crypto';
import { int, loadConfig, oneOf } from '@aese/config';
import type { Env } from '@aese/config';
import { AeseError } from '@aese/errors';
import { createMeshClient } from '@aese/grpc-client';
import { createMeshServer, mount } from '@aese/grpc-server';
import type { Logger } from '@aese/logger';
import { AuditLog, DEFAULT_STALENESS_BOUND_MS, NatsAuditSink, cryptoAuditSigner, cryptoEventSigner, cryptoEventVerifier, ensureAuditStream, tamperAuditDetail } from '@aese/events';
import { OPERATOR_NAME, spiffeId } from '@aese/pki';
import { PROTO_FILES } from '@aese/protos';
import { AuthorizationServiceClient } from '@aese/protos/authorization/v1';
import { CapabilityExposureServiceService } from '@aese/protos/capability-exposure/v1';
import type { ReuseWithdrawal } from '@aese/protos/capability-exposure/v1';
import { CryptoServiceClient } from '@aese/protos/crypto/v1';
import { connectServiceNats, loadCommonConfig, MESH_ENDPOINTS, portSetting, serviceId, serviceTls, startMeshServiceMetrics, untilReady } from '@aese/runtime';
import { cacheLookups } from '@aese/telemetry';
import type { Stoppable } from '@aese/runtime';
import { loadT8Schemas } from '@aese/t8-openapi';
import type { Decide } from './domain/decision.js';
import { DecisionCache, DEFAULT_DECISION_CACHE_SIZE } from './domain/decision-cache.js';
import type { DecisionCacheStats } from './domain/decision-cache.js';
import { DEFAULT_MAX_BODY_BYTES, Invoker } from './domain/invoke.js';
import { NOTIFICATION_DESTINATION_SETTINGS, notificationDestinationPolicy } from './domain/notification-destination.js';
import type { DestinationPolicy, HostResolver } from './domain/notification-destination.js';
import { NotificationEngine } from './domain/notifications.js';
import { capabilityExposureHandlers } from './handlers.js';
import { KvPolicyVersion } from './kv-policy-version.js';
import { ResourcesUnavailable } from './domain/resource-store.js';
import { KvResourceStore } from './kv-resource-store.js';
import { BUILTIN_MODULES } from './modules/index.js';
import { BDT_SETTINGS } from './modules/bdt/settings.js';
import { DEVICE_TRIGGERING_SETTINGS } from './modules/device-triggering/settings.js';
import { NP_CONFIGURATION_SETTINGS } from './modules/np-configuration/settings.js';
import { MSISDN_LESS_MO_SMS_SETTINGS } from './modules/msisdn-less-mo-sms/settings.js';
import { NIDD_SETTINGS } from './modules/nidd/settings.js';
import { DEFAULT_MAX_RESOURCES_PER_AS, ModuleRegistry } from './modules/registry.js';
import type { ApiModule } from './modules/registry.js';
import { NatsNotificationSink } from './nats-notification-sink.js';
import { followNotificationOutcomes } from './nats-notification-outcomes.js';
import { NatsNetworkFeed } from './network/nats-network-feed.js';
import type { NetworkFeedStats } from './network/nats-network-feed.js';
import type { NetworkAdapter } from './network/network-adapter.js';
import { DEFAULT_SIM_GROUP_COUNT, DEFAULT_SIM_SEED, DEFAULT_SIM_UE_COUNT, SimulatedCore } from './network/simulated-core.js';

export { BUILTIN_MODULES } from './modules/index.js';
/** Default lease of the replica that runs the simulated network; another takes over within about this. */
export const DEFAULT_NETWORK_OWNER_LEASE_MS = 5_000;
/** Default interval of the simulated network's tick. */
export const DEFAULT_SIM_TICK_MS = 5_000;
/** Deadline of one authorization decision; past it the request fails closed with 503. */
export const DEFAULT_DECIDE_DEADLINE_MS = 2_000;

export const CAPABILITY_EXPOSURE_SETTINGS = {
  port: portSetting(MESH_ENDPOINTS['capability-exposure'].port),
  maxBodyBytes: int('CE_MAX_BODY_BYTES', DEFAULT_MAX_BODY_BYTES, 1024, 1024 * 1024),
  decideDeadlineMs: int('CE_DECIDE_DEADLINE_MS', DEFAULT_DECIDE_DEADLINE_MS, 100, 30_000),
  /** Decisions remembered for the policy version in force (0 turns the cache off). */
  decisionCacheSize: int('CE_DECISION_CACHE_SIZE', DEFAULT_DECISION_CACHE_SIZE, 0, 1_000_000),
  /** How long cached decisions and the copy of the subscriptions stay usable while NATS is unreachable. */
  stalenessBoundMs: int('STALENESS_BOUND_MS', DEFAULT_STALENESS_BOUND_MS, 0, 3_600_000),
  ...NOTIFICATION_DESTINATION_SETTINGS,
  networkAdapter: oneOf('NETWORK_ADAPTER', ['simulated'] as const, 'simulated'),
  simSeed: int('SIM_SEED', DEFAULT_SIM_SEED, 0, 2 ** 32 - 1),
  simUeCount: int('SIM_UE_COUNT', DEFAULT_SIM_UE_COUNT, 1, 1_000_000),
  simGroupCount: int('SIM_GROUP_COUNT', DEFAULT_SIM_GROUP_COUNT, 0, 10_000),
  /** 0 turns the automatic tick off (the network then only changes through advance()). */
  simTickMs: int('SIM_TICK_MS', DEFAULT_SIM_TICK_MS, 0, 3_600_000),
  /**
   * `jetstream`: replicas share one network through NATS (each event notified by one replica);
   * `in-process`: this replica's network is its own (one replica only, or tests).
   */
  networkEvents: oneOf('NETWORK_EVENTS', ['jetstream', 'in-process'] as const, 'jetstream'),
  networkOwnerLeaseMs: int('NETWORK_OWNER_LEASE_MS', DEFAULT_NETWORK_OWNER_LEASE_MS, 300, 600_000),
  maxResourcesPerAs: int('MAX_RESOURCES_PER_AS', DEFAULT_MAX_RESOURCES_PER_AS, 1, 1_000_000),
  ...DEVICE_TRIGGERING_SETTINGS,
  ...NP_CONFIGURATION_SETTINGS,
  ...BDT_SETTINGS,
  ...MSISDN_LESS_MO_SMS_SETTINGS,
  ...NIDD_SETTINGS,
} as const;

/** Replaceable dependencies; production passes none. */
export interface CapabilityExposureOverrides {
  /** A decision function instead of the authorization service (tests before it exists). */
  readonly decide?: Decide;
  /** Host name resolution for the SSRF check (tests without DNS). */
  readonly resolveHost?: HostResolver;
}

export interface RunningCapabilityExposure extends Stoppable {
  readonly port: number;
  readonly network: NetworkAdapter;
  /** The simulated core when NETWORK_ADAPTER=simulated (tests drive it with advance()). */
  readonly simulator: SimulatedCore | undefined;
  readonly registry: ModuleRegistry;
  /** What this replica did with the shared network (NETWORK_EVENTS=jetstream), and whether it runs it. */
  networkFeed(): (NetworkFeedStats & { readonly owner: boolean }) | undefined;
  /** Hits and Decide calls of the decision cache; undefined when decisions come from an override. */
  decisionCacheStats(): DecisionCacheStats | undefined;
}

function hostPort(address: string): string[] {
  try {
    const u = new URL(address.includes('://') ? address : `tcp://${address}`);
    return [`${u.hostname.replace(/^\[|\]$/g, '')}:${u.port}`];
  } catch {
    return [];
  }
}

/** Starts the capability-exposure service: T8 modules over the network adapter, on mTLS gRPC. */
export async function startCapabilityExposureService(env: Env, logger: Logger, overrides: CapabilityExposureOverrides = {}): Promise<RunningCapabilityExposure> {
  const common = loadCommonConfig(env);
  const config = loadConfig(CAPABILITY_EXPOSURE_SETTINGS, env);
  const td = common.trustDomain;
  // Parsed before anything starts: a malformed entry stops the process with its variable's name.
  const destinationRules = notificationDestinationPolicy(config, [], overrides.resolveHost);

  const started = performance.now();
  const schemas = await loadT8Schemas();
  logger.info({ loadMs: Math.round(schemas.loadMs), totalMs: Math.round(performance.now() - started) }, 't8 openapi schemas loaded');

  const tls = serviceTls(common.stateDir, 'capability-exposure');
  const authz = overrides.decide
    ? undefined
    : createMeshClient(AuthorizationServiceClient, {
        address: common.addrAuthorization,
        tls,
        serverId: serviceId(td, 'authorization'),
        deadlineMs: config.decideDeadlineMs,
      });
  const remoteDecide: Decide | undefined = overrides.decide
    ? undefined
    : async r => {
        const res = await authz!.decide({
          scsAsId: r.scsAsId,
          api: r.api,
          operation: r.operation,
          dataCategories: [...r.dataCategories],
          targets: [...r.targets],
          pathScsAsId: r.pathScsAsId,
        });
        return {
          allowed: res.allowed,
          obligations: res.obligations.map(o => ({ type: o.type, parameters: { ...o.parameters } })),
          policyVersion: res.policyVersion,
          denyCause: res.denyCause,
        };
      };

  const telemetry = await startMeshServiceMetrics(common, 'capability-exposure');
  const nc = await connectServiceNats(common, 'capability-exposure', logger, telemetry.meter);
  // Only for signing the audit chain's checkpoints.
  const crypto = createMeshClient(CryptoServiceClient, { address: common.addrCrypto, tls, serverId: serviceId(td, 'crypto') });
  const cleanup: (() => Promise<void> | void)[] = [async () => nc.drain(), () => authz?.close(), () => crypto.close(), () => telemetry.stop()];
  try {
    await ensureAuditStream(nc);
    const audit = new AuditLog('capability-exposure', new NatsAuditSink(nc), err => logger.error({ err }, 'audit event not written'), {
      signer: cryptoAuditSigner(crypto),
    });
    cleanup.unshift(() => audit.flush());
    // Reusable answers given on the Invoke streams are withdrawn there (set once the server is up).
    let withdraw: (withdrawal: ReuseWithdrawal) => void = () => undefined;
    const withdrawAll: ReuseWithdrawal = { all: true, scsAsIds: [] };
    // Decisions of the authorization service are cached per policy version, emptied on push; the
    // same version decides which answers may be reused.
    let cache: DecisionCache | undefined;
    const onPolicyChange = (): void => {
      cache?.clear();
      withdraw(withdrawAll);
    };
    const versions = remoteDecide ? await KvPolicyVersion.start(nc, onPolicyChange, logger, config.stalenessBoundMs) : undefined;
    if (versions) {
      cleanup.unshift(() => versions.stop());
      if (config.decisionCacheSize > 0) cache = new DecisionCache(remoteDecide!, versions, config.decisionCacheSize, cacheLookups(telemetry.meter, 'capability-exposure.decision'));
    }
    const decide: Decide = overrides.decide ?? cache?.decide ?? remoteDecide!;
    // Subscriptions are signed records: written signed by this service, checked as they load;
    // refused once the copy is older than the staleness bound, until it caught up again.
    const store = await KvResourceStore.open(
      nc,
      {
        signer: cryptoEventSigner(crypto),
        verifier: cryptoEventVerifier(crypto),
        logger,
        onTampered: finding => audit.record({ actor: 'unknown', action: 'subscriptions.integrity', decision: 'deny', reason: finding.reason, detail: tamperAuditDetail(finding) }),
      },
      config.stalenessBoundMs,
    );
    cleanup.unshift(() => store.close());
    store.onChange(scsAsId => withdraw(scsAsId === undefined ? withdrawAll : { all: false, scsAsIds: [scsAsId] }));
    store.onState(() => withdraw(withdrawAll));
    // Notification requests are signed through crypto: the edge delivers nothing else.
    const sink = await NatsNotificationSink.open(nc, cryptoEventSigner(crypto));
    const shared = config.networkEvents === 'jetstream';
    const simulator = new SimulatedCore({
      seed: config.simSeed,
      ueCount: config.simUeCount,
      groupCount: config.simGroupCount,
      // Shared: the feed ticks it while this replica owns the network.
      tickMs: shared ? 0 : config.simTickMs,
      onListenerError: err => {
        // Expected while NATS is unreachable (the store says so once); the simulator's event is not kept.
        if (err instanceof ResourcesUnavailable) logger.warn({ reason: err.message }, 'network event not matched: the subscriptions copy is stale');
        else logger.error({ err }, shared ? 'network event not published' : 'network event handling failed');
      },
    });
    cleanup.unshift(() => simulator.stop());
    const feed = shared
      ? await NatsNetworkFeed.open({
          nc,
          core: simulator,
          signer: cryptoEventSigner(crypto),
          verifier: cryptoEventVerifier(crypto),
          logger,
          audit,
          tickMs: config.simTickMs,
          leaseMs: config.networkOwnerLeaseMs,
        })
      : undefined;
    if (feed) cleanup.unshift(() => feed.stop());
    const network: NetworkAdapter = feed ?? simulator;
    const meshEndpoints = [
      common.addrAuthentication,
      common.addrAuthorization,
      common.addrReplayGuard,
      common.addrCrypto,
      common.addrCapabilityExposure,
      ...common.natsUrl.split(','),
    ].flatMap(hostPort);
    const destinations: DestinationPolicy = { ...destinationRules, meshEndpoints };

    const registry = new ModuleRegistry();
    const engine: NotificationEngine = new NotificationEngine({
      modules: () => registry.list(),
      decide,
      sink,
      store,
      schemas,
      now: Date.now,
      newId: randomUUID,
      onDrop: (reason, record, err) => logger.warn({ reason, api: record.api, scsAsId: record.scsAsId, subscriptionId: record.id, err }, 'notification dropped'),
      onLimitReached: record => logger.debug({ api: record.api, scsAsId: record.scsAsId, subscriptionId: record.id }, 'event not reported: every report left is sent or in flight'),
    });
    // The edge's signed delivery outcomes: a report counts once it was delivered.
    const outcomes = await followNotificationOutcomes({ nc, verifier: cryptoEventVerifier(crypto), logger, audit, settle: o => engine.settle(o) });
    cleanup.unshift(() => outcomes.stop());
    const modules: ApiModule[] = BUILTIN_MODULES.map(d =>
      d.create({
        network,
        store,
        schemas,
        destinations,
        now: Date.now,
        newId: randomUUID,
        sendTestNotification: r => engine.sendTest(r),
        decide,
        settings: config,
        maxResourcesPerAs: config.maxResourcesPerAs,
      }),
    );
    for (const m of modules) {
      registry.register(m);
      // Compile every schema a route or notification uses now, so no request pays for it.
      for (const r of m.routes) {
        if (r.request) schemas.validator(m.schemaFile, r.request.schema, 'request');
        for (const s of Object.values(r.responses)) if (s !== undefined) schemas.validator(m.schemaFile, s, 'response');
      }
      for (const s of m.schemas) schemas.validator(m.schemaFile, s, 'request');
      if (m.notificationSchema !== undefined) schemas.validator(m.schemaFile, m.notificationSchema, 'response');
    }
    // Their own timers (a simulated capability's pending work) stop before the store and NATS close.
    cleanup.unshift(async () => {
      for (const m of modules) await m.stop?.();
    });
    cleanup.unshift(network.subscribe(e => engine.handle(e)));

    const invoker = new Invoker({
      registry,
      schemas,
      store,
      decide,
      maxBodyBytes: config.maxBodyBytes,
      onError: (err, where) => logger.error({ err, where }, 'invoke failed'),
      onRefused: r => audit.record({ actor: r.scsAsId, action: 't8.invoke', decision: 'deny', reason: r.cause, detail: { status: r.status, ...(r.api ? { api: r.api } : {}) } }),
      // Withdrawn above when the policy, a resource or the copies' freshness changes.
      reuse: versions && { permits: v => store.ready && store.fresh && versions.current() === v },
    });
    const server = createMeshServer({
      name: 'capability-exposure',
      tls,
      logger,
      protoFiles: [PROTO_FILES.capabilityExposure],
      serviceNames: ['aese.capability_exposure.v1.CapabilityExposureService'],
      services: [
        mount({
          definition: CapabilityExposureServiceService,
          handlers: capabilityExposureHandlers(registry, invoker, logger, network),
          allowedCallers: {
            listApis: [serviceId(td, 'edge'), spiffeId(td, 'operator', OPERATOR_NAME)],
            invoke: [serviceId(td, 'edge')],
            // UE identifiers: the operator's, to write grants; no service needs the list.
            listNetworkIdentities: [spiffeId(td, 'operator', OPERATOR_NAME)],
          },
          // The edge's hot path: Invoke multiplexed on one stream, same handler and allow-list.
          streams: { invokeStream: 'invoke' },
        }),
      ],
    });
    withdraw = withdrawal => void server.push('invokeStream', { answers: [], withdrawal });
    schemas.validator('common-data', 'ProblemDetails', 'response');
    schemas.validator('common-data', 'TestNotification', 'response');
    const port = await server.listen(common.listenHost, config.port);
    logger.info(
      { port, modules: registry.list().map(m => m.name), tickMs: config.simTickMs, startMs: Math.round(performance.now() - started) },
      'capability-exposure service listening',
    );
    // Subscriptions and notification requests are signed through crypto, which may start later:
    // NOT_SERVING until its keys answer and the subscriptions are checked.
    const startedModules = new Set<ApiModule>();
    const readiness = untilReady({
      logger,
      steps: [
        { what: 'the crypto service keys', run: async () => void (await crypto.getJwks({})) },
        {
          // Modules restore their network state from the subscriptions, so they start once those are checked.
          what: 'the subscriptions',
          run: async () => {
            if ((await store.settled()) !== 'READY') throw new AeseError('UNAVAILABLE', 'the subscriptions bucket failed its integrity check');
            for (const m of modules) {
              if (startedModules.has(m)) continue;
              await m.start?.();
              startedModules.add(m);
            }
          },
        },
      ],
      onReady: () => server.setServing(store.ready && store.fresh),
    });
    // Tampering found later turns the service NOT_SERVING at once; a stale copy until it caught up.
    store.onState(() => server.setServing(readiness.ready && store.ready && store.fresh));
    cleanup.unshift(() => readiness.stop());
    return {
      port,
      whenReady: readiness.whenReady,
      network,
      simulator,
      registry,
      networkFeed: () => (feed ? { ...feed.stats(), owner: feed.owner() } : undefined),
      decisionCacheStats: () => cache?.stats(),
      stop: async () => {
        // The network first: another replica runs it while this one drains its calls.
        await feed?.stop();
        await server.shutdown();
        for (const c of cleanup) await c();
      },
    };
  } catch (err) {
    for (const c of cleanup) await c();
    throw err;
  }
}
