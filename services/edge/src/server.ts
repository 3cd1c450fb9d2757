import { ConfigError, int, loadConfig, oneOf, optionalInt, str } from '@aese/config';
import type { Env, Setting } from '@aese/config';
import { AuditLog, DEFAULT_STALENESS_BOUND_MS, ensureAuditStream, NatsAuditSink } from '@aese/events';
import type { AuditRecord } from '@aese/events';
import type { Logger } from '@aese/logger';
import type { NatsConnection } from '@aese/nats';
import { NOTIFICATION_DESTINATION_SETTINGS, notificationDestinationPolicy } from '@aese/net-guard';
import { pkiLayout, readT8ServerTlsMaterial } from '@aese/pki';
import { DEFAULT_REPLAY_LEASE_MS } from '@aese/replay-window';
import { DEFAULT_TOKEN_REVOCATION_RETENTION_S } from '@aese/revocation';
import { DEFAULT_EDGE_PORT, connectServiceNats, loadCommonConfig, MESH_ENDPOINTS, portSetting, serviceTls, startMeshServiceMetrics, untilReady } from '@aese/runtime';
import type { Stoppable } from '@aese/runtime';
import { cacheLookups, ReplayRefusalMetrics, T8RequestMetrics } from '@aese/telemetry';
import { readFileSync } from 'node:fs';
import { createControlFeeds } from './control-feeds.js';
import { ApiDirectory, DEFAULT_API_REFRESH_MS } from './domain/api-catalogue.js';
import { DelegatedSigningKey } from './domain/delegated-signing-key.js';
import { JwksCache } from './domain/jwks.js';
import { DEFAULT_SIGNATURE_SKEW_S, DEFAULT_SIGNATURE_WINDOW_S } from './domain/message-signatures.js';
import { parseIssuer } from './domain/metadata.js';
import { DEFAULT_ANSWER_REUSE_MAX_AGE_MS, MAX_ANSWER_REUSE_MAX_AGE_MS } from './domain/reusable-answers.js';
import type { ReuseStats } from './domain/reusable-answers.js';
import { DEFAULT_OAUTH_RATE_LIMIT_BURST, DEFAULT_OAUTH_RATE_LIMIT_PER_S } from './domain/oauth.js';
import { DEFAULT_RATE_LIMIT_BURST, DEFAULT_RATE_LIMIT_PER_S, RateLimiter } from './domain/rate-limiter.js';
import { DEFAULT_MAX_T8_BODY_BYTES } from './domain/request-media-type.js';
import { DEFAULT_TOKEN_CACHE_SIZE } from './domain/token-cache.js';
import { createRequestHandler } from './handlers.js';
import { createT8Listener } from './listener.js';
import { createMeshAdapters } from './mesh-adapters.js';
import { openReplayDecisions, REPLAY_DECISION_MODES } from './replay-decisions.js';
import type { ReplayDecisions } from './replay-decisions.js';
import { httpsPoster } from './notifications/https-poster.js';
import { MAX_DELIVERY_ATTEMPTS, startNotifier } from './notifications/notification-consumer.js';
import { createT8Handler } from './t8-handler.js';

/** The issuer when none is configured; the same default as the authentication service's. */
export const DEFAULT_ISSUER = `https://localhost:${DEFAULT_EDGE_PORT}`;
/** Largest request header block, HTTP/1.1 and HTTP/2 alike. */
export const DEFAULT_MAX_HEADER_BYTES = 16 * 1024;
/** Time to receive a complete request header block (HTTP/1.1 slowloris bound). */
export const DEFAULT_HEADERS_TIMEOUT_MS = 10_000;
/** Time to receive a whole request, headers and body. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;
/** Time to read a request body, on either protocol. */
export const DEFAULT_BODY_TIMEOUT_MS = 10_000;
/** Time to complete the TLS handshake. */
export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;
/** An idle connection (no stream, no request) is closed after this long. */
export const DEFAULT_IDLE_TIMEOUT_MS = 120_000;
/** Concurrent HTTP/2 streams a client may open on one connection. */
export const DEFAULT_MAX_CONCURRENT_STREAMS = 100;
/** Megabytes of memory one HTTP/2 session may hold before new streams are refused. */
export const DEFAULT_MAX_SESSION_MEMORY_MB = 10;
/** Deadline of one replay check; past it the request is refused with 503 and not executed. */
export const DEFAULT_REPLAY_DEADLINE_MS = 2_000;
/** Deadline of one capability-exposure call (it includes the authorization decision). */
export const DEFAULT_INVOKE_DEADLINE_MS = 5_000;

