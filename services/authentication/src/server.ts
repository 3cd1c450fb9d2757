import type { JWK } from 'jose';
import { int, loadConfig, str } from '@aese/config';
import type { Env } from '@aese/config';
import { createMeshClient } from '@aese/grpc-client';
import { createMeshServer, mount } from '@aese/grpc-server';
import type { Logger } from '@aese/logger';
import { connectNats } from '@aese/nats';
import {
  AuditLog,
  CONTROL_SUBJECTS,
  ControlConsumer,
  ControlPublisher,
  DEFAULT_STALENESS_BOUND_MS,
  ensureAuditStream,
  ensureControlStream,
  eventSigningJwks,
  Freshness,
  JwksEventVerifier,
  NatsAuditSink,
} from '@aese/events';
import { OPERATOR_NAME, spiffeId } from '@aese/pki';
import { PROTO_FILES } from '@aese/protos';
import { AuthenticationServiceService } from '@aese/protos/authentication/v1';
import { KeyPurpose } from '@aese/protos/common/v1';
import { ApplicationServerChanged } from '@aese/protos/events/v1';
import { CryptoServiceClient, KeyStatus } from '@aese/protos/crypto/v1';
import { DEFAULT_EDGE_PORT, loadCommonConfig, MESH_ENDPOINTS, portSetting, serviceId, serviceTls } from '@aese/runtime';
import type { Stoppable } from '@aese/runtime';
import { Registry } from './domain/registry.js';

import { MAX_TOKEN_LIFETIME_S, TokenService } from './domain/tokens.js';
import { encodeRevocation, followRevocations, REVOCATION_EVENT_TYPE } from '@aese/revocation';
import { authenticationHandlers } from './handlers.js';
import { KvRegistryStore } from './kv-registry-store.js';

/** Token lifetime when none is configured: well under the 10-minute ceiling. */
export const DEFAULT_TOKEN_LIFETIME_S = 300;

export const AUTHENTICATION_SETTINGS = {
  port: portSetting(MESH_ENDPOINTS.authentication.port),
  issuer: str('AESE_ISSUER', `https://localhost:${DEFAULT_EDGE_PORT}`),
  tokenLifetimeS: int('TOKEN_LIFETIME_S', DEFAULT_TOKEN_LIFETIME_S, 1, MAX_TOKEN_LIFETIME_S),
  stalenessBoundMs: int('STALENESS_BOUND_MS', DEFAULT_STALENESS_BOUND_MS, 0, 3_600_000),
} as const;

export interface RunningService extends Stoppable {
  readonly port: number;
}

