import { constants as cryptoConstants } from 'node:crypto';
import { createSecureServer } from 'node:http2';
import type { Http2Session, SecureServerOptions } from 'node:http2';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import { int, loadConfig } from '@aese/config';
import type { Env, Setting } from '@aese/config';
import { createMeshClient } from '@aese/grpc-client';
import type { Logger } from '@aese/logger';
import { pkiLayout, readT8ServerTlsMaterial } from '@aese/pki';
import { AuthenticationServiceClient } from '@aese/protos/authentication/v1';
import { KeyPurpose as PbKeyPurpose, SignatureAlgorithm as PbAlgorithm } from '@aese/protos/common/v1';
import { CryptoServiceClient } from '@aese/protos/crypto/v1';
import type { PublicKey } from '@aese/protos/crypto/v1';
import { DEFAULT_EDGE_PORT, loadCommonConfig, portSetting, serviceId, serviceTls } from '@aese/runtime';
import type { Stoppable } from '@aese/runtime';
import { clientCertificateProblem } from './domain/client-certificate.js';
import { JwksCache } from './domain/jwks.js';
import type { KeyPurpose, PublishedKey } from './domain/jwks.js';
import { parseIssuer } from './domain/metadata.js';
import { problem } from './domain/responses.js';
import { createRequestHandler } from './handlers.js';
import { rawHttp1Response } from './http.js';

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
  const jwks = new JwksCache({ fetch: async () => (await crypto.getJwks({})).keys.map(toPublishedKey) });

  const handler = createRequestHandler({
    issuer: config.issuer,
    logger,
    jwks,
    bodyTimeoutMs: config.bodyTimeoutMs,
    maxHeaderBytes: config.maxHeaderBytes,
    resolveClient: async certificateDer => {
      const { applicationServer } = await authentication.resolveClient({ certificateDer: Buffer.from(certificateDer) });
      if (!applicationServer) throw new TypeError('ResolveClient answered without an application server');
      return applicationServer.scsAsId;
    },
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
  const server = createSecureServer(options, handler);
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
      socket.destroy();
      return;
    }
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
    logger.info({ code: err.code ?? 'unknown' }, 'TLS handshake failed');
  });
  server.on('sessionError', (err: Error & { code?: string }) => {
    logger.debug({ code: err.code ?? 'unknown' }, 'HTTP/2 session error');
  });

  const port = await new Promise<number>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, common.listenHost, () => {
      server.off('error', reject);
      const addr = server.address();
      resolve(typeof addr === 'object' && addr ? addr.port : config.port);
    });
  });
  server.on('error', (err: Error) => logger.error({ err }, 'listener error'));
  logger.info({ port, issuer: config.issuer }, 'edge serving');

  let stopped: Promise<void> | undefined;
  return {
    port,
    stop: () =>
      (stopped ??= (async () => {
        const closed = new Promise<void>(resolve => server.close(() => resolve()));
        for (const session of sessions) session.destroy();
        for (const socket of sockets) socket.destroy();
        await closed;
        authentication.close();
        crypto.close();
        logger.info('edge stopped');
      })()),
  };
}
