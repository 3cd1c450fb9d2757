import type { AuditRecord } from '@aese/events';
import type { Logger } from '@aese/logger';
import { isT8Path } from './domain/api-catalogue.js';
import type { ApplicationServer } from './domain/application-server.js';
import { authorityMatchesServerName, requestAuthority } from './domain/authority.js';
import { clientCertificateProblem } from './domain/client-certificate.js';
import type { JwksCache } from './domain/jwks.js';
import { jwksResponse } from './domain/jwks.js';
import { EDGE_PATHS, metadataResponse } from './domain/metadata.js';
import {
  isFormContentType,
  oauthErrorResponse,
  oauthRateLimited,
  parseRevocationRequest,
  parseTokenRequest,
  TOKEN_REQUEST_MAX_BYTES,
  toOAuthError,
  tokenResponse,
} from './domain/oauth.js';
import type { IssuedToken, TokenRequest } from './domain/oauth.js';
import type { RateLimiter } from './domain/rate-limiter.js';
import { problem } from './domain/responses.js';
import type { EdgeResponse } from './domain/responses.js';
import type { ConnectionIdentities } from './domain/connection-identities.js';
import { traceIdOf } from './domain/trace-id.js';
import { authorityFieldsOf, BodyError, connectionOf, fieldLinesOf, headerListSize, readBody, singleHeader, writeResponse } from './http.js';
import type { Connection, EdgeRequest, EdgeServerResponse } from './http.js';
import type { T8Answer, T8Request } from './t8-handler.js';

/** What the HTTP handlers need from the rest of the mesh. */
export interface EdgeDependencies {
  readonly issuer: string;
  readonly logger: Logger;
  readonly jwks: JwksCache;
  /** The SCS/AS of each connection's verified client certificate (authentication `ResolveClient`). */
  readonly identities: ConnectionIdentities<ApplicationServer>;
  /** RFC 7009: revokes a token if it is one of the presenting client's own; tells whether it was. */
  readonly revokeToken: (token: string, certificateDer: Uint8Array) => Promise<boolean>;
  /** The protected T8 path (`/3gpp-*`); without it those paths are unknown (404). */
  readonly t8?: (request: T8Request) => Promise<T8Answer | undefined>;
  /** Records one audit event for a refused request (token endpoint, authority, header limits). */
  audit(record: Omit<AuditRecord, 'decision'>): void;
  /** Issues an access token (authentication `IssueToken`). */
  issueToken(input: TokenRequest & { certificateDer: Uint8Array }): Promise<IssuedToken>;
  /** Per-AS buckets for the token and revocation endpoints together (apart from the T8 ones). */
  readonly oauthLimiter?: RateLimiter;
  /** Longest time a request body may take to arrive. */
  readonly bodyTimeoutMs: number;
  /** Largest header list accepted (the HTTP/1.1 parser enforces it too). */
  readonly maxHeaderBytes: number;
}

/** What a route sees of a request: its connection and the verified client certificate. */
interface RouteContext {
  readonly req: EdgeRequest;
  readonly conn: Connection;
  readonly certificateDer: Buffer;
}

/** The trace id of a request (its `traceparent`, or a fresh one) for the audit trail. */
function traceOf(req: EdgeRequest): string {
  return traceIdOf(fieldLinesOf(req)['traceparent']);
}

type Route = (ctx: RouteContext) => Promise<EdgeResponse | T8Answer | undefined>;

/** The audit reason of a refused token or revocation request: the mesh's error code when there is one. */
function oauthDenialReason(oauth: { status: number; code: string }, cause: unknown): string {
  if (oauth.status === 429) return 'RATE_LIMITED';
  return typeof cause === 'string' && /^[A-Z_]{1,64}$/.test(cause) ? cause : oauth.code.toUpperCase();
}

const MAX_LOGGED_PATH = 128;

/**
 * The path as logged: no query, and for T8 APIs only `/<api>/<version>` (the rest of a T8 path is
 * chosen by the AS and could carry anything, a UE identifier included).
 */
function loggedPath(url: string): string {
  const path = url.split('?', 1)[0];
  if (isT8Path(path)) return path.split('/').slice(0, 3).join('/').slice(0, MAX_LOGGED_PATH);
  return path.slice(0, MAX_LOGGED_PATH);
}

/**
 * The T8 listener's request handler: checks the connection (client certificate, `Host` against
 * SNI), routes, and writes exactly one answer. Nothing thrown inside reaches node: an unexpected
 * error becomes a generic 500 ProblemDetails and its cause goes to the log only.
 */