/** Starts the authentication service: AS registry over KV, tokens signed through crypto. */
export async function startAuthenticationService(env: Env, logger: Logger): Promise<RunningService> {
  const common = loadCommonConfig(env);
  const config = loadConfig(AUTHENTICATION_SETTINGS, env);
  const td = common.trustDomain;
  const tls = serviceTls(common.stateDir, 'authentication');
  const crypto = createMeshClient(CryptoServiceClient, {
    address: common.addrCrypto,
    tls,
    serverId: serviceId(td, 'crypto'),
  });
  const nc = await connectNats({ servers: common.natsUrl, name: 'authentication', logger, replicas: common.natsReplicas });
  await ensureControlStream(nc);
  await ensureAuditStream(nc);
  const audit = new AuditLog('authentication', new NatsAuditSink(nc), err => logger.error({ err }, 'audit write failed'));
  const eventVerifier = new JwksEventVerifier(async () => eventSigningJwks((await crypto.getJwks({})).keys));
  const eventSigner = {
    sign: async (data: Uint8Array) => {
      const out = await crypto.sign({ purpose: KeyPurpose.KEY_PURPOSE_EVENT_SIGNING, data: Buffer.from(data) });
      return { kid: out.kid, signature: out.signature };
    },
  };
  const publisher = new ControlPublisher(nc, eventSigner);
  const operatorId = spiffeId(td, 'operator', OPERATOR_NAME);
  const registryStore = await KvRegistryStore.open(nc, {
    signer: eventSigner,
    verifier: eventVerifier,
    onRejected: (key, reason) => {
      logger.warn({ reason }, 'registry entry ignored');
      audit.record({ actor: 'unknown', action: 'registry.entry', decision: 'deny', reason, detail: { key } });
    },
  });
  const registry = new Registry(registryStore, async as => {
    const payload = ApplicationServerChanged.encode({ scsAsId: as.scsAsId, status: as.status, changedAtMs: as.updatedAtMs }).finish();
    const version = await publisher.publish(CONTROL_SUBJECTS.registry, 'aese.events.v1.ApplicationServerChanged', payload);
    audit.record({ actor: operatorId, action: 'registry.change', decision: 'change', reason: as.status, detail: { scsAsId: as.scsAsId, version } });
  });
  const { list: revocations, consumer: revocationFeed } = followRevocations({ nc, verifier: eventVerifier, logger, audit });
  // A rotation elsewhere: refresh the token key set now rather than on the next unknown kid.
  const keyFeed = new ControlConsumer(nc, {
    subject: CONTROL_SUBJECTS.keys,
    verifier: eventVerifier,
    apply: async () => {
      await tokens.refresh().catch((err: unknown) => logger.warn({ err }, 'key refresh failed'));
    },
    onRejected: (reason, e) => {
      logger.warn({ reason, version: e.version, kid: e.kid }, 'control event ignored');
      audit.record({ actor: 'unknown', action: 'control.keys', decision: 'deny', reason, detail: { version: e.version } });
    },
  });
  const freshness = new Freshness(nc, [revocationFeed, keyFeed], config.stalenessBoundMs);
  const tokens = new TokenService({
    issuer: config.issuer,
    lifetimeS: config.tokenLifetimeS,
    trustDomain: td,
    registry,
    revocations,
    isFresh: () => freshness.isFresh(),
    signer: {
      sign: async data => {
        const out = await crypto.sign({ purpose: KeyPurpose.KEY_PURPOSE_ACCESS_TOKEN, data: Buffer.from(data) });
        return { kid: out.kid, alg: out.algorithm === 2 ? 'EdDSA' : 'ES256', signature: out.signature };
      },
    },
    keys: {
      fetch: async () => {
        const { keys } = await crypto.getJwks({});
        return keys
          .filter(k => k.purpose === KeyPurpose.KEY_PURPOSE_ACCESS_TOKEN)
          .sort((a, b) => Number(b.status === KeyStatus.KEY_STATUS_ACTIVE) - Number(a.status === KeyStatus.KEY_STATUS_ACTIVE) || b.createdAtMs - a.createdAtMs)
          .map(k => JSON.parse(k.jwkJson) as JWK);
      },
    },
  });
  const edge = serviceId(td, 'edge');
  const server = createMeshServer({
    name: 'authentication',
    tls,
    logger,
    protoFiles: [PROTO_FILES.authentication],
    serviceNames: ['aese.authentication.v1.AuthenticationService'],
    services: [
      mount({
        definition: AuthenticationServiceService,
        handlers: authenticationHandlers(registry, tokens, async (r, reason, actor) => {
          const version = await publisher.publish(CONTROL_SUBJECTS.revocations, REVOCATION_EVENT_TYPE, encodeRevocation(r, Date.now()));
          revocations.apply(r);
          audit.record({ actor, action: `revoke.${r.kind}`, decision: 'change', reason: reason || 'revoked', detail: { version } });
          return version;
        }),
        allowedCallers: {
          resolveClient: [edge],
          issueToken: [edge],
          verifyToken: [edge],
          getApplicationServer: [edge],
          registerApplicationServer: [operatorId],
          listApplicationServers: [operatorId],
          suspendApplicationServer: [operatorId],
          revoke: [operatorId],
          revokeOwnToken: [edge],
        },
      }),
    ],
  });
  const port = await server.listen(common.listenHost, config.port);
  // Serve only once every revocation published so far has been applied.
  await revocationFeed.start();
  await keyFeed.start();
  server.setServing(freshness.isFresh());
  freshness.onChange(fresh => server.setServing(fresh));
  logger.info({ port }, 'authentication service serving');
  return {
    port,
    stop: async () => {
      await server.shutdown();
      revocationFeed.stop();
      keyFeed.stop();
      registryStore.stop();
      await audit.flush();
      crypto.close();
      await nc.drain();
    },
  };
}
