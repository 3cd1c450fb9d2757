import type { T8ApiFile, T8Schemas } from '@aese/t8-openapi';
import type { Decide, Obligation, Operation } from '../domain/decision.js';
import type { DestinationPolicy } from '../domain/notification-destination.js';
import type { ResourceStore, StoredResource } from '../domain/resource-store.js';
import type { NetworkAdapter, NetworkEvent } from '../network/network-adapter.js';
import { matchRoute, splitT8Target } from '@aese/t8-catalog';

export const HTTP_METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'] as const;
/** Default of the per-AS bound on stored resources of one collection (MAX_RESOURCES_PER_AS). */
export const DEFAULT_MAX_RESOURCES_PER_AS = 1000;
export type HttpMethod = (typeof HTTP_METHODS)[number];

/** What every module is built with. */
export interface ModuleServices {
  readonly network: NetworkAdapter;
  readonly store: ResourceStore;
  readonly schemas: T8Schemas;
  readonly destinations: DestinationPolicy;
  readonly now: () => number;
  /** New resource ids: random UUIDs. */
  readonly newId: () => string;
  /** Publishes a test notification for a resource just written (TS 29.122 cl. 5.2.5.3). */
  readonly sendTestNotification: (record: StoredResource) => Promise<void>;
  readonly decide: Decide;
  /** Most resources one AS may hold in one collection (the toolkit refuses a create beyond it); default {@link DEFAULT_MAX_RESOURCES_PER_AS}. */
  readonly maxResourcesPerAs?: number;
  /** The service's settings as loaded at start-up, modules' own included; absent: every module setting at its default. */
  readonly settings?: Readonly<Record<string, unknown>>;
}

/** The data categories and authorization targets a request or resource touches. */
export interface Reach {
  readonly dataCategories: readonly string[];
  readonly targets: readonly string[];
}

/** A request after routing, scope, identity, media type, JSON and schema checks. */
export interface RouteRequest {
  readonly scsAsId: string;
  readonly params: Readonly<Record<string, string>>;
  readonly query: URLSearchParams;
  readonly body: unknown;
  /**
   * The resource the request would write: the body itself, or for a patch the stored resource
   * with the patch applied (the route's `document`). Undefined when there is no body.
   */
  readonly document: unknown;
  /** Item routes: the stored resource named by the path (it belongs to scsAsId). */
  readonly existing: StoredResource | undefined;
  /** List routes: the caller's resources that authorization let it read. */
  readonly visible: readonly StoredResource[];
  /** Absolute URI of a resource of this API for this AS (Location and `self`). */
  resourceUri(id: string): string;
  /** Absolute URI of this API for this AS: `<apiRoot>/<name>/<version>/<scsAsId>`. */
  readonly apiBase: string;
  readonly obligations: readonly Obligation[];
}

export interface RouteResult {
  readonly status: number;
  readonly body?: unknown;
  readonly location?: string;
  /** Data categories the response body carries. */
  readonly dataCategories: readonly string[];
  /** Runs after the response is built (a test notification, say); failures are logged only. */
  readonly after?: () => Promise<void>;
}

/** One route of a module: method, path template below the base path, and how to serve it. */
export interface ModuleRoute {
  readonly method: HttpMethod;
  /** e.g. "/{scsAsId}/subscriptions/{subscriptionId}". */
  readonly path: string;
  readonly operation: Operation;
  /** 'collection' routes act on the AS's collection; 'item' routes on one stored resource. */
  readonly target: 'collection' | 'item';
  /** Request body: required media type and schema (a component name or pointer in the API file). */
  readonly request?: { readonly contentType: string; readonly schema: string };
  /** Response schema per status (undefined: no body). */
  readonly responses: Readonly<Record<number, string | undefined>>;
  /**
   * The resource a request writes when its body is not one (a patch): the stored resource with
   * the body applied, checked against the resource schema. Pure: it runs before authorization.
   */
  readonly document?: (req: RouteRequest) => unknown;
  readonly handler: (req: RouteRequest) => Promise<RouteResult>;
  /**
   * Where the route's resources are stored (ResourceStore `api` key): the module's name unless
   * the route serves a sub-resource (a NIDD configuration's downlink data deliveries, say).
   */
  readonly store?: string;
  /**
   * The route's own {@link ApiModule.reach}, {@link ApiModule.validate} and {@link ApiModule.check},
   * when its resource is not the module's main one. Its reach sees the request, so a sub-resource
   * is decided on its parent's targets too.
   */
  readonly reach?: (body: unknown, req: RouteRequest) => Promise<Reach>;
  readonly validate?: ApiModule['validate'];
  readonly check?: ApiModule['check'];
  /**
   * Routes whose path has no `{scsAsId}` (ECRControl's `/query`) name the caller in the body: the
   * member that, when present, must be the authenticated SCS/AS.
   */
  readonly callerMember?: string;
}

/** See {@link storedRecordRead}. */
const STORED_RECORD_READS = new WeakSet<ModuleRoute['handler']>();

/**
 * Marks an item-read handler whose answer is the stored record as it stands (the toolkit's): the
 * same record, policy and caller always get the same answer, so the edge may give it again until
 * one of them changes (InvokeResponse.reusable). Never for an answer that reads the network or
 * the clock, or has side effects. A module that wraps such a handler makes a new one, unmarked.
 */
export function storedRecordRead(handler: ModuleRoute['handler']): ModuleRoute['handler'] {
  STORED_RECORD_READS.add(handler);
  return handler;
}

