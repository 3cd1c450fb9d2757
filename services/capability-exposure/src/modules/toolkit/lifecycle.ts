import type { T8ApiFile } from '@aese/t8-openapi';
import { applyJsonPatch, applyMergePatch } from '../../domain/patch.js';
import type { PatchOperation } from '../../domain/patch.js';
import { invalidParam, notFound, PROBLEM_CAUSES, T8Problem } from '../../domain/problem.js';
import { newStoredResource } from '../../domain/resource-store.js';
import type { StoredResource } from '../../domain/resource-store.js';
import type { NetworkEvent } from '../../network/network-adapter.js';
import { DEFAULT_MAX_RESOURCES_PER_AS, storedRecordRead } from '../registry.js';
import type { ModuleRoute, ModuleServices, PendingNotification, Reach, RouteRequest, RouteResult } from '../registry.js';

/** A stored resource seen through its module's types: the T8 body and the module's state. */
export interface Held<R, S> {
  readonly record: StoredResource;
  readonly resource: R;
  readonly state: S;
}

/** What a create or an update did in the network. */
export interface Written<R, S> {
  /** Module-private state kept beside the resource (a network session id, say). */
  readonly state: S;
  /** Members only the SCEF writes, set into the resource (a delivery result, say). */
  readonly set?: Partial<R>;
  /** Undoes the network side when the resource cannot be stored: never one without the other. */
  readonly undo?: () => Promise<void>;
  /** Runs once the resource is stored and answered (a network event about it, say); failures are logged only. */
  readonly after?: () => Promise<void>;
}

/** The request a lifecycle hook serves, and the resource's id and self link. */
export interface LifecycleCall {
  readonly req: RouteRequest;
  readonly id: string;
  readonly self: string;
}

/** An answer given instead of storing a resource (MonitoringEvent's one-time report: 200). */
export interface ImmediateAnswer {
  readonly status: number;
  readonly body: unknown;
  readonly dataCategories: readonly string[];
}

/**
 * How an API patches: RFC 7396 merge patch, RFC 6902 JSON patch, or (a few APIs) a partial
 * resource sent as application/json, applied like a merge patch.
 */
export type PatchKind = 'merge-patch' | 'json-patch' | 'partial';
const PATCH_MEDIA: Readonly<Record<PatchKind, string>> = {
  'merge-patch': 'application/merge-patch+json',
  'json-patch': 'application/json-patch+json',
  partial: 'application/json',
};

/**
 * One resource collection of a T8 API (subscriptions, transactions, configurations, ...): what
 * is particular to it. {@link resourceLifecycle} makes the routes and does what every T8 API
 * shares.
 */
export interface LifecycleSpec<R extends object, S extends object> {
  readonly services: ModuleServices;
  /** The module's name (base path segment). */
  readonly api: string;
  readonly schemaFile: T8ApiFile;
  /** Collection path below the base path, e.g. "/{scsAsId}/subscriptions". */
  readonly collection: string;
  /** The item's id parameter, e.g. "subscriptionId". */
  readonly idParam: string;
  /** Storage key of the resources: the API's name unless this is a sub-resource. */
  readonly store?: string;
  /** Sub-resources: the parent's id parameter and storage key; the parent must be the caller's. */
  readonly parent?: { readonly idParam: string; readonly store: string };
  readonly schemas: {
    /** The resource (requests of create and replace, and answers). */
    readonly resource: string;
    /** Answer of the collection GET; no list route without it. */
    readonly list?: string;
    /** Answers of a create other than 201 with the resource (MonitoringEvent's 200 report). */
    readonly createAnswers?: Readonly<Record<number, string | undefined>>;
  };
  /** Which item operations exist besides GET; all of them unless told. */
  readonly replace?: boolean;
  readonly remove?: boolean;
  readonly patch?: { readonly kind: PatchKind; readonly schema: string; readonly answer: 200 | 204 };
  /** Name of the self-link member ("self" in every T8 API but a few). */
  readonly selfMember?: string;
  /** Members only the SCEF writes: an AS that sends them is refused. */
  readonly scefMembers?: readonly string[];
  /** Members that cannot change once the resource exists (the UE of a session, say). */
  readonly immutable?: readonly string[];
  /** Cause of a change to an immutable member. */
  readonly immutableCause?: string;
  /** Data categories and authorization targets of a body (merged with the stored resource's). */
  readonly reach: (body: R) => Promise<Reach> | Reach;
  /** Rules beyond the schema that need nothing but the request (see ApiModule.validate). */
  readonly validate?: (body: R, req: RouteRequest) => void;
  /** Checks with an outside effect, run once authorized (see ApiModule.check). */
  readonly check?: (body: R, req: RouteRequest) => Promise<void>;
  /** An answer instead of a stored resource, or undefined to create one. */
  readonly immediate?: (body: R, call: LifecycleCall) => Promise<ImmediateAnswer | undefined>;
  /** What the API does in the network when its resources are written. */
  readonly network: NetworkSide<R, S>;
}

