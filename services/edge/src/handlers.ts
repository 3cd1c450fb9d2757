import type { Logger } from '@aese/logger';
import { authorityMatchesServerName } from './domain/authority.js';
import { clientCertificateProblem } from './domain/client-certificate.js';
import type { JwksCache } from './domain/jwks.js';
import { jwksResponse } from './domain/jwks.js';
import { EDGE_PATHS, metadataResponse } from './domain/metadata.js';
import {
  isFormContentType,
  oauthErrorResponse,
  parseTokenRequest,
  TOKEN_REQUEST_MAX_BYTES,
  toOAuthError,
  tokenResponse,
} from './domain/oauth.js';
import type { IssuedToken, TokenRequest } from './domain/oauth.js';
import { problem } from './domain/responses.js';
import type { EdgeResponse } from './domain/responses.js';
import { BodyError, connectionOf, headerListSize, isHttp2, readBody, singleHeader, writeResponse } from './http.js';
import type { Connection, EdgeRequest, EdgeServerResponse } from './http.js';

/** What the HTTP handlers need from the rest of the mesh. */
export interface EdgeDependencies {
  readonly issuer: string;
  readonly logger: Logger;
  readonly jwks: JwksCache;
  /** The scsAsId a verified client certificate is registered to (authentication `ResolveClient`). */
  resolveClient(certificateDer: Uint8Array): Promise<string>;
  /** Issues an access token (authentication `IssueToken`). */
  issueToken(input: TokenRequest & { certificateDer: Uint8Array }): Promise<IssuedToken>;
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

type Route = (ctx: RouteContext) => Promise<EdgeResponse>;

const MAX_LOGGED_PATH = 128;

/**
 * The T8 listener's request handler: checks the connection (client certificate, `Host` against
 * SNI), routes, and writes exactly one answer. Nothing thrown inside reaches node: an unexpected
 * error becomes a generic 500 ProblemDetails and its cause goes to the log only.
 */
export function createRequestHandler(deps: EdgeDependencies): (req: EdgeRequest, res: EdgeServerResponse) => void {
  const { logger } = deps;
  // scsAsId per connection: the certificate cannot change within a TLS 1.3 connection.
  const identities = new WeakMap<object, Promise<string>>();

  const identify = (conn: Connection, der: Buffer): Promise<string> => {
    let found = identities.get(conn.key);
    if (!found) {
      found = deps.resolveClient(der);
      identities.set(conn.key, found);
      // A failure is not remembered: the next request asks again.
      found.catch(() => identities.delete(conn.key));
    }
    return found;
  };

  const token: Route = async ({ req, conn, certificateDer }) => {
    if (!isFormContentType(singleHeader(req, 'content-type'))) {
      return problem(415, 'the token endpoint accepts application/x-www-form-urlencoded only');
    }
    const body = await readBody(req, TOKEN_REQUEST_MAX_BYTES, deps.bodyTimeoutMs);
    let scsAsId: string | undefined;
    try {
      const request = parseTokenRequest(body, singleHeader(req, 'authorization'));
      scsAsId = await identify(conn, certificateDer);
      const issued = await deps.issueToken({ ...request, certificateDer });
      logger.info({ scsAsId, scope: issued.scope, expiresIn: issued.expiresIn }, 'access token issued');
      return tokenResponse(issued);
    } catch (err) {
      const oauth = toOAuthError(err);
      if (oauth.status >= 500) logger.error({ err, scsAsId: scsAsId ?? null }, 'token request failed');
      else logger.warn({ scsAsId: scsAsId ?? null, error: oauth.code, cause: (err as { code?: unknown }).code }, 'token request denied');
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
    [EDGE_PATHS.metadata]: { GET: metadata, HEAD: metadata },
    [EDGE_PATHS.jwks]: { GET: jwks, HEAD: jwks },
  };

  const handle = async (req: EdgeRequest): Promise<EdgeResponse | undefined> => {
    const conn = connectionOf(req);
    const cert = conn.tls.getPeerCertificate();
    // The listener already refused these; a second look costs nothing.
    if (!conn.tls.authorized || clientCertificateProblem(cert) !== undefined) {
      logger.warn({ reason: clientCertificateProblem(cert) ?? 'unauthorized' }, 'request on an unverified connection dropped');
      conn.kill();
      return undefined;
    }
    if (headerListSize(req) > deps.maxHeaderBytes) return problem(431, 'the request header block is too large');
    const authorities = isHttp2(req) ? [singleHeader(req, ':authority'), singleHeader(req, 'host')] : [singleHeader(req, 'host')];
    if (!authorityMatchesServerName(authorities, conn.tls.servername)) {
      return problem(421, 'the request authority does not match the TLS server name');
    }
    const url = req.url ?? '';
    if (!url.startsWith('/')) return problem(400, 'the request target must be a path');
    const path = url.split('?', 1)[0]!;
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
      out = await handle(req);
    } catch (err) {
      close = true;
      if (err instanceof BodyError) {
        if (err.kind === 'aborted') return;
        out =
          err.kind === 'too-large'
            ? problem(413, 'the request body is too large')
            : problem(408, 'the request body did not arrive in time');
      } else {
        logger.error({ err }, 'request failed');
        out = problem(500, 'internal error');
      }
    }
    if (out === undefined) return;
    writeResponse(req, res, out, { close });
    logger.debug(
      {
        method: req.method,
        path: (req.url ?? '').split('?', 1)[0]!.slice(0, MAX_LOGGED_PATH),
        status: out.status,
        http: req.httpVersion,
        ms: Date.now() - started,
      },
      'request',
    );
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
