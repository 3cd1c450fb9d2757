import { constants as cryptoConstants } from 'node:crypto';
import { createSecureServer } from 'node:http2';
import type { Http2Session, SecureServerOptions } from 'node:http2';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import type { AuditRecord } from '@aese/events';
import type { Logger } from '@aese/logger';
import { certificateThumbprint } from '@aese/pki';
import type { T8ServerTlsMaterial } from '@aese/pki';
import { clientCertificateProblem } from './domain/client-certificate.js';
import { problem } from './domain/responses.js';
import type { OpenConnections } from './domain/revocation-enforcement.js';
import { rawHttp1Response, writeResponse } from './http.js';
import type { EdgeRequest, EdgeServerResponse } from './http.js';

/** The listener's limits: the configured ones and the edge's fixed DEFAULT_* ones. */
export interface T8ListenerLimits {
  readonly maxHeaderBytes: number;
  readonly headersTimeoutMs: number;
  readonly requestTimeoutMs: number;
  readonly idleTimeoutMs: number;
  readonly handshakeTimeoutMs: number;
  readonly maxConcurrentStreams: number;
  readonly maxSessionMemoryMb: number;
}

export interface T8ListenerOptions {
  readonly tls: T8ServerTlsMaterial;
  readonly host: string;
  readonly port: number;
  readonly limits: T8ListenerLimits;
  /** Every request, once the edge is ready. */
  readonly handler: (req: EdgeRequest, res: EdgeServerResponse) => void;
  /** Each accepted connection is tracked here, so a revocation can close it. */
  readonly connections: OpenConnections;
  /** Records a refused handshake. */
  readonly audit: (record: Omit<AuditRecord, 'decision'>) => void;
  readonly logger: Logger;
}

/** The T8 HTTPS listener: 503 to every request until {@link setReady}. */
export interface T8Listener {
  /** From now on requests reach the handler. */
  setReady(): void;
  /** Binds the port; resolves with the port bound. */
  listen(): Promise<number>;
  /** Stops listening and destroys every open session and connection; resolves once closed. */
  close(): Promise<void>;
}

/** How HTTP/1.1 parser errors are answered: status, reason phrase and a fixed detail. */
const PARSE_ERRORS: Readonly<Record<string, readonly [number, string, string]>> = {
  HPE_HEADER_OVERFLOW: [431, 'Request Header Fields Too Large', 'the request header block is too large'],
  ERR_HTTP_REQUEST_TIMEOUT: [408, 'Request Timeout', 'the request did not arrive in time'],
  HPE_HEADERS_TIMEOUT: [408, 'Request Timeout', 'the request did not arrive in time'],
};
const DEFAULT_PARSE_ERROR = [400, 'Bad Request', 'the request is not valid HTTP/1.1'] as const;

/** The audit reason of a client certificate refused after the handshake. */
function handshakeReason(problem: string): string {
  return `CLIENT_CERTIFICATE_${problem.toUpperCase().replace(/-/g, '_')}`;
}

/** TLS errors that are a peer going away rather than a refusal worth an audit event. */
const UNREMARKABLE_TLS_ERRORS = new Set(['ECONNRESET', 'EPIPE']);

/**
 * The T8 HTTPS listener: TLS 1.3 only, HTTP/2 and HTTP/1.1, client certificates from the AS CA
 * only. It does not listen until {@link T8Listener.listen}.
 */
export function createT8Listener(options: T8ListenerOptions): T8Listener {
  const { tls, limits, handler, connections, audit, logger } = options;
  const serverOptions: SecureServerOptions = {
    key: tls.keyPem,
    cert: tls.certPem,
    // AS client certificates chain to the AS CA and to nothing else: not the mesh CA, not a public CA.
    ca: tls.clientCaPem,
    requestCert: true,
    rejectUnauthorized: true,
    minVersion: 'TLSv1.3',
    maxVersion: 'TLSv1.3',
    // No session tickets, so no resumption and no 0-RTT (node never enables early data either).
    secureOptions: cryptoConstants.SSL_OP_NO_TICKET | cryptoConstants.SSL_OP_NO_RENEGOTIATION,
    handshakeTimeout: limits.handshakeTimeoutMs,
    allowHTTP1: true,
    settings: { maxConcurrentStreams: limits.maxConcurrentStreams, maxHeaderListSize: limits.maxHeaderBytes },
    maxSessionMemory: limits.maxSessionMemoryMb,
    peerMaxConcurrentStreams: limits.maxConcurrentStreams,
    maxHeaderListPairs: 128,
    maxSessionInvalidFrames: 100,
    maxSessionRejectedStreams: 100,
    maxOutstandingPings: 10,
    maxSettings: 32,
    unknownProtocolTimeout: limits.handshakeTimeoutMs,
  };
  // Until the keys and control state are loaded (setReady), every request gets 503.
  let ready = false;
  const server = createSecureServer(serverOptions, (req, res) => {
    if (ready) {
      handler(req, res);
      return;
    }
    writeResponse(req, res, problem(503, 'the edge is starting: its keys and control state are not loaded yet', { headers: { 'retry-after': '1' } }));
  });
  // The HTTP/1.1 fallback reads its limits from these server properties (as http.Server does).
  Object.assign(server, {
    maxHeaderSize: limits.maxHeaderBytes,
    headersTimeout: limits.headersTimeoutMs,
    requestTimeout: limits.requestTimeoutMs,
    keepAliveTimeout: 5_000,
    // How often the two timeouts above are checked; node's default (30 s) would dwarf them.
    connectionsCheckingInterval: 1_000,
  });
  server.setTimeout(limits.idleTimeoutMs);

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

  return {
    setReady: () => {
      ready = true;
    },
    listen: async () => {
      const port = await new Promise<number>((resolve, reject) => {
        server.once('error', reject);
        server.listen(options.port, options.host, () => {
          server.off('error', reject);
          const addr = server.address();
          resolve(typeof addr === 'object' && addr ? addr.port : options.port);
        });
      });
      server.on('error', (err: Error) => logger.error({ err }, 'listener error'));
      return port;
    },
    close: async () => {
      const closed = new Promise<void>(resolve => server.close(() => resolve()));
      for (const session of sessions) session.destroy();
      for (const socket of sockets) socket.destroy();
      await closed;
    },
  };
}
