import { AeseError } from '@aese/errors';
import type { HttpMessageView, VerifiedSignature } from '@aese/http-signatures';
import type { Logger } from '@aese/logger';
import { activeTraceId, contextFromTraceparent, failSpan, inSpan, inSpanSync, inSpanSoon } from '@aese/telemetry';
import type { ReplayRefusalMetrics, T8Outcome, T8RequestMetrics } from '@aese/telemetry';
import { SpanKind } from '@opentelemetry/api';
import type { Span } from '@opentelemetry/api';
import type { ApiCatalogue } from './domain/api-catalogue.js';
import type { ApplicationServer } from './domain/application-server.js';
import { bearerToken } from './domain/bearer.js';
import type { DelegatedSigningKey, SigningKey } from './domain/delegated-signing-key.js';
import { checkDigest, isSigned, requestView, RequestSignatureRefused, signResponse, verifyRequestSignature } from './domain/message-signatures.js';
import type { RateLimiter } from './domain/rate-limiter.js';
import { isJsonContentType } from './domain/request-media-type.js';
import { acceptsJose, encryptBody, ENCRYPT_RESPONSE_OBLIGATION, JOSE_MEDIA_TYPE } from './domain/response-encryption.js';
import type { EdgeResponse } from './domain/responses.js';
import { deny, signatureDenial } from './domain/t8-denials.js';
import type { Denial, DenialKind } from './domain/t8-denials.js';
import type { CachingTokenVerifier, VerifiedToken } from './domain/token-cache.js';
import { traceIdOf } from './domain/trace-id.js';
import { BodyError, fieldLinesOf, readBody, serialisedBody, singleHeader } from './http.js';
import type { EdgeRequest } from './http.js';

/** What the replay guard says about a nonce (aese.replay_guard.v1 Verdict). */
export type ReplayVerdict = 'accepted' | 'replayed' | 'stale' | 'future';

/** A T8 call handed to capability-exposure (InvokeRequest). */
export interface InvokeCall {
  readonly scsAsId: string;
  readonly method: string;
  readonly path: string;
  readonly contentType: string;
  readonly body: Uint8Array;
  readonly scopes: readonly string[];
  readonly apiRoot: string;
}

/** Capability-exposure's answer (InvokeResponse). */
export interface InvokeAnswer {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Uint8Array;
  readonly obligations: readonly { readonly type: string; readonly parameters: Readonly<Record<string, string>> }[];
}

/** One refusal, as the edge audits it. */
export interface T8AuditEvent {
  readonly actor: string;
  readonly reason: string;
  readonly traceId: string;
  readonly status: number;
  readonly api?: string;
}

/** What the protected T8 path needs from the rest of the edge and the mesh. */
export interface T8Dependencies {
  readonly logger: Logger;
  /** The API root ASes see (`api_root` for Location headers): the configured issuer. */
  readonly apiRoot: string;
  readonly limiter: RateLimiter;
  readonly tokens: CachingTokenVerifier;
  readonly apis: () => ApiCatalogue | Promise<ApiCatalogue | undefined> | undefined;
  readonly signingKey: DelegatedSigningKey;
  /** replay-guard CheckAndRecord; throws when it cannot decide. */
  checkReplay(scsAsId: string, nonce: string, created: number): Promise<ReplayVerdict>;
  /** capability-exposure Invoke. */
  invoke(call: InvokeCall): InvokeAnswer | Promise<InvokeAnswer>;
  audit(event: T8AuditEvent): void;
  readonly maxBodyBytes: number;
  readonly bodyTimeoutMs: number;
  /** Accepted age and skew of a signature's `created`, in seconds. */
  readonly windowS: number;
  readonly skewS: number;
  readonly now?: () => number;
  /** Request durations by API and outcome, and replay refusals by verdict. */
  readonly metrics?: { readonly requests: T8RequestMetrics; readonly replayRefusals: ReplayRefusalMetrics };
}

