import { constants as cryptoConstants } from 'node:crypto';
import { createSecureServer } from 'node:http2';
import type { Http2Session, SecureServerOptions } from 'node:http2';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import { int, loadConfig, str } from '@aese/config';
import type { Env, Setting } from '@aese/config';
import { AeseError } from '@aese/errors';
import {
  AuditLog,
  CONTROL_SUBJECTS,
  ControlConsumer,
  cryptoAuditSigner,
  cryptoEventSigner,
  cryptoEventVerifier,
  DEFAULT_STALENESS_BOUND_MS,
  ensureAuditStream,
  Freshness,
  NatsAuditSink,
} from '@aese/events';
import type { AuditRecord } from '@aese/events';
import { createMeshClient, createStreamingCaller } from '@aese/grpc-client';
import type { SignatureAlgorithm } from '@aese/http-signatures';
import type { Logger } from '@aese/logger';
import { NOTIFICATION_DESTINATION_SETTINGS, notificationDestinationPolicy } from '@aese/net-guard';
import { DEFAULT_TOKEN_REVOCATION_RETENTION_S, followRevocations } from '@aese/revocation';
import { ApplicationServerChanged } from '@aese/protos/events/v1';
import type { NatsConnection } from '@aese/nats';
import { certificateThumbprint, pkiLayout, readT8ServerTlsMaterial } from '@aese/pki';
import { ApplicationServerStatus, AuthenticationServiceClient, SignatureProfile } from '@aese/protos/authentication/v1';
import type { ApplicationServer as PbApplicationServer } from '@aese/protos/authentication/v1';
import { CapabilityExposureServiceClient } from '@aese/protos/capability-exposure/v1';
import { KeyPurpose as PbKeyPurpose, SignatureAlgorithm as PbAlgorithm } from '@aese/protos/common/v1';
import { CryptoServiceClient } from '@aese/protos/crypto/v1';
import type { PublicKey } from '@aese/protos/crypto/v1';
import { ReplayGuardServiceClient, Verdict } from '@aese/protos/replay-guard/v1';
import { DEFAULT_EDGE_PORT, connectServiceNats, loadCommonConfig, MESH_ENDPOINTS, portSetting, serviceId, serviceTls, startMeshServiceMetrics, untilReady } from '@aese/runtime';
import { cacheLookups, ReplayRefusalMetrics, RevocationLagMetrics, T8RequestMetrics } from '@aese/telemetry';
import { readFileSync } from 'node:fs';
import type { Stoppable } from '@aese/runtime';
import { ApiDirectory, DEFAULT_API_REFRESH_MS } from './domain/api-catalogue.js';
import { encryptionKeyOf, RegisteredKeyCache } from './domain/application-server.js';
import type { ApplicationServer } from './domain/application-server.js';
import { clientCertificateProblem } from './domain/client-certificate.js';
import { DelegatedSigningKey } from './domain/delegated-signing-key.js';
import { JwksCache } from './domain/jwks.js';
import type { KeyPurpose, PublishedKey } from './domain/jwks.js';
import { DEFAULT_SIGNATURE_SKEW_S, DEFAULT_SIGNATURE_WINDOW_S } from './domain/message-signatures.js';
import { parseIssuer } from './domain/metadata.js';
import { DEFAULT_OAUTH_RATE_LIMIT_BURST, DEFAULT_OAUTH_RATE_LIMIT_PER_S } from './domain/oauth.js';
import { DEFAULT_RATE_LIMIT_BURST, DEFAULT_RATE_LIMIT_PER_S, RateLimiter } from './domain/rate-limiter.js';
import { DEFAULT_MAX_T8_BODY_BYTES } from './domain/request-media-type.js';
import { problem } from './domain/responses.js';
import { DEFAULT_TOKEN_CACHE_SIZE, TokenCache } from './domain/token-cache.js';
import { enforceRevocation, OpenConnections, RevocationAwareIdentities, RevocationAwareTokens } from './domain/revocation-enforcement.js';
import { httpsPoster } from './notifications/https-poster.js';
import { MAX_DELIVERY_ATTEMPTS, startNotifier } from './notifications/notification-consumer.js';
import { createRequestHandler } from './handlers.js';
import { rawHttp1Response, writeResponse } from './http.js';
import { createT8Handler } from './t8-handler.js';
import type { ReplayVerdict } from './t8-handler.js';

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

