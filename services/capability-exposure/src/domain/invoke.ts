import { AeseError } from '@aese/errors';
import { MAX_TARGETS_PER_DECISION } from '@aese/t8-catalog';
import type { T8Schemas } from '@aese/t8-openapi';
import { readsStoredRecordOnly } from '../modules/registry.js';
import type { ApiModule, ModuleRegistry, ModuleRoute, Reach, RouteRequest, RouteResult } from '../modules/registry.js';
import type { Decide, Decision, Obligation, Operation } from './decision.js';
import { applyOwnObligations } from './obligations.js';
import { internalError, notFound, PROBLEM_CAUSES, resourcesUnavailable, T8Problem } from './problem.js';
import type { ProblemDetails } from './problem.js';
import { ResourcesUnavailable } from './resource-store.js';
import type { ResourceStore, StoredResource } from './resource-store.js';
import { parseStrictJson } from './strict-json.js';
import type { StrictJsonLimits } from './strict-json.js';

/** Largest request body accepted (bytes); the edge has its own, earlier limit. */
export const DEFAULT_MAX_BODY_BYTES = 64 * 1024;
/** scsAsId syntax (as the AS registry enforces it): it appears in keys, subjects and URIs. */
export const SCS_AS_ID_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;
const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const JSON_MEDIA = 'application/json';
const PROBLEM_MEDIA = 'application/problem+json';

/** One T8 call as the edge hands it over (InvokeRequest). */
export interface InvokeInput {
  readonly scsAsId: string;
  readonly method: string;
  readonly path: string;
  readonly contentType: string;
  readonly body: Uint8Array;
  readonly scopes: readonly string[];
  readonly apiRoot: string;
}

/** The T8 response (InvokeResponse). */
export interface InvokeOutput {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Uint8Array;
  /** Obligations left for the edge (encrypt-response, ...). */
  readonly obligations: readonly Obligation[];
  readonly dataCategories: readonly string[];
  /** For logs and metrics: which API and operation ran (empty when routing failed). */
  readonly api: string;
  readonly operation: string;
  /** The answer may be given again until a withdrawal (InvokeResponse.reusable). */
  readonly reusable: boolean;
}

/**
 * Whether an answer decided under a policy version may be marked reusable now: only while that
 * version is the one in force and the copies it was decided and read from are within the
 * staleness bound. Whoever says yes here must withdraw the answers when that stops being true.
 */
export interface ReuseGate {
  permits(policyVersion: number): boolean;
}

export interface InvokerDeps {
  readonly registry: ModuleRegistry;
  readonly schemas: T8Schemas;
  readonly store: ResourceStore;
  readonly decide: Decide;
  readonly maxBodyBytes?: number;
  readonly jsonLimits?: StrictJsonLimits;
  /** Reports unexpected failures (logged by the caller without request data). */
  readonly onError: (err: unknown, where: string) => void;
  /**
   * Told of every request this service refuses itself (4xx), to audit it. A refusal decided by
   * the authorization service is not reported here: that service audits its own denials.
   */
  readonly onRefused?: (refusal: { scsAsId: string; api: string; operation: string; status: number; cause: string }) => void;
  /** Without it no answer is reusable. */
  readonly reuse?: ReuseGate;
}

/** A 403 decided by the authorization service (which audits it). */
class AuthorizationDenied extends T8Problem {}

const encoder = new TextEncoder();

/** Media type of a Content-Type value, lower-cased, with a charset other than UTF-8 refused. */
function mediaTypeOf(contentType: string): string | undefined {
  const [type, ...params] = contentType.split(';').map(s => s.trim().toLowerCase());
  for (const p of params) {
    const [k, v] = p.split('=').map(s => s.trim().replace(/^"|"$/g, ''));
    if (k === 'charset' && v !== 'utf-8') return undefined;
  }
  return type;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function union(...lists: readonly (readonly string[])[]): string[] {
  return [...new Set(lists.flat())].sort();
}

/** Worked out once per route: it is needed on every call. */
const idParams = new WeakMap<ModuleRoute, string>();

/** The name of an item route's id parameter: its last path parameter. */
function idParam(route: ModuleRoute): string {
  let name = idParams.get(route);
  if (name === undefined) {
    const params = [...route.path.matchAll(/\{([^}]+)\}/g)].map(m => m[1]);
    name = params[params.length - 1];
    idParams.set(route, name);
  }
  return name;
}

/**
 * Runs T8 calls through one pipeline, the same for every module: route -> scope -> the path's
 * scsAsId is the caller -> media type -> size -> strict JSON -> schema -> the module's validate
 * (identifier syntax, no effect) -> data categories and targets -> authorization decision (fail
 * closed) -> the module's check (destination resolution, network state) -> the module's handler
 * -> obligations -> response schema. Nothing with an outside effect or that reveals the network
 * runs before the decision, so an unauthorized request gets its 403 whatever else is wrong with
 * it. Every failure is a ProblemDetails response; a store that cannot vouch for its resources
 * (older than the staleness bound) refuses to read or write them, answered with 503.
 */