/** One T8 request as the listener hands it over: the request, its certificate, its connection's AS. */
export interface T8Request {
  readonly req: EdgeRequest;
  readonly certificateDer: Uint8Array;
  /** The request's one authority, as the connection checks established it (`:authority` or `Host`). */
  readonly authority: string;
  /** The connection's SCS/AS (cached per connection, so mostly known at once); may throw. */
  readonly identity: () => ApplicationServer | Promise<ApplicationServer>;
}

/** The answer to write; `close` ends an HTTP/1.1 connection after it (an unread body). */
export interface T8Answer {
  readonly response: EdgeResponse;
  readonly close: boolean;
}

/** Response headers of capability-exposure that reach the AS; anything else stays inside. */
const RELAYED_HEADERS = ['location', 'allow'] as const;

/** Carries a refusal out of the pipeline's steps. */
class Refused extends Error {
  constructor(readonly denial: Denial) {
    super(denial.reason);
  }

  /** The stable reason, which a failed span records. */
  get code(): string {
    return this.denial.reason;
  }
}

/** A value at hand, or one still to come: the pipeline awaits only what is really pending. */
type Soon<T> = T | Promise<T>;

/**
 * One step of the pipeline in a child span of the request's: a refusal ends the trace there. A
 * step whose work is already done (a cached identity, a body already read) gives its value at
 * once; with tracing on every step is a span around whatever it waits for.
 */
function step<T>(name: string, fn: () => Soon<T>): Soon<T> {
  return inSpanSoon(`t8.${name}`, fn);
}

const rethrow = (err: unknown): never => {
  throw err;
};

/**
 * `next` of what `produce` gives, at once when it is at hand, else when it comes; a throw or a
 * rejection of `produce` goes to `failed` (by default it goes on as it is).
 */
function andThen<T, R>(produce: () => Soon<T>, next: (value: T) => Soon<R>, failed: (err: unknown) => never = rethrow): Soon<R> {
  let value: Soon<T>;
  try {
    value = produce();
  } catch (err) {
    return failed(err);
  }
  return value instanceof Promise ? value.then(next, failed) : next(value);
}

/** A step that never waits: a plain call with tracing off. */
function stepNow<T>(name: string, fn: () => T): T {
  return inSpanSync(`t8.${name}`, fn);
}

const T8_SPAN = { kind: SpanKind.SERVER } as const;

function refuse(kind: DenialKind, reason?: string, extra?: Parameters<typeof deny>[2]): never {
  throw new Refused(deny(kind, reason, extra));
}

/** How step 5 ended: judged only after the token's verdict. */
type SignatureOutcome = { readonly ok: true; readonly view: HttpMessageView; readonly verified: VerifiedSignature | undefined } | { readonly ok: false; readonly error: unknown };

/** What steps 4 and 5 establish: the token, and the nonce and time of a verified signature. */
interface Credentials {
  readonly token: VerifiedToken;
  readonly nonce?: string;
  readonly created?: number;
}

/** Per request state shared by the steps. */
interface Exchange {
  readonly traceId: string;
  readonly fields: Record<string, string[]>;
  as?: ApplicationServer;
  api?: string;
  hasBody: boolean;
  /** The request view whose signature verified: the response signature covers it. */
  signedRequest?: HttpMessageView;
  close: boolean;
  /** Set once the refusal is audited: one audit event per request, never two. */
  audited: boolean;
}

function dependencyDenial(err: unknown, what: string): Denial {
  if (err instanceof AeseError && (err.code === 'UNAVAILABLE' || err.code === 'DEADLINE_EXCEEDED')) return deny('UNAVAILABLE', `${what}_UNAVAILABLE`);
  return deny('UNAVAILABLE', `${what}_FAILED`);
}