/** Whether the route's handler is one {@link storedRecordRead} marked. */
export function readsStoredRecordOnly(route: ModuleRoute): boolean {
  return STORED_RECORD_READS.has(route.handler);
}

/** A notification a module wants sent for a network event. */
export interface PendingNotification {
  readonly record: StoredResource;
  readonly body: unknown;
  readonly dataCategories: readonly string[];
  /** Its schema when not the module's {@link ApiModule.notificationSchema}. */
  readonly schema?: string;
  /** Where it goes when not the resource's `notificationDestination`. */
  readonly destination?: string;
}

/**
 * A T8 API module. It declares everything the edge and authorization need to know (base path,
 * routes, scope, data categories, schema names in the official OpenAPI file) and serves its
 * routes; the generic Invoke pipeline does the rest, so adding an API is adding a module.
 */
export interface ApiModule {
  /** Base path segment and OAuth scope, e.g. "3gpp-monitoring-event". */
  readonly name: string;
  readonly version: string;
  readonly scope: string;
  readonly dataCategories: readonly string[];
  /** The OpenAPI file the schemas come from. */
  readonly schemaFile: T8ApiFile;
  /** Names of the schemas the module uses, as in that file (components/schemas). */
  readonly schemas: readonly string[];
  readonly routes: readonly ModuleRoute[];
  /** Schema of the bodies it notifies; none for an API without notifications. */
  readonly notificationSchema?: string;
  /**
   * Data categories and targets of a resource body, for authorization (merged with the stored
   * resource's). It runs before the decision, so it reads the body only; the one exception is a
   * UE address, which names no target until looked up (see ue-targets.ts, addressTarget).
   */
  reach(body: unknown): Promise<Reach>;
  /**
   * Rules beyond the schema that need nothing but the request: identifier syntax (the rules of
   * authorization, so a malformed identifier is a 400, not a refused decision), members that
   * contradict the path or the stored resource. It runs before authorization, so it must have no
   * effect and tell nothing about the network. Throws T8Problems.
   */
  validate?(document: unknown, req: RouteRequest): void;
  /**
   * Checks that have an outside effect or read network state (resolving a notificationDestination,
   * QoS references of the network): they run only once the request is authorized, so an AS
   * learns nothing and makes the SCEF do nothing for what it was not granted. Throws T8Problems.
   */
  check?(document: unknown, req: RouteRequest): Promise<void>;
  /** Notifications a network event causes. */
  onNetworkEvent?(event: NetworkEvent): Promise<PendingNotification[]>;
  /**
   * The most reports a resource may send (its maximumNumberOfReports), undefined for no limit.
   * The notification engine counts a report once the edge delivered it and ends the resource
   * at the limit (domain/report-ledger.ts).
   */
  reportLimit?(record: StoredResource): number | undefined;
  /** Runs once at start-up, after storage is loaded (restore network state, say). */
  start?(): Promise<void>;
  /** Stops the module's own timers (a simulated capability's pending deliveries). */
  stop?(): Promise<void>;
}

/** Builds a module from the shared services; each module folder exports one. */
export interface ModuleDefinition {
  readonly name: string;
  /**
   * The ProblemDetails causes the module answers besides the shared ones (PROBLEM_CAUSES); they
   * live with the module, and the AS guide's cause table is checked against every module's.
   */
  readonly causes?: Readonly<Record<string, string>>;
  readonly create: (services: ModuleServices) => ApiModule;
}

/** A route matched against a request path. */
export interface RouteMatch {
  readonly module: ApiModule;
  readonly route: ModuleRoute;
  readonly params: Readonly<Record<string, string>>;
  readonly query: URLSearchParams;
}

export type MatchResult =
  { readonly kind: 'match'; readonly match: RouteMatch } | { readonly kind: 'no-route' } | { readonly kind: 'method-not-allowed'; readonly allowed: readonly HttpMethod[] };

/**
 * The registered modules. Routing is table-driven from what modules declare: the edge sends
 * every T8 request here unchanged and never needs code for a new API.
 */
export class ModuleRegistry {
  private readonly modules = new Map<string, ApiModule>();

  register(module: ApiModule): void {
    const key = `${module.name}/${module.version}`;
    if (this.modules.has(key)) throw new TypeError(`module ${key} is already registered`);
    for (const r of module.routes) {
      if (!r.path.startsWith('/')) throw new TypeError(`route ${r.method} ${r.path} of ${key} must start with /`);
      // Every route proves whose resources it acts on: the path's scsAsId, or a body member.
      if (!r.path.startsWith('/{scsAsId}') && r.callerMember === undefined) throw new TypeError(`route ${r.method} ${r.path} of ${key} names no caller`);
    }
    this.modules.set(key, module);
  }

  list(): readonly ApiModule[] {
    return [...this.modules.values()];
  }

  /**
   * Finds the route for a method and a full path ("/<name>/<version>/...?query"). Segments are
   * percent-decoded one by one (an encoded "/" never splits a segment); empty or oversized
   * segments match nothing.
   */
  match(method: string, fullPath: string): MatchResult {
    const target = splitT8Target(fullPath);
    if (!target) return { kind: 'no-route' };
    const module = this.modules.get(`${target.segments[0]}/${target.segments[1]}`);
    if (!module) return { kind: 'no-route' };
    const found = matchRoute(module.routes, method, target.segments.slice(2));
    if (found.kind !== 'match') return found.kind === 'no-route' ? found : { kind: 'method-not-allowed', allowed: found.allowed as HttpMethod[] };
    return { kind: 'match', match: { module, route: found.route, params: found.params, query: target.query } };
  }
}
