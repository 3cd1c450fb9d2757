import type { JWK } from 'jose';
import { int, loadConfig, str } from '@aese/config';
import type { Env } from '@aese/config';
import { AeseError } from '@aese/errors';
import { createMeshClient } from '@aese/grpc-client';
import { createMeshServer, mount } from '@aese/grpc-server';
import type { Logger } from '@aese/logger';
import {
  AuditLog,
  CONTROL_SUBJECTS,
  ControlConsumer,
  ControlPublisher,
  cryptoAuditSigner,
  cryptoEventSigner,
  cryptoEventVerifier,
  DEFAULT_STALENESS_BOUND_MS,
  ensureAuditStream,
  ensureControlStream,
  Freshness,
  NatsAuditSink,
  tamperAuditDetail,
} from '@aese/events';
import { OPERATOR_NAME, spiffeId } from '@aese/pki';
import { PROTO_FILES } from '@aese/protos';
import { AuthenticationServiceService } from '@aese/protos/authentication/v1';
import { KeyPurpose } from '@aese/protos/common/v1';
import { ApplicationServerChanged } from '@aese/protos/events/v1';
import { CryptoServiceClient, KeyStatus } from '@aese/protos/crypto/v1';
import { DEFAULT_EDGE_PORT, connectServiceNats, loadCommonConfig, MESH_ENDPOINTS, portSetting, serviceId, serviceTls, startMeshServiceMetrics, untilReady } from '@aese/runtime';
import type { Stoppable } from '@aese/runtime';
import { Registry } from './domain/registry.js';
import type { ApplicationServerStore } from './domain/registry.js';

import { MAX_TOKEN_LIFETIME_S, TokenService } from './domain/tokens.js';
import { DEFAULT_TOKEN_REVOCATION_RETENTION_S, encodeRevocation, followRevocations, REVOCATION_EVENT_TYPE, revocationSubject, TOKEN_REVOCATION_LEEWAY_S } from '@aese/revocation';
import { authenticationHandlers } from './handlers.js';
import { KvRegistryStore } from './kv-registry-store.js';

/** Token lifetime when none is configured: well under the 10-minute ceiling. */
export const DEFAULT_TOKEN_LIFETIME_S = 300;

export const AUTHENTICATION_SETTINGS = {
  port: portSetting(MESH_ENDPOINTS.authentication.port),
  issuer: str('AESE_ISSUER', `https://localhost:${DEFAULT_EDGE_PORT}`),
  tokenLifetimeS: int('TOKEN_LIFETIME_S', DEFAULT_TOKEN_LIFETIME_S, 1, MAX_TOKEN_LIFETIME_S),
  stalenessBoundMs: int('STALENESS_BOUND_MS', DEFAULT_STALENESS_BOUND_MS, 0, 3_600_000),
  /** How long token revocations are kept (the token stream's max age): at least the lifetime + 30 s. */
  tokenRevocationRetentionS: int('TOKEN_REVOCATION_RETENTION_S', DEFAULT_TOKEN_REVOCATION_RETENTION_S, 1, 86_400),
} as const;

export interface RunningService extends Stoppable {
  readonly port: number;
}