/**
 * The protected T8 request path (T8 profile sections 4-6, issue 3). In order, each step failing
 * closed with a ProblemDetails answer and nothing downstream called after a refusal:
 *
 * 1. the connection's certificate -> the SCS/AS (resolved once per connection);
 * 2. the AS's token bucket (429 + Retry-After, before any other work);
 * 3. the body, read up to a cap (413) and only if JSON (415);
 * 4-5. the bearer token (cached verification per token and certificate) and the RFC 9421
 *    signature with the Content-Digest (checked before anything parses the body), concurrently;
 * 6. the route from capability-exposure's API list: the token's scope (403 insufficient_scope),
 *    the path's `{scsAsId}` (403), and that the response can be signed and, if asked, encrypted;
 * 7. the replay guard, only for a verified signature, as the last gate (401; 503 when it cannot
 *    decide, nothing executed);
 * 8. capability-exposure Invoke; its obligations (encrypt-response, rate-limit) carried out;
 * 9. the response signed with the delegated key (every answer once the AS is known).
 *
 * Steps 6's checks need no service, so they run before the replay check: a request that would
 * be refused anyway costs no replay-guard call. Every refusal is audited exactly once.
 */
export function createT8Handler(deps: T8Dependencies): (request: T8Request) => Promise<T8Answer | undefined> {
  const now = deps.now ?? Date.now;
  const { logger } = deps;

  const identityRefusal = (err: unknown): never => {
    if (err instanceof AeseError && err.code === 'INVALID_CLIENT') refuse('CLIENT_NOT_REGISTERED');
    throw new Refused(dependencyDenial(err, 'AUTHENTICATION'));
  };

  const admitted = (x: Exchange, as: ApplicationServer): ApplicationServer => {
    x.as = as;
    if (!as.active) refuse('CLIENT_NOT_ACTIVE');
    return as;
  };

  const authenticate = (x: Exchange, request: T8Request): Soon<ApplicationServer> =>
    andThen(
      () => request.identity(),
      as => admitted(x, as),
      identityRefusal,
    );

  const bodyRefusal = (x: Exchange, err: unknown): never => {
    if (!(err instanceof BodyError)) throw err;
    x.close = true;
    if (err.kind === 'too-large') refuse('BODY_TOO_LARGE');
    if (err.kind === 'timeout') refuse('BODY_TIMEOUT');
    throw err;
  };

  const acceptedBody = (x: Exchange, req: EdgeRequest, body: Buffer): Buffer => {
    x.hasBody = body.length > 0;
    if (x.hasBody && !isJsonContentType(singleHeader(req, 'content-type'))) refuse('UNSUPPORTED_MEDIA_TYPE');
    return body;
  };

  const readT8Body = (x: Exchange, req: EdgeRequest): Soon<Buffer> =>
    andThen(
      () => readBody(req, deps.maxBodyBytes, deps.bodyTimeoutMs),
      body => acceptedBody(x, req, body),
      err => bodyRefusal(x, err),
    );

  const tokenRefusal = (err: unknown): never => {
    if (err instanceof AeseError && (err.code === 'INVALID_TOKEN' || err.code === 'UNAUTHENTICATED' || err.code === 'INVALID_INPUT')) refuse('INVALID_TOKEN');
    throw new Refused(dependencyDenial(err, 'AUTHENTICATION'));
  };

  /** The verdicts of steps 4 and 5 together: the token's first. */
  const judgeCredentials = (x: Exchange, as: ApplicationServer, token: VerifiedToken, signature: SignatureOutcome): Credentials => {
    // The authentication service binds the token to this certificate; this is a second look.
    if (token.scsAsId !== as.scsAsId) refuse('INVALID_TOKEN', 'TOKEN_AS_MISMATCH');
    if (!signature.ok) {
      const err = signature.error;
      if (err instanceof RequestSignatureRefused) throw new Refused(signatureDenial(err.reason, x.hasBody));
      throw err;
    }
    if (!signature.verified) return { token };
    x.signedRequest = signature.view;
    return { token, nonce: signature.verified.nonce!, created: signature.verified.created! };
  };

  /**
   * Steps 4 and 5: the token and the signature. A token not in the cache is asked for first, and
   * the signature is verified while that call is under way; the token's verdict is judged first.
   */
  const verifyCredentials = (x: Exchange, request: T8Request, as: ApplicationServer, body: Buffer): Soon<Credentials> => {
    const bearer = bearerToken(x.fields['authorization']);
    if ('problem' in bearer) refuse(bearer.problem);
    let token: Soon<VerifiedToken>;
    try {
      token = step('token', () => deps.tokens.get(bearer.token, as.thumbprint, request.certificateDer));
    } catch (err) {
      return tokenRefusal(err);
    }
    const req = request.req;
    // The target as received: the one string the signature covers, the route matches and Invoke gets.
    const view = requestView(req.method ?? '', req.url ?? '', request.authority, x.fields);
    let signature: SignatureOutcome;
    try {
      signature = { ok: true, view, verified: stepNow('signature', () => checkSignature(x, as, view, body)) };
    } catch (error) {
      signature = { ok: false, error };
    }
    if (token instanceof Promise) return token.then(t => judgeCredentials(x, as, t, signature), tokenRefusal);
    return judgeCredentials(x, as, token, signature);
  };

  /** Step 5 alone: the verified signature, or none for an unsigned request of a legacy AS. */
  const checkSignature = (x: Exchange, as: ApplicationServer, view: HttpMessageView, body: Buffer): VerifiedSignature | undefined => {
    if (isSigned(x.fields)) {
      return verifyRequestSignature({ view, body, keys: as.signingKeys, nowS: Math.floor(now() / 1000), windowS: deps.windowS, skewS: deps.skewS });
    }
    if (as.signatureProfile === 'required') throw new RequestSignatureRefused('SIGNATURE_SIGNATURE_MISSING');
    // An unsigned request of a legacy AS: a digest it sends is still checked.
    if (x.hasBody && x.fields['content-digest'] !== undefined) checkDigest(view, body);
    return undefined;
  };

  const route = (x: Exchange, req: EdgeRequest, as: ApplicationServer, token: VerifiedToken, catalogue: ApiCatalogue | undefined): void => {
    if (!catalogue) refuse('UNAVAILABLE', 'API_CATALOGUE_UNAVAILABLE');
    const match = catalogue.match(req.method ?? '', req.url ?? '');
    if (match.kind === 'no-route') refuse('NO_SUCH_RESOURCE', 'NO_SUCH_API_ROUTE');
    if (match.kind === 'method-not-allowed') refuse('METHOD_NOT_ALLOWED', 'METHOD_NOT_ALLOWED', { headers: { allow: match.allowed.join(', ') } });
    x.api = match.module.name;
    if (!token.scopes.includes(match.module.scope)) refuse('INSUFFICIENT_SCOPE', 'INSUFFICIENT_SCOPE', { scope: match.module.scope });
    const pathAs = match.params['scsAsId'];
    if (pathAs !== undefined && pathAs !== as.scsAsId) refuse('SCS_AS_ID_MISMATCH');
  };

  const checkReplay = async (as: ApplicationServer, nonce: string, created: number): Promise<void> => {
    let verdict: ReplayVerdict;
    try {
      verdict = await deps.checkReplay(as.scsAsId, nonce, created);
    } catch (err) {
      // The guard refuses malformed input; anything else means it could not decide: fail closed.
      const invalid = err instanceof AeseError && err.code === 'INVALID_INPUT';
      deps.metrics?.replayRefusals.refused(invalid ? 'invalid' : 'unavailable');
      if (invalid) refuse('INVALID_SIGNATURE', 'REPLAY_INVALID_INPUT');
      throw new Refused(dependencyDenial(err, 'REPLAY_GUARD'));
    }
    if (verdict !== 'accepted') deps.metrics?.replayRefusals.refused(verdict);
    if (verdict === 'replayed') refuse('REPLAYED_REQUEST', 'REPLAYED');
    if (verdict === 'stale') refuse('STALE_REQUEST', 'REPLAY_STALE');
    if (verdict === 'future') refuse('STALE_REQUEST', 'REPLAY_FUTURE');
  };

  /** Steps 8 and 9's first half: capability-exposure's answer, with the edge's obligations carried out. */
  const execute = (req: EdgeRequest, as: ApplicationServer, token: VerifiedToken, body: Buffer, wantsJose: boolean): Soon<EdgeResponse> => {
    const call: InvokeCall = {
      scsAsId: as.scsAsId,
      method: req.method ?? '',
      path: req.url ?? '',
      contentType: singleHeader(req, 'content-type') ?? '',
      body,
      scopes: token.scopes,
      apiRoot: deps.apiRoot,
    };
    return andThen(
      () => deps.invoke(call),
      out => answered(as, out, wantsJose),
      err => {
        throw new Refused(dependencyDenial(err, 'CAPABILITY_EXPOSURE'));
      },
    );
  };

  const answered = (as: ApplicationServer, out: InvokeAnswer, wantsJose: boolean): Soon<EdgeResponse> => {
    let encrypt = wantsJose;
    for (const o of out.obligations) {
      if (o.type === ENCRYPT_RESPONSE_OBLIGATION) encrypt = true;
      else if (o.type === 'rate-limit') deps.limiter.lower(as.scsAsId, Number(o.parameters['perSecond']));
    }
    const headers: Record<string, string> = { 'cache-control': 'no-store' };
    for (const name of RELAYED_HEADERS) if (out.headers[name] !== undefined) headers[name] = out.headers[name];
    const contentType = out.headers['content-type'];
    if (!encrypt || out.body.length === 0) {
      if (contentType !== undefined) headers['content-type'] = contentType;
      return { status: out.status, headers, body: undefined, bytes: out.body };
    }
    // Obliged but impossible: no plaintext ever leaves (the operation itself has run).
    if (!as.encryptionKey) refuse('ENCRYPTION_OBLIGED_WITHOUT_KEY');
    return encryptBody(out.body, contentType ?? 'application/json', as.encryptionKey).then(bytes => {
      headers['content-type'] = JOSE_MEDIA_TYPE;
      return { status: out.status, headers, body: undefined, bytes };
    });
  };

  const signed = (x: Exchange, response: EdgeResponse, key: SigningKey): EdgeResponse => {
    const bytes = serialisedBody(response);
    const contentType = response.headers['content-type'];
    const signature = signResponse({ status: response.status, contentType, body: bytes, signedRequest: x.signedRequest }, key, Math.floor(now() / 1000));
    return { status: response.status, headers: { ...response.headers, ...signature }, body: undefined, bytes };
  };

  const refused = (x: Exchange, denial: Denial): void => {
    if (x.audited) return;
    x.audited = true;
    const actor = x.as?.scsAsId ?? 'unknown';
    deps.audit({ actor, reason: denial.reason, traceId: x.traceId, status: denial.response.status, ...(x.api ? { api: x.api } : {}) });
    const fields = { scsAsId: actor, reason: denial.reason, status: denial.response.status, traceId: x.traceId };
    if (denial.response.status >= 500) logger.warn(fields, 't8 request not executed');
    else logger.info(fields, 't8 request refused');
  };

  /** Every request is measured once, where its answer is known. */
  const measured = (x: Exchange, startedMs: number, answer: T8Answer | undefined): T8Answer | undefined => {
    if (deps.metrics) {
      const status = answer?.response.status ?? 0;
      const outcome: T8Outcome = !answer ? 'aborted' : !x.audited ? 'served' : status >= 500 ? 'unavailable' : 'refused';
      deps.metrics.requests.record(x.api ?? 'unknown', outcome, status, (performance.now() - startedMs) / 1000);
    }
    return answer;
  };

  const handle = async (request: T8Request, fields: Record<string, string[]>, span: Span): Promise<T8Answer | undefined> => {
    const startedMs = performance.now();
    // The span's trace id is the AS's when it sent a valid traceparent; with tracing off, the header's.
    // Only a refused or failed request needs its trace id (audit, logs): worked out then, once.
    let traceId: string | undefined;
    const x: Exchange = {
      get traceId() {
        return (traceId ??= activeTraceId() ?? traceIdOf(fields['traceparent']));
      },
      fields,
      hasBody: false,
      close: false,
      audited: false,
    };
    let response: EdgeResponse;
    try {
      const identity = step('authenticate', () => authenticate(x, request));
      const as = identity instanceof Promise ? await identity : identity;
      if (span.isRecording()) span.setAttribute('aese.scs_as_id', as.scsAsId);
      stepNow('rate-limit', () => {
        const rate = deps.limiter.take(as.scsAsId);
        if (!rate.allowed) refuse('RATE_LIMITED', 'RATE_LIMITED', { retryAfterS: rate.retryAfterS });
      });
      const read = step('body', () => readT8Body(x, request.req));
      const body = read instanceof Promise ? await read : read;
      const checked = verifyCredentials(x, request, as, body);
      const { token, nonce, created } = checked instanceof Promise ? await checked : checked;
      const routed = step('route', () =>
        andThen(
          () => deps.apis(),
          catalogue => route(x, request.req, as, token, catalogue),
        ),
      );
      if (routed instanceof Promise) await routed;
      const wantsJose = acceptsJose(x.fields['accept']);
      if (wantsJose && !as.encryptionKey) refuse('ENCRYPTION_KEY_NOT_REGISTERED');
      // A response that could not be signed must not follow an executed request.
      if (!deps.signingKey.usable()) {
        try {
          await deps.signingKey.current();
        } catch (err) {
          throw new Refused(dependencyDenial(err, 'SIGNING_KEY'));
        }
      }
      if (nonce !== undefined && created !== undefined) await step('replay', () => checkReplay(as, nonce, created));
      const executed = step('invoke', () => execute(request.req, as, token, body, wantsJose));
      response = executed instanceof Promise ? await executed : executed;
    } catch (err) {
      if (err instanceof BodyError && err.kind === 'aborted') return measured(x, startedMs, undefined);
      let denial: Denial;
      if (err instanceof Refused) denial = err.denial;
      else {
        logger.error({ err, traceId: x.traceId }, 't8 request failed');
        denial = deny('INTERNAL', 'INTERNAL_ERROR');
      }
      refused(x, denial);
      if (span.isRecording()) {
        span.setAttribute('aese.reason', denial.reason);
        if (denial.response.status >= 500) failSpan(span, err, denial.reason);
      }
      response = { ...denial.response, headers: { ...denial.response.headers, 'cache-control': 'no-store' } };
    }
    // Answers before the AS is known are not signed: nothing authenticated asked for them.
    if (!x.as) return measured(x, startedMs, { response, close: x.close });
    const key = deps.signingKey.usable() ?? (await deps.signingKey.current().catch(() => undefined));
    if (!key) {
      // No key to sign with (checked before Invoke, so this is a refusal in all but a freak race): 503, unsigned.
      refused(x, deny('UNAVAILABLE', 'SIGNING_KEY_UNAVAILABLE'));
      return measured(x, startedMs, { response: deny('UNAVAILABLE', 'SIGNING_KEY_UNAVAILABLE').response, close: x.close });
    }
    return measured(x, startedMs, { response: stepNow('sign', () => signed(x, response, key)), close: x.close });
  };

  return request => {
    const fields = fieldLinesOf(request.req);
    // Continues the AS's trace when it sent one well-formed traceparent.
    const traceparent = fields['traceparent'];
    const parent = contextFromTraceparent(traceparent?.length === 1 ? traceparent[0] : '');
    return inSpan(
      `T8 ${request.req.method ?? ''}`,
      async span => {
        const answer = await handle(request, fields, span);
        if (answer && span.isRecording()) span.setAttribute('http.response.status_code', answer.response.status);
        return answer;
      },
      T8_SPAN,
      parent,
    );
  };
}