/**
 * What an API does in the network (a module's network.ts): the network side of each write, and
 * the notifications network events cause. The rest of the lifecycle is the toolkit's.
 */
export interface NetworkSide<R, S> {
  /** The network side of a create. */
  readonly create: (body: R, call: LifecycleCall) => Promise<Written<R, S>>;
  /** The network side of a replace or patch; the state is kept as it is when absent. */
  readonly update?: (next: R, held: Held<R, S>, call: LifecycleCall) => Promise<Written<R, S>>;
  /** The network side of a delete. */
  readonly delete?: (held: Held<R, S>) => Promise<void>;
  /** Notifications a network event causes, for the stored resources. */
  readonly onNetworkEvent?: (event: NetworkEvent, resources: Lifecycle<R, S>) => Promise<PendingNotification[]>;
  /** Stops its timers. */
  readonly stop?: () => Promise<void>;
}

/** What {@link resourceLifecycle} gives a module. */
export interface Lifecycle<R, S> {
  readonly routes: readonly ModuleRoute[];
  /** Every stored resource of the collection, typed (notification matching). */
  all(): Held<R, S>[];
  /** A stored record, typed. */
  held(record: StoredResource): Held<R, S>;
  /** Stores a new state (and SCEF-written members) of a resource, as one step with other writers. */
  save(held: Held<R, S>, change: { readonly state?: Partial<S>; readonly set?: Partial<R> }): Promise<void>;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function without(resource: Record<string, unknown>, member: string): Record<string, unknown> {
  const { [member]: _dropped, ...rest } = resource;
  return rest;
}

/** Whether a body (a resource, a merge patch or a JSON patch) sets a top-level member. */
function sends(body: unknown, member: string): boolean {
  if (Array.isArray(body)) {
    const touches = (p: unknown) => typeof p === 'string' && (p === `/${member}` || p.startsWith(`/${member}/`));
    return body.some(op => isObject(op) && touches(op['path']));
  }
  return isObject(body) && member in body;
}

function paramsOf(path: string): string[] {
  return [...path.matchAll(/\{([^}]+)\}/g)].map(m => m[1]);
}

/**
 * The routes of one T8 resource collection and the lifecycle every T8 API shares: create with a
 * random id, `self` link and Location (or an immediate answer); read; replace; patch (merge or
 * JSON patch, the result checked against the resource schema); delete; list. It refuses members
 * only the SCEF writes, a `self` that names another resource, and changes to immutable members;
 * keeps the stored reach (targets and data categories) current; undoes the network side of a
 * create that could not be stored; and sends the test notification an AS asks for. The module
 * writes only what its API does in the network.
 */