/** How HTTP/1.1 parser errors are answered: status, reason phrase and a fixed detail. */
const PARSE_ERRORS: Readonly<Record<string, readonly [number, string, string]>> = {
  HPE_HEADER_OVERFLOW: [431, 'Request Header Fields Too Large', 'the request header block is too large'],
  ERR_HTTP_REQUEST_TIMEOUT: [408, 'Request Timeout', 'the request did not arrive in time'],
  HPE_HEADERS_TIMEOUT: [408, 'Request Timeout', 'the request did not arrive in time'],
};
const DEFAULT_PARSE_ERROR = [400, 'Bad Request', 'the request is not valid HTTP/1.1'] as const;

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
  invokeDeadlineMs: int('EDGE_INVOKE_DEADLINE_MS', DEFAULT_INVOKE_DEADLINE_MS, 100, 60_000),
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
}

const PURPOSES: Partial<Record<number, KeyPurpose>> = {
  [PbKeyPurpose.KEY_PURPOSE_ACCESS_TOKEN]: 'access-token',
  [PbKeyPurpose.KEY_PURPOSE_MESSAGE_SIGNING]: 'message-signing',
  [PbKeyPurpose.KEY_PURPOSE_EVENT_SIGNING]: 'event-signing',
};
const ALGORITHMS: Partial<Record<number, PublishedKey['alg']>> = {
  [PbAlgorithm.SIGNATURE_ALGORITHM_ES256]: 'ES256',
  [PbAlgorithm.SIGNATURE_ALGORITHM_EDDSA]: 'EdDSA',
};

function toPublishedKey(k: PublicKey): PublishedKey {
  return { kid: k.kid, alg: ALGORITHMS[k.algorithm], purpose: PURPOSES[k.purpose] ?? 'unknown', jwkJson: k.jwkJson };
}

/** RFC 9421 names of the algorithms a delegated message-signing key may have. */
const MESSAGE_ALGORITHMS: Partial<Record<number, SignatureAlgorithm>> = {
  [PbAlgorithm.SIGNATURE_ALGORITHM_ES256]: 'ecdsa-p256-sha256',
  [PbAlgorithm.SIGNATURE_ALGORITHM_EDDSA]: 'ed25519',
};

const REPLAY_VERDICTS: Partial<Record<number, ReplayVerdict>> = {
  [Verdict.VERDICT_ACCEPTED]: 'accepted',
  [Verdict.VERDICT_REPLAYED]: 'replayed',
  [Verdict.VERDICT_STALE]: 'stale',
  [Verdict.VERDICT_FUTURE]: 'future',
};

/** The registry's record of an AS, in the form the edge checks requests against. */
function toApplicationServer(pb: PbApplicationServer, certificateDer: Uint8Array, keys: RegisteredKeyCache): ApplicationServer {
  return {
    scsAsId: pb.scsAsId,
    active: pb.status === ApplicationServerStatus.APPLICATION_SERVER_STATUS_ACTIVE,
    // Unspecified means the default: required.
    signatureProfile: pb.signatureProfile === SignatureProfile.SIGNATURE_PROFILE_OPTIONAL ? 'optional' : 'required',
    ...keys.keysOf(pb.signingKeysJson, pb.encryptionKeyJson),
    thumbprint: certificateThumbprint(certificateDer),
  };
}

/** The audit reason of a client certificate refused after the handshake. */
function handshakeReason(problem: string): string {
  return `CLIENT_CERTIFICATE_${problem.toUpperCase().replace(/-/g, '_')}`;
}

/** TLS errors that are a peer going away rather than a refusal worth an audit event. */
const UNREMARKABLE_TLS_ERRORS = new Set(['ECONNRESET', 'EPIPE']);

/**
 * Starts the edge: the T8 HTTPS listener (TLS 1.3 only, HTTP/2 and HTTP/1.1, client certificates
 * from the AS CA only) with the OAuth token endpoint and discovery documents, backed by the
 * authentication and crypto services over the mesh.
 */