export class Invoker {
  private readonly maxBodyBytes: number;

  constructor(private readonly deps: InvokerDeps) {
    this.maxBodyBytes = deps.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  }

  async invoke(input: InvokeInput): Promise<InvokeOutput> {
    let api = '';
    let operation = '';
    try {
      if (!SCS_AS_ID_PATTERN.test(input.scsAsId)) throw new T8Problem(403, PROBLEM_CAUSES.scsAsIdMismatch, 'the caller identity is not a valid scsAsId');
      const m = this.deps.registry.match(input.method.toUpperCase(), input.path);
      if (m.kind === 'no-route') throw notFound();
      if (m.kind === 'method-not-allowed') {
        this.deps.onRefused?.({ scsAsId: input.scsAsId, api, operation, status: 405, cause: PROBLEM_CAUSES.methodNotAllowed });
        return {
          ...this.problem(new T8Problem(405, PROBLEM_CAUSES.methodNotAllowed, 'the method is not allowed on this resource')),
          headers: { 'content-type': PROBLEM_MEDIA, allow: m.allowed.join(', ') },
        };
      }
      const { module, route, params, query } = m.match;
      api = module.name;
      operation = route.operation;
      if (!input.scopes.includes(module.scope)) {
        throw new T8Problem(403, PROBLEM_CAUSES.insufficientScope, `the access token does not grant the scope ${module.scope}`);
      }
      if (route.callerMember === undefined && params['scsAsId'] !== input.scsAsId) {
        throw new T8Problem(403, PROBLEM_CAUSES.scsAsIdMismatch, 'the scsAsId in the path is not the authenticated SCS/AS');
      }
      const body = this.readBody(module, route, input);
      if (route.callerMember !== undefined && isObject(body) && route.callerMember in body && body[route.callerMember] !== input.scsAsId) {
        throw new T8Problem(403, PROBLEM_CAUSES.scsAsIdMismatch, `the ${route.callerMember} in the body is not the authenticated SCS/AS`);
      }
      const existing = route.target === 'item' ? await this.load(route.store ?? module.name, input.scsAsId, params[idParam(route)]) : undefined;
      const apiBase = `${input.apiRoot.replace(/\/+$/, '')}/${module.name}/${module.version}/${encodeURIComponent(input.scsAsId)}`;
      const collection = route.path.split('/').filter(Boolean)[1] ?? '';
      const parsed: RouteRequest = {
        scsAsId: input.scsAsId,
        params,
        query,
        body,
        document: body,
        existing,
        visible: [],
        obligations: [],
        resourceUri: id => `${apiBase}/${collection}/${id}`,
        apiBase,
      };
      const request: RouteRequest = body !== undefined && route.document ? { ...parsed, document: route.document(parsed) } : parsed;
      const { document } = request;
      if (document !== undefined) {
        if (route.validate) route.validate(document, request);
        else module.validate?.(document, request);
      }

      let obligations: Obligation[];
      let visible: StoredResource[] = [];
      let decidedUnder: number | undefined;
      if (route.target === 'collection' && route.method === 'GET') {
        ({ visible, obligations } = await this.authorizeList(module, route, input.scsAsId));
      } else {
        const reach = await this.reachOf(d => (route.reach ? route.reach(d, request) : module.reach(d)), document, existing);
        const decision = await this.decide(module, route.operation, input.scsAsId, reach);
        if (!decision.allowed) throw new AuthorizationDenied(403, decision.denyCause || PROBLEM_CAUSES.requestNotAuthorized, 'the request is not authorized');
        obligations = [...decision.obligations];
        decidedUnder = decision.policyVersion;
      }
      if (document !== undefined) {
        if (route.check) await route.check(document, request);
        else await module.check?.(document, request);
      }
      const result = await route.handler({ ...request, visible, obligations });
      const reusable =
        readsStoredRecordOnly(route) &&
        route.target === 'item' &&
        route.method === 'GET' &&
        input.body.length === 0 &&
        result.status === 200 &&
        result.after === undefined &&
        decidedUnder !== undefined &&
        this.deps.reuse?.permits(decidedUnder) === true;
      return await this.respond(module, route, result, obligations, reusable);
    } catch (err) {
      if (err instanceof T8Problem) {
        if (err.status < 500 && !(err instanceof AuthorizationDenied)) {
          this.deps.onRefused?.({ scsAsId: input.scsAsId, api, operation, status: err.status, cause: err.causeCode });
        }
        return { ...this.problem(err), api, operation };
      }
      // Expected while NATS is unreachable (the store logs it once), so not reported as a fault.
      if (err instanceof ResourcesUnavailable) return { ...this.problem(resourcesUnavailable()), api, operation };
      this.deps.onError(err, 'invoke');
      return { ...this.problem(internalError()), api, operation };
    }
  }