export function resourceLifecycle<R extends object, S extends object>(spec: LifecycleSpec<R, S>): Lifecycle<R, S> {
  const s = spec.services;
  const store = spec.store ?? spec.api;
  const selfMember = spec.selfMember ?? 'self';
  const itemPath = `${spec.collection}/{${spec.idParam}}`;
  const params = paramsOf(itemPath);
  if (params[0] !== 'scsAsId' || (spec.parent && !params.includes(spec.parent.idParam))) throw new TypeError(`${spec.api} ${itemPath}: unexpected path parameters`);

  const held = (record: StoredResource): Held<R, S> => ({ record, resource: record.resource as R, state: record.state as S });

  /** The resource URI: `<apiBase>/<collection below scsAsId, with its parameters>/<id>`. */
  const selfOf = (req: RouteRequest, id: string): string => {
    const below = spec.collection
      .split('/')
      .filter(Boolean)
      .slice(1)
      .map(seg => (seg.startsWith('{') ? encodeURIComponent(req.params[seg.slice(1, -1)]) : seg));
    return `${req.apiBase}/${[...below, id].join('/')}`;
  };

  /** Sub-resources: the parent is the caller's and exists; the item belongs to it. */
  const parentOf = async (req: RouteRequest): Promise<StoredResource | undefined> => {
    if (!spec.parent) return undefined;
    const parent = await s.store.get(spec.parent.store, req.scsAsId, req.params[spec.parent.idParam]);
    if (!parent || parent.scsAsId !== req.scsAsId) throw notFound();
    return parent;
  };
  const assertChildOf = (req: RouteRequest): void => {
    if (spec.parent && req.existing && req.existing.state['parentId'] !== req.params[spec.parent.idParam]) throw notFound();
  };

  /** A body's reach; a sub-resource also reaches what its parent does, so both are decided. */
  const reach = async (body: unknown, req: RouteRequest): Promise<Reach> => {
    const own = await spec.reach(body as R);
    const parent = req.existing ? undefined : await parentOf(req);
    if (!parent) return own;
    return { dataCategories: [...new Set([...own.dataCategories, ...parent.dataCategories])].sort(), targets: [...new Set([...own.targets, ...parent.targets])].sort() };
  };

  const validate = (body: unknown, req: RouteRequest): void => {
    if (!isObject(body)) return;
    assertChildOf(req);
    // What the AS sent: a patch's document holds the SCEF's members the stored resource has.
    for (const m of spec.scefMembers ?? []) if (sends(req.body, m)) throw invalidParam(`/${m}`, 'is written by the SCEF only', PROBLEM_CAUSES.invalidParameter);
    // A self link that names another resource (or another AS's) is smuggling, not a no-op.
    if (selfMember in body && (!req.existing || body[selfMember] !== req.existing.resource[selfMember])) {
      throw invalidParam(`/${selfMember}`, 'does not match the resource', PROBLEM_CAUSES.idMismatch);
    }
    if (req.existing) {
      for (const m of spec.immutable ?? []) {
        if (JSON.stringify(body[m]) !== JSON.stringify(req.existing.resource[m])) {
          throw invalidParam(`/${m}`, 'cannot change once the resource exists', spec.immutableCause ?? PROBLEM_CAUSES.invalidParameter);
        }
      }
    }
    spec.validate?.(body as R, req);
  };

  const check = spec.check ? async (body: unknown, req: RouteRequest) => spec.check!(body as R, req) : undefined;

  async function create(req: RouteRequest): Promise<RouteResult> {
    const body = req.body as R;
    const parent = await parentOf(req);
    // Bounded per AS: stored state (and what network events scan) does not grow at an AS's will.
    const limit = s.maxResourcesPerAs ?? DEFAULT_MAX_RESOURCES_PER_AS;
    if ((await s.store.list(store, req.scsAsId)).length >= limit) {
      throw new T8Problem(403, PROBLEM_CAUSES.resourceQuotaExceeded, `at most ${limit} resources of this kind per SCS/AS`);
    }
    const id = s.newId();
    const self = selfOf(req, id);
    const call: LifecycleCall = { req, id, self };
    const answer = await spec.immediate?.(body, call);
    if (answer) return answer;
    const r = await spec.reach(body);
    const written = await spec.network.create(body, call);
    const resource = { ...(body as Record<string, unknown>), ...(written.set ?? {}), [selfMember]: self };
    const targets = [...new Set([...r.targets, ...(parent?.targets ?? [])])].sort();
    const state = { ...written.state, ...(parent ? { parentId: parent.id } : {}) };
    const record = newStoredResource(store, req.scsAsId, id, resource, { targets, dataCategories: r.dataCategories }, state, s.now());
    try {
      await s.store.put(record);
    } catch (err) {
      await written.undo?.();
      throw err;
    }
    const test = (body as Record<string, unknown>)['requestTestNotification'] === true;
    const after = async (): Promise<void> => {
      if (test) await s.sendTestNotification(record);
      await written.after?.();
    };
    return { status: 201, body: resource, location: self, dataCategories: r.dataCategories, ...(test || written.after ? { after } : {}) };
  }

  async function write(req: RouteRequest, next: R): Promise<StoredResource> {
    const existing = req.existing!;
    const before = held(existing);
    const self = existing.resource[selfMember] as string;
    const written = spec.network.update ? await spec.network.update(next, before, { req, id: existing.id, self }) : undefined;
    const r = await spec.reach(next);
    const record: StoredResource = {
      ...existing,
      resource: { ...without(next as Record<string, unknown>, selfMember), ...(written?.set ?? {}), [selfMember]: self },
      targets: spec.parent ? [...new Set([...r.targets, ...existing.targets])].sort() : r.targets,
      dataCategories: r.dataCategories,
      updatedAtMs: s.now(),
      // The module's counters (reports sent, say) carry over.
      state: { ...existing.state, ...(written?.state ?? {}) },
    };
    await s.store.put(record);
    await written?.after?.();
    return record;
  }

  function patched(req: RouteRequest): unknown {
    const current = without(req.existing!.resource, selfMember);
    let next: unknown;
    if (spec.patch!.kind !== 'json-patch') next = applyMergePatch(current, req.body);
    else {
      const ops = req.body as PatchOperation[];
      ops.forEach((o, i) => {
        const touches = (p: string | undefined) => p !== undefined && (p === `/${selfMember}` || p.startsWith(`/${selfMember}/`));
        if (touches(o.path) || touches(o.from)) throw invalidParam(`/${i}/path`, 'the self link cannot be changed', PROBLEM_CAUSES.idMismatch);
      });
      next = applyJsonPatch(current, ops);
    }
    const valid = s.schemas.validator(spec.schemaFile, spec.schemas.resource, 'request');
    if (!valid(next)) throw new T8Problem(400, PROBLEM_CAUSES.invalidParameter, 'the patched resource does not match the schema', valid.violations());
    return next;
  }

  const common = { store, reach, validate, ...(check ? { check } : {}) };
  const routes: ModuleRoute[] = [];
  if (spec.schemas.list) {
    routes.push({
      ...common,
      method: 'GET',
      path: spec.collection,
      operation: 'read',
      target: 'collection',
      responses: { 200: spec.schemas.list },
      handler: async req => {
        await parentOf(req);
        const mine = spec.parent ? req.visible.filter(r => r.state['parentId'] === req.params[spec.parent!.idParam]) : req.visible;
        return { status: 200, body: mine.map(r => r.resource), dataCategories: [...new Set(mine.flatMap(r => r.dataCategories))].sort() };
      },
    });
  }
  routes.push({
    ...common,
    method: 'POST',
    path: spec.collection,
    operation: 'create',
    target: 'collection',
    request: { contentType: 'application/json', schema: spec.schemas.resource },
    responses: { 201: spec.schemas.resource, ...(spec.schemas.createAnswers ?? {}) },
    handler: create,
  });
  routes.push({
    ...common,
    method: 'GET',
    path: itemPath,
    operation: 'read',
    target: 'item',
    responses: { 200: spec.schemas.resource },
    handler: storedRecordRead(async req => {
      assertChildOf(req);
      return { status: 200, body: req.existing!.resource, dataCategories: req.existing!.dataCategories };
    }),
  });
  if (spec.replace !== false) {
    routes.push({
      ...common,
      method: 'PUT',
      path: itemPath,
      operation: 'update',
      target: 'item',
      request: { contentType: 'application/json', schema: spec.schemas.resource },
      responses: { 200: spec.schemas.resource },
      handler: async req => {
        const record = await write(req, req.body as R);
        return { status: 200, body: record.resource, dataCategories: record.dataCategories };
      },
    });
  }
  if (spec.patch) {
    const answer = spec.patch.answer;
    routes.push({
      ...common,
      method: 'PATCH',
      path: itemPath,
      operation: 'update',
      target: 'item',
      request: { contentType: PATCH_MEDIA[spec.patch.kind], schema: spec.patch.schema },
      responses: { [answer]: answer === 200 ? spec.schemas.resource : undefined },
      document: patched,
      handler: async req => {
        const record = await write(req, req.document as R);
        return answer === 200 ? { status: 200, body: record.resource, dataCategories: record.dataCategories } : { status: 204, dataCategories: record.dataCategories };
      },
    });
  }
  if (spec.remove !== false) {
    routes.push({
      ...common,
      method: 'DELETE',
      path: itemPath,
      operation: 'delete',
      target: 'item',
      responses: { 204: undefined },
      handler: async req => {
        assertChildOf(req);
        await spec.network.delete?.(held(req.existing!));
        await s.store.delete(store, req.scsAsId, req.existing!.id);
        return { status: 204, dataCategories: [] };
      },
    });
  }

  return {
    routes,
    all: () => s.store.all(store).map(held),
    held,
    save: (h, change) =>
      s.store.update(store, h.record.scsAsId, h.record.id, current =>
        current ? { ...current, resource: { ...current.resource, ...(change.set ?? {}) }, state: { ...current.state, ...(change.state ?? {}) }, updatedAtMs: s.now() } : undefined,
      ),
  };
}