export function createRequestHandler(deps: EdgeDependencies): (req: EdgeRequest, res: EdgeServerResponse) => void {
  const { logger } = deps;
  const identify = (conn: Connection, der: Buffer): ApplicationServer | Promise<ApplicationServer> => deps.identities.get(conn.key, der);
  /** Throws a 429 once the AS has used up its token/revocation budget, before any work is done for it. */
  const limit = (scsAsId: string): void => {
    const rate = deps.oauthLimiter?.take(scsAsId);
    if (rate && !rate.allowed) throw oauthRateLimited(rate.retryAfterS);
  };

  const token: Route = async ({ req, conn, certificateDer }) => {
    const denied = (actor: string | undefined, reason: string): void => deps.audit({ actor: actor ?? 'unknown', action: 'oauth.token', reason, traceId: traceOf(req) });
    if (!isFormContentType(singleHeader(req, 'content-type'))) {
      denied(undefined, 'UNSUPPORTED_MEDIA_TYPE');
      return problem(415, 'the token endpoint accepts application/x-www-form-urlencoded only');
    }
    let body: Buffer;
    try {
      body = await readBody(req, TOKEN_REQUEST_MAX_BYTES, deps.bodyTimeoutMs);
    } catch (err) {
      if (err instanceof BodyError && err.kind !== 'aborted') denied(undefined, err.kind === 'too-large' ? 'BODY_TOO_LARGE' : 'BODY_TIMEOUT');
      throw err;
    }
    let scsAsId: string | undefined;
    try {
      const request = parseTokenRequest(body, singleHeader(req, 'authorization'));
      scsAsId = (await identify(conn, certificateDer)).scsAsId;
      limit(scsAsId);
      const issued = await deps.issueToken({ ...request, certificateDer });
      logger.info({ scsAsId, scope: issued.scope, expiresIn: issued.expiresIn }, 'access token issued');
      return tokenResponse(issued);
    } catch (err) {
      const oauth = toOAuthError(err);
      const cause = (err as { code?: unknown }).code;
      if (oauth.status >= 500) logger.error({ err, scsAsId: scsAsId ?? null }, 'token request failed');
      else if (oauth.status !== 429) logger.warn({ scsAsId: scsAsId ?? null, error: oauth.code, cause }, 'token request denied');
      denied(scsAsId, oauthDenialReason(oauth, cause));
      return oauthErrorResponse(oauth);
    }
  };

  // RFC 7009: an AS revokes one of its own tokens. The answer is 200 whether or not the token was
  // valid and its own (section 2.2), so the endpoint tells nothing about other clients' tokens.
  const revoke: Route = async ({ req, conn, certificateDer }) => {
    const denied = (actor: string | undefined, reason: string): void => deps.audit({ actor: actor ?? 'unknown', action: 'oauth.revoke', reason, traceId: traceOf(req) });
    if (!isFormContentType(singleHeader(req, 'content-type'))) {
      denied(undefined, 'UNSUPPORTED_MEDIA_TYPE');
      return problem(415, 'the revocation endpoint accepts application/x-www-form-urlencoded only');
    }
    const body = await readBody(req, TOKEN_REQUEST_MAX_BYTES, deps.bodyTimeoutMs);
    let scsAsId: string | undefined;
    try {
      const request = parseRevocationRequest(body, singleHeader(req, 'authorization'));
      scsAsId = (await identify(conn, certificateDer)).scsAsId;
      limit(scsAsId);
      const revoked = await deps.revokeToken(request.token, certificateDer);
      logger.info({ scsAsId, revoked }, 'token revocation requested');
      return { status: 200, headers: { 'cache-control': 'no-store' }, body: undefined };
    } catch (err) {
      const oauth = toOAuthError(err);
      denied(scsAsId, oauthDenialReason(oauth, (err as { code?: unknown }).code));
      return oauthErrorResponse(oauth);
    }
  };

  const metadata: Route = async () => metadataResponse(deps.issuer);

  const jwks: Route = async () => {
    try {
      return jwksResponse(await deps.jwks.get());
    } catch (err) {
      logger.error({ err }, 'key set unavailable');
      return problem(503, 'the key set is temporarily unavailable', { headers: { 'retry-after': '1' } });
    }
  };

  const routes: Readonly<Record<string, Readonly<Record<string, Route>>>> = {
    [EDGE_PATHS.token]: { POST: token },
    [EDGE_PATHS.revoke]: { POST: revoke },
    [EDGE_PATHS.metadata]: { GET: metadata, HEAD: metadata },
    [EDGE_PATHS.jwks]: { GET: jwks, HEAD: jwks },
  };

  /**
   * The verified client certificate of a connection and the second look at it, once per
   * connection: node builds a fresh certificate object on every getPeerCertificate() call, and
   * a TLS 1.3 connection without renegotiation keeps its certificate for life.
   */
  const peers = new WeakMap<object, { raw: Buffer; problem: string | undefined }>();
  const peerOf = (conn: Connection): { raw: Buffer; problem: string | undefined } => {
    let peer = peers.get(conn.key);
    if (!peer) {
      const cert = conn.tls.getPeerCertificate();
      peer = { raw: cert.raw, problem: conn.tls.authorized ? clientCertificateProblem(cert) : 'unauthorized' };
      peers.set(conn.key, peer);
    }
    return peer;
  };

  const handle = async (req: EdgeRequest): Promise<EdgeResponse | T8Answer | undefined> => {
    const conn = connectionOf(req);
    const cert = peerOf(conn);
    // The listener already refused these; a second look costs nothing.
    if (cert.problem !== undefined) {
      logger.warn({ reason: cert.problem }, 'request on an unverified connection dropped');
      conn.kill();
      return undefined;
    }
    const url = req.url ?? '';
    const path = url.split('?', 1)[0];
    const action = isT8Path(path) ? 't8.request' : 'http.request';
    if (headerListSize(req) > deps.maxHeaderBytes) {
      deps.audit({ actor: 'unknown', action, reason: 'HEADERS_TOO_LARGE', traceId: traceOf(req) });
      return problem(431, 'the request header block is too large');
    }
    const authority = requestAuthority(authorityFieldsOf(req));
    if (!authority.ok) {
      deps.audit({ actor: 'unknown', action, reason: authority.fault, traceId: traceOf(req) });
      return problem(400, 'the request must name one authority: exactly one Host, agreeing with :authority and an absolute target');
    }
    if (!authorityMatchesServerName(authority.authority, conn.tls.servername)) {
      deps.audit({ actor: 'unknown', action, reason: 'AUTHORITY_MISMATCH', traceId: traceOf(req) });
      return problem(421, 'the request authority does not match the TLS server name');
    }
    if (!url.startsWith('/')) return problem(400, 'the request target must be a path');
    if (deps.t8 && isT8Path(path)) return deps.t8({ req, certificateDer: cert.raw, authority: authority.authority, identity: () => identify(conn, cert.raw) });
    const byMethod = routes[path];
    if (!byMethod || !Object.hasOwn(routes, path)) return problem(404, 'no such resource');
    const route = Object.hasOwn(byMethod, req.method ?? '') ? byMethod[req.method!] : undefined;
    if (!route) return problem(405, 'method not allowed', { headers: { allow: Object.keys(byMethod).join(', ') } });
    return route({ req, conn, certificateDer: cert.raw });
  };

  /** Runs a request to exactly one answer; a refused body or a failure closes the connection. */
  const respond = async (req: EdgeRequest, res: EdgeServerResponse): Promise<void> => {
    const started = Date.now();
    let out: EdgeResponse | undefined;
    let close = false;
    try {
      const answer = await handle(req);
      if (answer !== undefined && 'response' in answer) {
        out = answer.response;
        close = answer.close;
      } else {
        out = answer;
      }
    } catch (err) {
      close = true;
      if (err instanceof BodyError) {
        if (err.kind === 'aborted') return;
        out = err.kind === 'too-large' ? problem(413, 'the request body is too large') : problem(408, 'the request body did not arrive in time');
      } else {
        logger.error({ err }, 'request failed');
        out = problem(500, 'internal error');
      }
    }
    if (out === undefined) return;
    writeResponse(req, res, out, { close });
    // Built only when it is written: this runs for every request.
    if (logger.isLevelEnabled('debug')) {
      logger.debug({ method: req.method, path: loggedPath(req.url ?? ''), status: out.status, http: req.httpVersion, ms: Date.now() - started }, 'request');
    }
  };

  return (req, res) => {
    respond(req, res).catch((err: unknown) => {
      // Writing the answer failed (the connection went away mid-write): nothing left to tell.
      logger.warn({ err }, 'response failed');
      try {
        connectionOf(req).kill();
      } catch {
        // Already gone.
      }
    });
  };
}
