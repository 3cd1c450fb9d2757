import type { components } from '@aese/t8-openapi/cp-provisioning';
import { invalidParam, notFound, PROBLEM_CAUSES, T8Problem } from '../../domain/problem.js';
import type { StoredResource } from '../../domain/resource-store.js';
import type { ModuleRoute, ModuleServices, Reach, RouteRequest } from '../registry.js';
import { authorizeStored } from '../toolkit/authorize.js';
import type { SimulatedCpHss } from './hss.js';
import { assertCpSet } from './set-rules.js';

type CpInfo = components['schemas']['CpInfo'];
type CpParameterSet = components['schemas']['CpParameterSet'];
type CpReport = components['schemas']['CpReport'];

const PATH = '/{scsAsId}/subscriptions/{subscriptionId}/cpSets/{setId}';
const SUBSCRIPTION_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export interface CpSetRoutesDeps {
  readonly services: ModuleServices;
  readonly api: string;
  readonly hss: SimulatedCpHss;
  /** What a set body reaches by itself: the category (the UE is the subscription's). */
  readonly reach: Reach;
  /** The set ids the subscription's UE(s) have in the AS's other subscriptions. */
  readonly takenElsewhere: (record: StoredResource) => ReadonlySet<string>;
  readonly setSelf: (subscriptionSelf: string, setId: string) => string;
}

/** The map key of the set with this id, if the subscription has it (keys are the AS's choice, ids name the resource). */
const keyOf = (info: CpInfo, setId: string): string | undefined => Object.keys(info.cpParameterSets).find(k => info.cpParameterSets[k].setId === setId);

/** The subscription without one set, and its reports without that set. */
function withoutSet(info: CpInfo, setId: string): CpInfo {
  const sets = Object.fromEntries(Object.entries(info.cpParameterSets).filter(([, v]) => v.setId !== setId));
  const reports = Object.entries(info.cpReports ?? {})
    .map(([k, r]) => [k, { ...r, ...(r.setIds ? { setIds: r.setIds.filter(id => id !== setId) } : {}) }] as const)
    .filter(([, r]) => r.setIds === undefined || r.setIds.length > 0);
  const { cpReports: _old, ...rest } = info;
  return { ...rest, cpParameterSets: sets, ...(reports.length > 0 ? { cpReports: Object.fromEntries(reports) } : {}) };
}

/**
 * The Individual CP Set Provisioning resource: one set of a subscription, read, replaced or removed
 * on its own. The set is a member of the stored subscription, so these routes load it and decide
 * on its stored reach (the UE or group it is for) themselves: the pipeline sees a route on the
 * collection, whose body names no UE.
 */
export function cpSetRoutes(deps: CpSetRoutesDeps): ModuleRoute[] {
  const s = deps.services;

  async function subscriptionOf(req: RouteRequest): Promise<StoredResource> {
    const id = req.params['subscriptionId'];
    if (!SUBSCRIPTION_ID.test(id)) throw notFound();
    const record = await s.store.get(deps.api, req.scsAsId, id);
    if (!record || record.scsAsId !== req.scsAsId) throw notFound();
    return record;
  }

  function setOf(record: StoredResource, setId: string): CpParameterSet {
    const info = record.resource as CpInfo;
    const key = keyOf(info, setId);
    if (key === undefined) throw notFound();
    return info.cpParameterSets[key];
  }
  const selfOf = (req: RouteRequest): string => deps.setSelf(`${req.apiBase}/subscriptions/${req.params['subscriptionId']}`, req.params['setId']);

  function validate(body: unknown, req: RouteRequest): void {
    const set = body as CpParameterSet;
    if (set.setId !== req.params['setId']) throw invalidParam('/setId', 'must be the set of the path', PROBLEM_CAUSES.idMismatch);
    assertCpSet(set, '', selfOf(req));
  }

  const common = { path: PATH, target: 'collection' as const, reach: async () => deps.reach, validate, check: async () => undefined };
  return [
    {
      ...common,
      method: 'GET',
      operation: 'read',
      responses: { 200: 'CpParameterSet' },
      handler: async req => {
        const record = await subscriptionOf(req);
        // Readable is what the list decision let through: its obligations are this answer's.
        if (!req.visible.some(r => r.id === record.id)) {
          await authorizeStored(s, deps.api, 'read', record);
          throw new T8Problem(403, PROBLEM_CAUSES.requestNotAuthorized, 'the request is not authorized');
        }
        return { status: 200, body: setOf(record, req.params['setId']), dataCategories: record.dataCategories };
      },
    },
    {
      ...common,
      method: 'PUT',
      operation: 'update',
      request: { contentType: 'application/json', schema: 'CpParameterSet' },
      responses: { 200: 'CpParameterSet', 409: 'CpReport', 500: 'CpReport' },
      handler: async req => {
        const setId = req.params['setId'];
        const record = await subscriptionOf(req);
        await authorizeStored(s, deps.api, 'update', record);
        setOf(record, setId);
        const next: CpParameterSet = { ...(req.body as CpParameterSet), self: selfOf(req) };
        const failure = deps.hss.refusal(next, deps.takenElsewhere(record));
        if (failure) {
          const report: CpReport = { setIds: [setId], failureCode: failure };
          return { status: failure === 'SET_ID_DUPLICATED' ? 409 : 500, body: report, dataCategories: deps.reach.dataCategories };
        }
        let missing = false;
        await s.store.update(deps.api, req.scsAsId, record.id, current => {
          const key = current ? keyOf(current.resource as CpInfo, setId) : undefined;
          missing = key === undefined;
          if (missing) return undefined;
          const rest = withoutSet(current!.resource as CpInfo, setId);
          return { ...current!, resource: { ...rest, cpParameterSets: { ...(current!.resource as CpInfo).cpParameterSets, [key!]: next } }, updatedAtMs: s.now() };
        });
        if (missing) throw notFound();
        return { status: 200, body: next, dataCategories: record.dataCategories };
      },
    },
    {
      ...common,
      method: 'DELETE',
      operation: 'delete',
      responses: { 204: undefined },
      handler: async req => {
        const setId = req.params['setId'];
        const record = await subscriptionOf(req);
        await authorizeStored(s, deps.api, 'delete', record);
        setOf(record, setId);
        let missing = false;
        await s.store.update(deps.api, req.scsAsId, record.id, current => {
          missing = !current || keyOf(current.resource as CpInfo, setId) === undefined;
          if (missing) return undefined;
          const rest = withoutSet(current!.resource as CpInfo, setId);
          // A subscription holds at least one set: removing the last one ends it.
          return Object.keys(rest.cpParameterSets).length === 0 ? null : { ...current!, resource: rest, updatedAtMs: s.now() };
        });
        if (missing) throw notFound();
        return { status: 204, dataCategories: [] };
      },
    },
  ];
}
