import { int, loadConfig } from '@aese/config';
import type { Env } from '@aese/config';
import { AuditLog, cryptoAuditSigner, cryptoEventSigner, cryptoEventVerifier, ensureAuditStream, NatsAuditSink } from '@aese/events';
import { createMeshClient } from '@aese/grpc-client';
import { createMeshServer, mount } from '@aese/grpc-server';
import type { Logger } from '@aese/logger';
import type { NatsConnection } from '@aese/nats';
import { OPERATOR_NAME, spiffeId } from '@aese/pki';
import { PROTO_FILES } from '@aese/protos';
import { AuthorizationServiceService } from '@aese/protos/authorization/v1';
import { CryptoServiceClient } from '@aese/protos/crypto/v1';
import { connectServiceNats, loadCommonConfig, MESH_ENDPOINTS, portSetting, serviceId, serviceTls, startMeshServiceMetrics, untilReady } from '@aese/runtime';
import { cacheLookups, DecisionMetrics } from '@aese/telemetry';
import type { Stoppable } from '@aese/runtime';
import { readShippedDefaults, readShippedSchema } from './default-policies.js';
import { CedarEvaluator } from './domain/cedar-evaluator.js';
import { PolicyAdministration } from './domain/policy-administration.js';
import { PolicyCompiler } from './domain/policy-bundle.js';
import { DEFAULT_DECISION_CACHE_SIZE, PolicyDecisionPoint } from './domain/policy-decision-point.js';
import { authorizationHandlers } from './handlers.js';
import { KvPolicyStore } from './kv-policy-store.js';

export { DEFAULT_DECISION_CACHE_SIZE };

/** Settings of the authorization service. */
export const AUTHORIZATION_SETTINGS = {
  port: portSetting(MESH_ENDPOINTS.authorization.port),
  /** Decisions remembered per policy version (0 turns the cache off). */
  decisionCacheSize: int('AUTHZ_DECISION_CACHE_SIZE', DEFAULT_DECISION_CACHE_SIZE, 0, 1_000_000),
} as const;

export interface RunningService extends Stoppable {
  readonly port: number;
}

/**
 * Starts the authorization service: Cedar policies and per-AS grants from JetStream KV, each
 * version signed with an event-signing key of the crypto service (the shipped defaults become
 * version 1 of an empty store), decisions for the edge and capability-exposure, policy
 * administration for the operator, and an audit event for every denial and policy change.
 */
export async function startAuthorizationService(env: Env, logger: Logger): Promise<RunningService> {
  const common = loadCommonConfig(env);
  const config = loadConfig(AUTHORIZATION_SETTINGS, env);
  const td = common.trustDomain;
  const tls = serviceTls(common.stateDir, 'authorization');
  const schema = readShippedSchema();
  const compiler = new PolicyCompiler(schema);
  // Policy versions are signed and verified with the crypto service's event-signing keys.
  const crypto = createMeshClient(CryptoServiceClient, { address: common.addrCrypto, tls, serverId: serviceId(td, 'crypto') });
  const signer = cryptoEventSigner(crypto);
  const verifier = cryptoEventVerifier(crypto);
  const telemetry = await startMeshServiceMetrics(common, 'authorization');
  let nc: NatsConnection;
  try {
    nc = await connectServiceNats(common, 'authorization', logger, telemetry.meter);
  } catch (err: unknown) {
    crypto.close();
    throw err;
  }
  const audit = new AuditLog('authorization', new NatsAuditSink(nc), err => logger.warn({ err }, 'audit event not written'), { signer: cryptoAuditSigner(crypto) });
  const pdp = new PolicyDecisionPoint(new CedarEvaluator(schema), logger, audit, config.decisionCacheSize, {
    decisions: new DecisionMetrics(telemetry.meter),
    cache: cacheLookups(telemetry.meter, 'authorization.decision'),
  });
  let admin: PolicyAdministration;
  try {
    await ensureAuditStream(nc);
    const store = await KvPolicyStore.open(nc, logger);
    admin = new PolicyAdministration({ store, compiler, pdp, signer, verifier, audit, logger });
  } catch (err: unknown) {
    crypto.close();
    await nc.drain();
    throw err;
  }
  const operator = spiffeId(td, 'operator', OPERATOR_NAME);
  const server = createMeshServer({
    name: 'authorization',
    tls,
    logger,
    protoFiles: [PROTO_FILES.authorization],
    serviceNames: ['aese.authorization.v1.AuthorizationService'],
    services: [
      mount({
        definition: AuthorizationServiceService,
        handlers: authorizationHandlers(pdp, admin),
        allowedCallers: {
          decide: [serviceId(td, 'edge'), serviceId(td, 'capability-exposure')],
          applyPolicies: [operator],
          getPolicies: [operator],
        },
      }),
    ],
  });
  const port = await server.listen(common.listenHost, config.port);
  logger.info({ port }, 'authorization service listening');
  // The policy versions are verified (and the shipped defaults signed) through crypto, which may
  // start later: NOT_SERVING, retrying, until the version in force is loaded.
  const readiness = untilReady({
    logger,
    steps: [
      { what: 'the crypto service keys', run: async () => void (await crypto.getJwks({})) },
      {
        what: 'the policy versions',
        run: async () => {
          try {
            await admin.start(readShippedDefaults());
          } catch (err) {
            admin.stop();
            throw err;
          }
        },
      },
    ],
    onReady: () => {
      server.setServing(true);
      logger.info({ policyVersion: pdp.current?.version ?? null }, 'authorization service serving');
    },
  });
  return {
    port,
    whenReady: readiness.whenReady,
    stop: async () => {
      readiness.stop();
      await server.shutdown();
      admin.stop();
      await audit.flush();
      crypto.close();
      await nc.drain();
      await telemetry.stop();
    },
  };
}