/** Starts the authentication service: AS registry over KV, tokens signed through crypto. */
export async function startAuthenticationService(env: Env, logger: Logger): Promise<RunningService> {
  const common = loadCommonConfig(env);
  const config = loadConfig(AUTHENTICATION_SETTINGS, env);
  // A revocation must outlive the token it revokes, or the stream forgets it while the token works.
  if (config.tokenRevocationRetentionS < config.tokenLifetimeS + TOKEN_REVOCATION_LEEWAY_S) {
    throw new AeseError(
      'INVALID_INPUT',
      `TOKEN_REVOCATION_RETENTION_S (${config.tokenRevocationRetentionS}) must be at least TOKEN_LIFETIME_S + ${TOKEN_REVOCATION_LEEWAY_S} (${config.tokenLifetimeS + TOKEN_REVOCATION_LEEWAY_S})`,
    );
  }
  const td = common.trustDomain;
  const tls = serviceTls(common.stateDir, 'authentication');
  const crypto = createMeshClient(CryptoServiceClient, {
    address: common.addrCrypto,
    tls,
    serverId: serviceId(td, 'crypto'),
  });
  const telemetry = await startMeshServiceMetrics(common, 'authentication');
  const nc = await connectServiceNats(common, 'authentication', logger, telemetry.meter);
  await ensureControlStream(nc);
  await ensureAuditStream(nc);
  const audit = new AuditLog('authentication', new NatsAuditSink(nc), err => logger.error({ err }, 'audit write failed'), { signer: cryptoAuditSigner(crypto) });
  const eventVerifier = cryptoEventVerifier(crypto);
  const eventSigner = cryptoEventSigner(crypto);
  const publisher = new ControlPublisher(nc, eventSigner);
  const operatorId = spiffeId(td, 'operator', OPERATOR_NAME);
  // Opened once the server listens: loading verifies every entry through crypto, which may be late.
  let registryStore: KvRegistryStore | undefined;
  const openRegistry = async (): Promise<void> => {
    if (!registryStore) {
      registryStore = await KvRegistryStore.open(nc, {
        signer: eventSigner,
        verifier: eventVerifier,
        logger,
        // The store logs the one line; the audit trail gets the finding.
        onTampered: finding => audit.record({ actor: 'unknown', action: 'registry.integrity', decision: 'deny', reason: finding.reason, detail: tamperAuditDetail(finding) }),
      });
      // Tampering found later turns the service NOT_SERVING at once.
      registryStore.onState(updateHealth);
    }
    // Waits (quietly) while crypto's keys are missing; a tampered registry never becomes ready.
    if ((await registryStore.settled()) !== 'READY') throw new AeseError('UNAVAILABLE', 'the AS registry failed its integrity check');
  };
  const loaded = (): KvRegistryStore => {
    if (!registryStore) throw new AeseError('UNAVAILABLE', 'the AS registry is still loading');
    return registryStore;
  };
  const registryView: ApplicationServerStore = {
    get: async id => loaded().get(id),
    list: async () => loaded().list(),
    put: async as => loaded().put(as),
    findByThumbprint: async t => loaded().findByThumbprint(t),
    bindThumbprint: async (t, id) => loaded().bindThumbprint(t, id),
  };
  const registry = new Registry(
    registryView,
    async as => {
      const payload = ApplicationServerChanged.encode({ scsAsId: as.scsAsId, status: as.status, changedAtMs: as.updatedAtMs }).finish();
      const version = await publisher.publish(CONTROL_SUBJECTS.registry, 'aese.events.v1.ApplicationServerChanged', payload);
      audit.record({ actor: operatorId, action: 'registry.change', decision: 'change', reason: as.status, detail: { scsAsId: as.scsAsId, version } });
    },
    Date.now,
    scsAsId => {
      if (revocationFeed.status !== 'current') throw new AeseError('UNAVAILABLE', 'the revocations are still loading; try again');
      return revocations.isApplicationServerRevoked(scsAsId);
    },
  );
  const { list: revocations, consumer: revocationFeed } = followRevocations({
    nc,
    verifier: eventVerifier,
    logger,
    audit,
    tokenRetentionS: config.tokenRevocationRetentionS,
    // The revocation publisher also writes the token snapshots that keep start-up short.
    snapshotPublisher: publisher,
  });
  // A rotation elsewhere: refresh the token key set now rather than on the next unknown kid.
  const keyFeed = new ControlConsumer(nc, {
    subject: CONTROL_SUBJECTS.keys,
    verifier: eventVerifier,
    logger,
    audit,
    apply: async () => {
      await tokens.refresh().catch((err: unknown) => logger.warn({ err }, 'key refresh failed'));
    },
    onRejected: (reason, e) => {
      logger.warn({ reason, version: e.version, kid: e.kid }, 'control event ignored');
      audit.record({ actor: 'unknown', action: 'control.keys', decision: 'deny', reason, detail: { version: e.version } });
    },
  });
  const freshness = new Freshness(nc, [revocationFeed, keyFeed], config.stalenessBoundMs);
  const feedsCurrent = (): boolean => revocationFeed.status === 'current' && keyFeed.status === 'current' && registryStore?.ready === true;
  /** Whether tokens may be issued and verified: state loaded, feeds current, NATS fresh. */
  const serving = (): boolean => readiness.ready && freshness.isFresh() && feedsCurrent();
  const updateHealth = (): void => server.setServing(serving());
  const tokens = new TokenService({
    issuer: config.issuer,
    lifetimeS: config.tokenLifetimeS,
    trustDomain: td,
    registry,
    revocations,
    // Not before the revocations are loaded (the readiness below), then as fresh as the feeds.
    isFresh: serving,
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
          const version = await publisher.publish(revocationSubject(r), REVOCATION_EVENT_TYPE, encodeRevocation(r, Date.now()));
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
  logger.info({ port }, 'authentication service listening');
  // Serve only with crypto's keys, the registry and every revocation published so far applied;
  // NOT_SERVING (and retrying) until then, so a late crypto delays the service, never breaks it.
  const readiness = untilReady({
    logger,
    steps: [
      { what: 'the crypto service keys', run: async () => void (await crypto.getJwks({})) },
      { what: 'the AS registry', run: openRegistry },
      { what: 'the revocation feed', run: () => revocationFeed.start() },
      { what: 'the key feed', run: () => keyFeed.start() },
    ],
    onReady: updateHealth,
  });
  freshness.onChange(updateHealth);
  // A tampered control stream (or keys gone) makes the service NOT_SERVING, not quietly wrong.
  for (const f of [revocationFeed, keyFeed]) f.onStatus(updateHealth);
  return {
    port,
    whenReady: readiness.whenReady,
    stop: async () => {
      readiness.stop();
      await server.shutdown();
      revocationFeed.stop();
      keyFeed.stop();
      registryStore?.stop();
      await audit.flush();
      crypto.close();
      await nc.drain();
      await telemetry.stop();
    },
  };
}