  private readBody(module: ApiModule, route: ModuleRoute, input: InvokeInput): unknown {
    if (!route.request) {
      if (input.body.length > 0) throw new T8Problem(400, PROBLEM_CAUSES.bodyNotAllowed, 'this request takes no body');
      return undefined;
    }
    if (mediaTypeOf(input.contentType) !== route.request.contentType) {
      throw new T8Problem(415, PROBLEM_CAUSES.unsupportedMediaType, `the body must be ${route.request.contentType}`);
    }
    if (input.body.length > this.maxBodyBytes) throw new T8Problem(413, PROBLEM_CAUSES.payloadTooLarge, `the body exceeds ${this.maxBodyBytes} bytes`);
    const parsed = parseStrictJson(input.body, this.deps.jsonLimits);
    const validate = this.deps.schemas.validator(module.schemaFile, route.request.schema, 'request');
    if (!validate(parsed)) throw new T8Problem(400, PROBLEM_CAUSES.invalidParameter, 'the request body does not match the schema', validate.violations());
    return parsed;
  }

  private async load(store: string, scsAsId: string, id: string): Promise<StoredResource> {
    // Malformed ids get the very same 404 as unknown ones.
    if (!UUID_PATTERN.test(id)) throw notFound();
    const record = await this.deps.store.get(store, scsAsId, id);
    if (!record || record.scsAsId !== scsAsId) throw notFound();
    return record;
  }

  /** What the written resource and the stored one reach, together. */
  private async reachOf(reach: (body: unknown) => Promise<Reach>, document: unknown, existing: StoredResource | undefined): Promise<Reach> {
    const fromBody = document === undefined ? { dataCategories: [], targets: [] } : await reach(document);
    const targets = union(fromBody.targets, existing?.targets ?? []);
    // Authorization refuses longer lists as malformed; that is the AS's 400, not a fault here.
    if (targets.length > MAX_TARGETS_PER_DECISION) {
      throw new T8Problem(400, PROBLEM_CAUSES.invalidParameter, `the request names more than ${MAX_TARGETS_PER_DECISION} UEs and groups`);
    }
    return { dataCategories: union(fromBody.dataCategories, existing?.dataCategories ?? []), targets };
  }

  private async decide(module: ApiModule, operation: Operation, scsAsId: string, reach: Reach): Promise<Decision> {
    try {
      return await this.deps.decide({
        scsAsId,
        api: module.name,
        operation,
        dataCategories: reach.dataCategories,
        targets: reach.targets,
        pathScsAsId: scsAsId,
      });
    } catch (err) {
      this.deps.onError(err, 'decide');
      // A request authorization calls malformed is this service's fault (validate let it through), not an outage.
      if (err instanceof AeseError && err.code === 'INVALID_INPUT') throw internalError();
      throw new T8Problem(503, PROBLEM_CAUSES.authorizationUnavailable, 'authorization is unavailable; the request was not executed');
    }
  }

  /** A list shows only the resources the AS may read now; each is decided on its own. */
  private async authorizeList(module: ApiModule, route: ModuleRoute, scsAsId: string): Promise<{ visible: StoredResource[]; obligations: Obligation[] }> {
    const all = await this.deps.store.list(route.store ?? module.name, scsAsId);
    const decisions = await Promise.all(all.map(r => this.decide(module, 'read', scsAsId, r)));
    const visible = all.filter((_, i) => decisions[i].allowed);
    const obligations = decisions.filter(d => d.allowed).flatMap(d => d.obligations);
    return { visible, obligations };
  }

  private async respond(module: ApiModule, route: ModuleRoute, result: RouteResult, obligations: readonly Obligation[], reusable: boolean): Promise<InvokeOutput> {
    const headers: Record<string, string> = {};
    let bytes = new Uint8Array();
    const { body, remaining } = applyOwnObligations(result.body, obligations);
    if (!(result.status in route.responses)) throw new TypeError(`${module.name} ${route.method} ${route.path} answered an undeclared status ${result.status}`);
    const schema = route.responses[result.status];
    if (schema !== undefined) {
      const validate = this.deps.schemas.validator(module.schemaFile, schema, 'response');
      if (!validate(body)) throw new TypeError(`${module.name} ${route.method} ${route.path} built a body that breaks ${schema}: ${JSON.stringify(validate.violations())}`);
      headers['content-type'] = JSON_MEDIA;
      bytes = encoder.encode(JSON.stringify(body));
    }
    if (result.location) headers['location'] = result.location;
    if (result.after) {
      try {
        await result.after();
      } catch (err) {
        this.deps.onError(err, 'after-response');
      }
    }
    return {
      status: result.status,
      headers,
      body: bytes,
      obligations: remaining,
      dataCategories: [...result.dataCategories],
      api: module.name,
      operation: route.operation,
      reusable,
    };
  }

  private problem(p: T8Problem): Omit<InvokeOutput, 'api' | 'operation'> & { api: string; operation: string } {
    const body: ProblemDetails = p.toBody();
    return {
      status: p.status,
      headers: { 'content-type': PROBLEM_MEDIA },
      body: encoder.encode(JSON.stringify(body)),
      obligations: [],
      dataCategories: [],
      api: '',
      operation: '',
      reusable: false,
    };
  }
}