export {
  DEFAULT_API_REFRESH_MS,
  DEFAULT_MAX_T8_BODY_BYTES,
  DEFAULT_RATE_LIMIT_BURST,
  DEFAULT_RATE_LIMIT_PER_S,
  DEFAULT_SIGNATURE_SKEW_S,
  DEFAULT_SIGNATURE_WINDOW_S,
  DEFAULT_TOKEN_CACHE_SIZE,
};

const issuerSetting: Setting<string> = { env: 'AESE_ISSUER', parse: parseIssuer, default: DEFAULT_ISSUER };

/**
 * The edge's settings. `AESE_ISSUER` must be the same string the authentication service is given:
 * it is the `iss` and `aud` of every token and the base of every advertised URL.
 */
export const EDGE_SETTINGS = {
  port: portSetting(DEFAULT_EDGE_PORT),
  issuer: issuerSetting,
  maxHeaderBytes: int('EDGE_MAX_HEADER_BYTES', DEFAULT_MAX_HEADER_BYTES, 1024, 64 * 1024),
  headersTimeoutMs: int('EDGE_HEADERS_TIMEOUT_MS', DEFAULT_HEADERS_TIMEOUT_MS, 100, 120_000),
  requestTimeoutMs: int('EDGE_REQUEST_TIMEOUT_MS', DEFAULT_REQUEST_TIMEOUT_MS, 100, 300_000),
  bodyTimeoutMs: int('EDGE_BODY_TIMEOUT_MS', DEFAULT_BODY_TIMEOUT_MS, 100, 120_000),
  idleTimeoutMs: int('EDGE_IDLE_TIMEOUT_MS', DEFAULT_IDLE_TIMEOUT_MS, 1_000, 3_600_000),
  /** Per-AS token bucket: sustained requests per second, and the burst after an idle period. */
  rateLimitPerS: int('EDGE_RATE_LIMIT_PER_S', DEFAULT_RATE_LIMIT_PER_S, 1, 1_000_000),
  rateLimitBurst: int('EDGE_RATE_LIMIT_BURST', DEFAULT_RATE_LIMIT_BURST, 1, 10_000_000),
  /** Per-AS bucket of the token and revocation endpoints (together), apart from the T8 one. */
  oauthRateLimitPerS: int('EDGE_OAUTH_RATE_LIMIT_PER_S', DEFAULT_OAUTH_RATE_LIMIT_PER_S, 1, 1_000_000),
  oauthRateLimitBurst: int('EDGE_OAUTH_RATE_LIMIT_BURST', DEFAULT_OAUTH_RATE_LIMIT_BURST, 1, 10_000_000),
  /** Largest T8 request body; larger ones get 413 before any parsing or cryptography. */
  maxBodyBytes: int('EDGE_MAX_BODY_BYTES', DEFAULT_MAX_T8_BODY_BYTES, 1024, 1024 * 1024),
  /**
   * The accepted age and future skew of a request signature's `created`: the same variables as
   * the replay guard's, so the two windows cannot drift apart.
   */
  signatureWindowS: int('REPLAY_WINDOW_S', DEFAULT_SIGNATURE_WINDOW_S, 1, 3600),
  signatureSkewS: int('REPLAY_SKEW_S', DEFAULT_SIGNATURE_SKEW_S, 0, 300),
  /** Token verifications remembered (until each token's exp); 0 turns the cache off. */
  tokenCacheSize: int('EDGE_TOKEN_CACHE_SIZE', DEFAULT_TOKEN_CACHE_SIZE, 0, 1_000_000),
  /** How often the T8 API list is re-read from capability-exposure. */
  apiRefreshMs: int('EDGE_API_REFRESH_MS', DEFAULT_API_REFRESH_MS, 1_000, 3_600_000),
  replayDeadlineMs: int('EDGE_REPLAY_DEADLINE_MS', DEFAULT_REPLAY_DEADLINE_MS, 50, 30_000),
  /** `leased` (default): replay windows of the ASes whose lease this edge holds are decided here; `replay-guard`: every check goes to the service. */
  replayDecisions: oneOf('EDGE_REPLAY_DECISIONS', REPLAY_DECISION_MODES, 'leased'),
  /** How long an edge's lease on an AS's replay window lives without renewal (a takeover waits this long after a crash). */
  replayLeaseMs: int('EDGE_REPLAY_LEASE_MS', DEFAULT_REPLAY_LEASE_MS, 1_000, 600_000),
  invokeDeadlineMs: int('EDGE_INVOKE_DEADLINE_MS', DEFAULT_INVOKE_DEADLINE_MS, 100, 60_000),
  /**
   * How long a read answer capability-exposure marked reusable is given again without the hop
   * (until it withdraws it first); 0: every request goes to capability-exposure. At most
   * STALENESS_BOUND_MS; unset, 1 s or the staleness bound if that is shorter.
   */
  answerReuseMaxAgeMs: optionalInt('EDGE_ANSWER_REUSE_MAX_AGE_MS', 0, MAX_ANSWER_REUSE_MAX_AGE_MS),
  /** How long the edge decides from its last revocation state while NATS is unreachable. */
  stalenessBoundMs: int('STALENESS_BOUND_MS', DEFAULT_STALENESS_BOUND_MS, 0, 3_600_000),
  /** Retention of token revocations (the token stream's max age); the same as authentication's. */
  tokenRevocationRetentionS: int('TOKEN_REVOCATION_RETENTION_S', DEFAULT_TOKEN_REVOCATION_RETENTION_S, 1, 86_400),
  /** Operator exceptions to the notification SSRF rules and allowed ports (the same as capability-exposure's). */
  ...NOTIFICATION_DESTINATION_SETTINGS,
  /** PEM file of the CAs that AS notification receivers' certificates chain to; empty: the system's public CAs. */
  notificationCaFile: str('NOTIFICATION_CA_FILE', ''),
  /** Delivery attempts of one notification before it is given up (reported, audited). */
  notificationMaxAttempts: int('NOTIFICATION_MAX_ATTEMPTS', MAX_DELIVERY_ATTEMPTS, 1, MAX_DELIVERY_ATTEMPTS),
} as const;