export async function startEdgeService(env: Env, logger: Logger): Promise<RunningEdge> {
  const common = loadCommonConfig(env);
  const config = loadConfig(EDGE_SETTINGS, env);
  const td = common.trustDomain;
  const t8 = readT8ServerTlsMaterial(pkiLayout(common.stateDir));
  const meshTls = serviceTls(common.stateDir, 'edge');
  const authentication = createMeshClient(AuthenticationServiceClient, {
    address: common.addrAuthentication,
    tls: meshTls,
    serverId: serviceId(td, 'authentication'),
  });
  const crypto = createMeshClient(CryptoServiceClient, {
    address: common.addrCrypto,
    tls: meshTls,
    serverId: serviceId(td, 'crypto'),
  });
  const capabilities = createMeshClient(CapabilityExposureServiceClient, {
    address: common.addrCapabilityExposure,
    tls: meshTls,
    serverId: serviceId(td, 'capability-exposure'),
    deadlineMs: config.invokeDeadlineMs,
  });
  // The two per-request hops run over one multiplexed stream each (a fraction of a unary call's cost).
  const replayStream = createStreamingCaller(ReplayGuardServiceClient, 'checkAndRecordStream', {
    address: common.addrReplayGuard,
    tls: meshTls,
    serverId: serviceId(td, 'replay-guard'),
    deadlineMs: config.replayDeadlineMs,
  });
  const invokeStream = createStreamingCaller(CapabilityExposureServiceClient, 'invokeStream', {
    address: common.addrCapabilityExposure,
    tls: meshTls,
    serverId: serviceId(td, 'capability-exposure'),
    deadlineMs: config.invokeDeadlineMs,
  });
  const clients = [authentication, crypto, capabilities, replayStream, invokeStream];
  const jwks = new JwksCache({ fetch: async () => (await crypto.getJwks({})).keys.map(toPublishedKey) });

  // The audit trail: every refused handshake, token request and T8 request is one event.
  const telemetry = await startMeshServiceMetrics(common, 'edge');
  let nc: NatsConnection;
  try {
    nc = await connectServiceNats(common, 'edge', logger, telemetry.meter);
  } catch (err) {
    for (const c of clients) c.close();
    throw err;
  }
  try {
    await ensureAuditStream(nc);
  } catch (err) {
    for (const c of clients) c.close();
    await nc.close();
    throw err;
  }
  const auditLog = new AuditLog('edge', new NatsAuditSink(nc), err => logger.error({ err }, 'audit event not written'), { signer: cryptoAuditSigner(crypto) });
  const audit = (record: Omit<AuditRecord, 'decision'>): void => auditLog.record({ ...record, decision: 'deny' });

  // The response signing key, delegated by crypto and held in memory only. The notification
  // dispatcher (notifications/) signs with the same key: `signingKey: () => signingKey.current()`.
  const signingKey = new DelegatedSigningKey({
    fetch: async () => {
      const out = await crypto.delegateSigningKey({ purpose: PbKeyPurpose.KEY_PURPOSE_MESSAGE_SIGNING });
      const alg = MESSAGE_ALGORITHMS[out.algorithm];
      if (!alg) throw new AeseError('UNAVAILABLE', 'the delegated signing key has an unsupported algorithm');
      return { kid: out.kid, alg, pkcs8: out.privateKeyPkcs8, notAfterMs: out.notAfterMs };
    },
    // The new key is in crypto's JWKS already; the edge's copy must show it before it is used.
    onNewKey: kid => {
      jwks.expire();
      logger.info({ kid }, 'message-signing key delegated to this edge');
    },
    onRenewalError: err => logger.warn({ err }, 'message-signing key renewal failed'),
  });
  const apis = new ApiDirectory({
    fetch: async () =>
      (await capabilities.listApis({})).apis.map(a => ({
        name: a.name,
        version: a.version,
        scope: a.scope,
        routes: a.routes.map(r => ({ method: r.method, path: r.path })),
      })),
    refreshMs: config.apiRefreshMs,
    onError: err => logger.warn({ err }, 'T8 API list unavailable'),
  });
  // Revocations, suspensions and key rotations, as signed control events: this edge's own view of
  // them refuses revoked identities at once, on open connections too, and closes those.
  const eventVerifier = cryptoEventVerifier(crypto);
  const connections = new OpenConnections();
  const registeredKeys = new RegisteredKeyCache();
  // Assigned below, once the feeds exist; read only when a request arrives.
  let freshness: Freshness | undefined;
  const revocationLag = new RevocationLagMetrics(telemetry.meter);
  const { list: revocations, consumer: revocationFeed } = followRevocations({
    nc,
    verifier: eventVerifier,
    logger,
    audit: auditLog,
    tokenRetentionS: config.tokenRevocationRetentionS,
    onRevoked: (r, revokedAtMs, live) => {
      const closed = enforceRevocation(r, { connections, identities, tokens });
      // Replayed at start-up, a revocation's age is not a lag.
      if (live) revocationLag.enforced(r.kind, Date.now() - revokedAtMs);
      logger.info({ kind: r.kind, closed }, 'revocation enforced');
    },
  });
  const identities = new RevocationAwareIdentities(
    async certificateDer => {
      const { applicationServer } = await authentication.resolveClient({ certificateDer: Buffer.from(certificateDer) });
      if (!applicationServer) throw new AeseError('UNAVAILABLE', 'ResolveClient answered without an application server');
      const as = toApplicationServer(applicationServer, certificateDer, registeredKeys);
      connections.owner(as.thumbprint, as.scsAsId);
      return as;
    },
    revocations,
    // A tampered or blocked control feed decides nothing (503), like stale state.
    () => (freshness?.isFresh() ?? false) && feedsCurrent(),
  );
  const tokens = new RevocationAwareTokens(
    new TokenCache({ maxEntries: config.tokenCacheSize, lookups: cacheLookups(telemetry.meter, 'edge.token') }),
    async (token, certificateDer) => {
      const out = await authentication.verifyToken({ token, certificateDer: Buffer.from(certificateDer) });
      return { scsAsId: out.scsAsId, scopes: out.scopes, jti: out.jti, expiresAt: out.expiresAt };
    },
    revocations,
  );
  const controlRejected = (action: string) => (reason: string, e: { version: number; kid: string }) => {
    logger.warn({ reason, version: e.version, kid: e.kid }, 'control event ignored');
    auditLog.record({ actor: 'unknown', action, decision: 'deny', reason, detail: { version: e.version } });
  };
  const registryFeed = new ControlConsumer(nc, {
    subject: CONTROL_SUBJECTS.registry,
    verifier: eventVerifier,
    logger,
    audit: auditLog,
    apply: e => {
      // Any change (new keys, scopes, status) makes cached records and verifications stale.
      const change = ApplicationServerChanged.decode(e.payload);
      identities.invalidateAll();
      tokens.invalidateScsAsId(change.scsAsId);
      if (change.status !== 'active') logger.info({ closed: connections.closeAs(change.scsAsId) }, 'connections of a suspended AS closed');
    },
    onRejected: controlRejected('control.registry'),
  });
  const keyFeed = new ControlConsumer(nc, {
    subject: CONTROL_SUBJECTS.keys,
    verifier: eventVerifier,
    logger,
    audit: auditLog,
    apply: () => jwks.expire(),
    onRejected: controlRejected('control.keys'),
  });
  const feedsCurrent = (): boolean => [revocationFeed, registryFeed, keyFeed].every(f => f.status === 'current');
  const limiter = new RateLimiter({ perSecond: config.rateLimitPerS, burst: config.rateLimitBurst });
  const t8Path = createT8Handler({
    logger,
    apiRoot: config.issuer,
    limiter,
    tokens,
    apis: () => apis.current(),
    signingKey,
    checkReplay: async (scsAsId, nonce, created) => {
      const { verdict } = await replayStream.call({ scsAsId, nonce, created });
      const out = REPLAY_VERDICTS[verdict];
      if (!out) throw new AeseError('UNAVAILABLE', 'the replay guard gave no verdict');
      return out;
    },
    invoke: async call => {
      const out = await invokeStream.call({ ...call, body: Buffer.from(call.body), scopes: [...call.scopes] });
      return { status: out.status, headers: out.headers, body: out.body, obligations: out.obligations };
    },
    audit: e => audit({ actor: e.actor, action: 't8.request', reason: e.reason, traceId: e.traceId, detail: { status: e.status, ...(e.api ? { api: e.api } : {}) } }),
    maxBodyBytes: config.maxBodyBytes,
    bodyTimeoutMs: config.bodyTimeoutMs,
    windowS: config.signatureWindowS,
    skewS: config.signatureSkewS,
    metrics: { requests: new T8RequestMetrics(telemetry.meter), replayRefusals: new ReplayRefusalMetrics(telemetry.meter) },
  });
  await apis.start();
  const layout = pkiLayout(common.stateDir);
  const notifier = await startNotifier({
    nc,
    logger,
    audit: auditLog,
    verifier: eventVerifier,
    outcomeSigner: cryptoEventSigner(crypto),
    maxAttempts: config.notificationMaxAttempts,
    meter: telemetry.meter,
    deps: {
      destinations: notificationDestinationPolicy(
        config,
        Object.values(MESH_ENDPOINTS).map(e => `localhost:${e.port}`),
      ),
      signingKey: () => signingKey.current(),
      encryptionKey: async scsAsId => {
        const { applicationServer } = await authentication.getApplicationServer({ scsAsId });
        return applicationServer ? encryptionKeyOf(applicationServer.encryptionKeyJson) : undefined;
      },
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
    identities,
    t8: t8Path,
    audit,
    oauthLimiter: new RateLimiter({ perSecond: config.oauthRateLimitPerS, burst: config.oauthRateLimitBurst }),
    revokeToken: async (token, certificateDer) => (await authentication.revokeOwnToken({ token, certificateDer: Buffer.from(certificateDer) })).revoked,
    issueToken: async input => {
      const out = await authentication.issueToken({ ...input, certificateDer: Buffer.from(input.certificateDer) });
      return { accessToken: out.accessToken, expiresIn: out.expiresIn, scope: out.scope };
    },
  });

  const options: SecureServerOptions = {
    key: t8.keyPem,
    cert: t8.certPem,
    // AS client certificates chain to the AS CA and to nothing else: not the mesh CA, not a public CA.
    ca: t8.clientCaPem,
    requestCert: true,
    rejectUnauthorized: true,
    minVersion: 'TLSv1.3',
    maxVersion: 'TLSv1.3',
    // No session tickets, so no resumption and no 0-RTT (node never enables early data either).
    secureOptions: cryptoConstants.SSL_OP_NO_TICKET | cryptoConstants.SSL_OP_NO_RENEGOTIATION,
    handshakeTimeout: DEFAULT_HANDSHAKE_TIMEOUT_MS,
    allowHTTP1: true,
    settings: { maxConcurrentStreams: DEFAULT_MAX_CONCURRENT_STREAMS, maxHeaderListSize: config.maxHeaderBytes },
    maxSessionMemory: DEFAULT_MAX_SESSION_MEMORY_MB,
    peerMaxConcurrentStreams: DEFAULT_MAX_CONCURRENT_STREAMS,
    maxHeaderListPairs: 128,
    maxSessionInvalidFrames: 100,
    maxSessionRejectedStreams: 100,
    maxOutstandingPings: 10,
    maxSettings: 32,
    unknownProtocolTimeout: DEFAULT_HANDSHAKE_TIMEOUT_MS,
  };
  // Until the keys and control state are loaded (readiness, below), every request gets 503.
  let ready = false;
  const server = createSecureServer(options, (req, res) => {
    if (ready) {
      handler(req, res);
      return;
    }
    writeResponse(req, res, problem(503, 'the edge is starting: its keys and control state are not loaded yet', { headers: { 'retry-after': '1' } }));
  });
  // The HTTP/1.1 fallback reads its limits from these server properties (as http.Server does).
  Object.assign(server, {
    maxHeaderSize: config.maxHeaderBytes,
    headersTimeout: config.headersTimeoutMs,
    requestTimeout: config.requestTimeoutMs,
    keepAliveTimeout: 5_000,
    // How often the two timeouts above are checked; node's default (30 s) would dwarf them.
    connectionsCheckingInterval: 1_000,
  });
  server.setTimeout(config.idleTimeoutMs);

  const sockets = new Set<Socket>();
  const sessions = new Set<Http2Session>();
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  server.on('session', (session: Http2Session) => {
    sessions.add(session);
    session.once('close', () => sessions.delete(session));
  });
  // Gate between the handshake and HTTP: node's HTTP/2 (and HTTP/1.1 fallback) connection
  // listener is the server's only 'secureConnection' listener; it is wrapped so that a refused
  // client certificate never reaches an HTTP parser. TLS 1.3 clients finish the handshake before
  // the server has judged their certificate, so such a client sees its connection drop.
  const httpListeners = server.listeners('secureConnection');
  if (httpListeners.length !== 1) throw new TypeError('unexpected secureConnection listeners on the HTTP/2 server');
  const startHttp = httpListeners[0] as (socket: TLSSocket) => void;
  server.removeAllListeners('secureConnection');
  server.on('secureConnection', (socket: TLSSocket) => {
    const problem = socket.authorized ? clientCertificateProblem(socket.getPeerCertificate()) : 'unauthorized';
    if (problem !== undefined) {
      logger.warn({ reason: problem }, 'client certificate refused after the handshake');
      audit({ actor: 'unknown', action: 'tls.handshake', reason: handshakeReason(problem) });
      socket.destroy();
      return;
    }
    const forget = connections.add(certificateThumbprint(socket.getPeerCertificate().raw), socket);
    socket.once('close', forget);
    startHttp.call(server, socket);
  });
  // HTTP/1.1 parser errors (no request object yet): answer with ProblemDetails, as node's default
  // handler would with an empty body, then close.
  server.on('clientError', (err: Error & { code?: string }, socket: Duplex) => {
    const inFlight = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
    if (err.code === 'ECONNRESET' || !socket.writable || inFlight?.headersSent) {
      socket.destroy();
      return;
    }
    const [status, reason, detail] = PARSE_ERRORS[err.code ?? ''] ?? DEFAULT_PARSE_ERROR;
    logger.debug({ code: err.code ?? 'unknown', status }, 'malformed HTTP/1.1 request');
    socket.end(rawHttp1Response(problem(status, detail), reason));
  });
  server.on('tlsClientError', (err: Error & { code?: string }) => {
    const code = err.code ?? 'unknown';
    logger.info({ code }, 'TLS handshake failed');
    if (!UNREMARKABLE_TLS_ERRORS.has(code)) audit({ actor: 'unknown', action: 'tls.handshake', reason: code.toUpperCase() });
  });
  server.on('sessionError', (err: Error & { code?: string }) => {
    logger.debug({ code: err.code ?? 'unknown' }, 'HTTP/2 session error');
  });

  // Serve only with a signing key and every revocation, suspension and rotation published so far
  // applied; crypto may start later than the edge: answer 503 and retry until then.
  const readiness = untilReady({
    logger,
    steps: [
      { what: 'the delegated message-signing key', run: async () => void (await signingKey.renew()) },
      { what: 'the revocation feed', run: () => revocationFeed.start() },
      { what: 'the registry feed', run: () => registryFeed.start() },
      { what: 'the key feed', run: () => keyFeed.start() },
    ],
    onReady: () => {
      freshness = new Freshness(nc, [revocationFeed, registryFeed, keyFeed], config.stalenessBoundMs);
      ready = true;
    },
  });
  const release = async (): Promise<void> => {
    readiness.stop();
    revocationFeed.stop();
    registryFeed.stop();
    keyFeed.stop();
    await notifier.stop();
    apis.stop();
    signingKey.clear();
    for (const c of clients) c.close();
    await auditLog.flush();
    await nc.drain().catch(() => undefined);
    await telemetry.stop();
  };
  let port: number;
  try {
    port = await new Promise<number>((resolve, reject) => {
      server.once('error', reject);
      server.listen(config.port, common.listenHost, () => {
        server.off('error', reject);
        const addr = server.address();
        resolve(typeof addr === 'object' && addr ? addr.port : config.port);
      });
    });
  } catch (err) {
    await release();
    throw err;
  }
  server.on('error', (err: Error) => logger.error({ err }, 'listener error'));
  logger.info({ port, issuer: config.issuer }, 'edge serving');

  let stopped: Promise<void> | undefined;
  return {
    port,
    whenReady: readiness.whenReady,
    stop: () =>
      (stopped ??= (async () => {
        const closed = new Promise<void>(resolve => server.close(() => resolve()));
        for (const session of sessions) session.destroy();
        for (const socket of sockets) socket.destroy();
        await closed;
        await release();
        logger.info('edge stopped');
      })()),
  };
}