export interface RunningEdge extends Stoppable {
  readonly port: number;
  /** Read answers given again without the hop to capability-exposure, and lookups that missed. */
  readonly answerReuse: () => ReuseStats;
}

/**
 * Starts the edge: the T8 HTTPS listener (TLS 1.3 only, HTTP/2 and HTTP/1.1, client certificates
 * from the AS CA only) with the OAuth token endpoint and discovery documents, backed by the
 * authentication and crypto services over the mesh.
 */
export async function startEdgeService(env: Env, logger: Logger): Promise<RunningEdge> {
  const common = loadCommonConfig(env);
  const config = loadConfig(EDGE_SETTINGS, env);
  // A reused answer must not outlive the freshness capability-exposure vouched for.
  if (config.answerReuseMaxAgeMs !== undefined && config.answerReuseMaxAgeMs > config.stalenessBoundMs) {
    throw new ConfigError(`EDGE_ANSWER_REUSE_MAX_AGE_MS (${config.answerReuseMaxAgeMs}) must not exceed STALENESS_BOUND_MS (${config.stalenessBoundMs})`);
  }
  const answerReuseMaxAgeMs = config.answerReuseMaxAgeMs ?? Math.min(DEFAULT_ANSWER_REUSE_MAX_AGE_MS, config.stalenessBoundMs);
  const layout = pkiLayout(common.stateDir);
  const t8Tls = readT8ServerTlsMaterial(layout);
  const telemetry = await startMeshServiceMetrics(common, 'edge');
  const mesh = createMeshAdapters(common, { ...config, answerReuseMaxAgeMs }, serviceTls(common.stateDir, 'edge'), cacheLookups(telemetry.meter, 'edge.answer-reuse'));
  const jwks = new JwksCache({ fetch: mesh.getJwks });

  // The audit trail: every refused handshake, token request and T8 request is one event.
  let nc: NatsConnection;
  try {
    nc = await connectServiceNats(common, 'edge', logger, telemetry.meter);
  } catch (err) {
    mesh.close();
    throw err;
  }
  let replay: ReplayDecisions;
  try {
    await ensureAuditStream(nc);
    replay = await openReplayDecisions({
      nc,
      logger,
      mode: config.replayDecisions,
      windowS: config.signatureWindowS,
      skewS: config.signatureSkewS,
      leaseMs: config.replayLeaseMs,
      timeoutMs: config.replayDeadlineMs,
      replicas: common.natsReplicas,
      remote: mesh.checkReplay,
    });
  } catch (err) {
    mesh.close();
    await nc.close();
    throw err;
  }
  const auditLog = new AuditLog('edge', new NatsAuditSink(nc), err => logger.error({ err }, 'audit event not written'), { signer: mesh.auditSigner });
  const audit = (record: Omit<AuditRecord, 'decision'>): void => auditLog.record({ ...record, decision: 'deny' });

  // The response signing key, delegated by crypto and held in memory only. The notification
  // dispatcher (notifications/) signs with the same key: `signingKey: () => signingKey.current()`.
  const signingKey = new DelegatedSigningKey({
    fetch: mesh.delegateSigningKey,
    // The new key is in crypto's JWKS already; the edge's copy must show it before it is used.
    onNewKey: kid => {
      jwks.expire();
      logger.info({ kid }, 'message-signing key delegated to this edge');
    },
    onRenewalError: err => logger.warn({ err }, 'message-signing key renewal failed'),
  });
  const apis = new ApiDirectory({
    fetch: mesh.listApis,
    refreshMs: config.apiRefreshMs,
    onError: err => logger.warn({ err }, 'T8 API list unavailable'),
  });
  const feeds = createControlFeeds({ nc, verifier: mesh.eventVerifier, logger, audit: auditLog, meter: telemetry.meter, mesh, jwks, config });

  // The protected T8 path, the hot path: the replay check (in this edge for the ASes whose window it holds) and the invoke stream.
  const t8Path = createT8Handler({
    logger,
    apiRoot: config.issuer,
    limiter: new RateLimiter({ perSecond: config.rateLimitPerS, burst: config.rateLimitBurst }),
    tokens: feeds.tokens,
    apis: () => apis.current(),
    signingKey,
    checkReplay: replay.check,
    invoke: mesh.invoke,
    audit: e => audit({ actor: e.actor, action: 't8.request', reason: e.reason, traceId: e.traceId, detail: { status: e.status, ...(e.api ? { api: e.api } : {}) } }),
    maxBodyBytes: config.maxBodyBytes,
    bodyTimeoutMs: config.bodyTimeoutMs,
    windowS: config.signatureWindowS,
    skewS: config.signatureSkewS,
    metrics: { requests: new T8RequestMetrics(telemetry.meter), replayRefusals: new ReplayRefusalMetrics(telemetry.meter) },
  });
  await apis.start();
  const notifier = await startNotifier({
    nc,
    logger,
    audit: auditLog,
    verifier: mesh.eventVerifier,
    outcomeSigner: mesh.eventSigner,
    maxAttempts: config.notificationMaxAttempts,
    meter: telemetry.meter,
    deps: {
      destinations: notificationDestinationPolicy(
        config,
        Object.values(MESH_ENDPOINTS).map(e => `localhost:${e.port}`),
      ),
      signingKey: () => signingKey.current(),
      encryptionKey: mesh.encryptionKey,
      post: httpsPoster({
        certPem: readFileSync(layout.edgeNotifier.cert, 'utf8'),
        keyPem: readFileSync(layout.edgeNotifier.key, 'utf8'),
        caPem: config.notificationCaFile ? readFileSync(config.notificationCaFile, 'utf8') : undefined,
      }),
    },
  });

  const handler = createRequestHandler({
    issuer: config.issuer,
    logger,
    jwks,
    bodyTimeoutMs: config.bodyTimeoutMs,
    maxHeaderBytes: config.maxHeaderBytes,
    identities: feeds.identities,
    t8: t8Path,
    audit,
    oauthLimiter: new RateLimiter({ perSecond: config.oauthRateLimitPerS, burst: config.oauthRateLimitBurst }),
    revokeToken: mesh.revokeOwnToken,
    issueToken: mesh.issueToken,
  });

  const listener = createT8Listener({
    tls: t8Tls,
    host: common.listenHost,
    port: config.port,
    limits: {
      maxHeaderBytes: config.maxHeaderBytes,
      headersTimeoutMs: config.headersTimeoutMs,
      requestTimeoutMs: config.requestTimeoutMs,
      idleTimeoutMs: config.idleTimeoutMs,
      handshakeTimeoutMs: DEFAULT_HANDSHAKE_TIMEOUT_MS,
      maxConcurrentStreams: DEFAULT_MAX_CONCURRENT_STREAMS,
      maxSessionMemoryMb: DEFAULT_MAX_SESSION_MEMORY_MB,
    },
    handler,
    connections: feeds.connections,
    audit,
    logger,
  });

  // Serve only with a signing key and every revocation, suspension and rotation published so far
  // applied; crypto may start later than the edge: answer 503 and retry until then.
  const readiness = untilReady({
    logger,
    steps: [{ what: 'the delegated message-signing key', run: async () => void (await signingKey.renew()) }, ...feeds.readinessSteps],
    onReady: () => {
      feeds.startFreshness();
      listener.setReady();
    },
  });
  const release = async (): Promise<void> => {
    readiness.stop();
    feeds.stop();
    await replay.close();
    await notifier.stop();
    apis.stop();
    signingKey.clear();
    mesh.close();
    await auditLog.flush();
    await nc.drain().catch(() => undefined);
    await telemetry.stop();
  };
  let port: number;
  try {
    port = await listener.listen();
  } catch (err) {
    await release();
    throw err;
  }
  logger.info({ port, issuer: config.issuer }, 'edge serving');

  let stopped: Promise<void> | undefined;
  return {
    port,
    answerReuse: mesh.answerReuse,
    whenReady: readiness.whenReady,
    stop: () =>
      (stopped ??= (async () => {
        await listener.close();
        await release();
        logger.info('edge stopped');
      })()),
  };
}
