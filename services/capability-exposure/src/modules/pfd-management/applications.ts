import type { components } from '@aese/t8-openapi/pfd-management';
import { applyMergePatch } from '../../domain/patch.js';
import { invalidParam, notFound, PROBLEM_CAUSES, T8Problem } from '../../domain/problem.js';
import type { StoredResource } from '../../domain/resource-store.js';
import type { ModuleRoute, ModuleServices, Reach, RouteRequest, RouteResult } from '../registry.js';
import { authorizeStored } from '../toolkit/authorize.js';
import { applicationSelf, assertPfdData } from './pfd-rules.js';
import type { SimulatedPfdf } from './pfdf.js';

type Transaction = components['schemas']['PfdManagement'];
type PfdData = components['schemas']['PfdData'];
type PfdReport = components['schemas']['PfdReport'];

const PATH = '/{scsAsId}/transactions/{transactionId}/applications/{appId}';
const TRANSACTION_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/** The answer status of an application the PFDF refused (the PUT and PATCH answers of TS29122_PfdManagement.yaml). */
const REFUSAL_STATUS: Readonly<Record<string, number>> = { APP_ID_DUPLICATED: 409, SHORT_DELAY: 403, RESOURCE_LIMITATION: 500 };

export interface ApplicationRoutesDeps {
  readonly services: ModuleServices;
  readonly api: string;
  readonly pfdf: SimulatedPfdf;
  readonly reach: Reach;
  /** External application ids provisioned by every other transaction (any AS's). */
  readonly provisionedElsewhere: (scsAsId: string, transactionId: string) => ReadonlySet<string>;
}

/** The transaction's applications without one, and its reports without that application. */
function withoutApplication(t: Transaction, appId: string): Transaction {
  const { [appId]: _gone, ...pfdDatas } = t.pfdDatas;
  const reports = Object.entries(t.pfdReports ?? {})
    .map(([k, r]) => [k, { ...r, externalAppIds: r.externalAppIds.filter(a => a !== appId) }] as const)
    .filter(([, r]) => r.externalAppIds.length > 0);
  const { pfdReports: _old, ...rest } = t;
  return { ...rest, pfdDatas, ...(reports.length > 0 ? { pfdReports: Object.fromEntries(reports) } : {}) };
}

/**
 * The Individual Application PFD Management resource: one application of a transaction, read,
 * replaced, merge-patched or removed on its own. The application is a member of the stored
 * transaction (no resource of its own), so these routes load and authorize the transaction
 * themselves: a route on the collection, as the pipeline sees it, and a decision on the
 * transaction's stored reach here, before anything is read or written.
 */
export function applicationRoutes(deps: ApplicationRoutesDeps): ModuleRoute[] {
  const s = deps.services;

  async function transactionOf(req: RouteRequest): Promise<StoredResource> {
    const id = req.params['transactionId'];
    if (!TRANSACTION_ID.test(id)) throw notFound();
    const record = await s.store.get(deps.api, req.scsAsId, id);
    if (!record || record.scsAsId !== req.scsAsId) throw notFound();
    return record;
  }

  const applicationOf = (record: StoredResource, appId: string): PfdData => {
    const t = record.resource as Transaction;
    if (!Object.hasOwn(t.pfdDatas, appId)) throw notFound();
    return t.pfdDatas[appId];
  };
  const selfOf = (req: RouteRequest): string => applicationSelf(`${req.apiBase}/transactions/${req.params['transactionId']}`, req.params['appId']);

  function validate(body: unknown, req: RouteRequest): void {
    const data = body as PfdData;
    if (data.externalAppId !== req.params['appId']) throw invalidParam('/externalAppId', 'must be the application of the path', PROBLEM_CAUSES.idMismatch);
    assertPfdData(data, '', selfOf(req));
  }

  /** Stores `next` as the application when the PFDF accepts it; a refusal answers its PfdReport and changes nothing. */
  async function write(req: RouteRequest, record: StoredResource, data: PfdData): Promise<RouteResult> {
    const appId = req.params['appId'];
    const next: PfdData = { ...data, self: selfOf(req) };
    const failure = deps.pfdf.refusal(next, deps.provisionedElsewhere(req.scsAsId, record.id));
    if (failure) {
      const report: PfdReport = { externalAppIds: [appId], failureCode: failure };
      return { status: REFUSAL_STATUS[failure], body: report, dataCategories: deps.reach.dataCategories };
    }
    let missing = false;
    await s.store.update(deps.api, req.scsAsId, record.id, current => {
      missing = !current || !Object.hasOwn((current.resource as Transaction).pfdDatas, appId);
      if (missing) return undefined;
      const rest = withoutApplication(current!.resource as Transaction, appId);
      return { ...current!, resource: { ...rest, pfdDatas: { ...(current!.resource as Transaction).pfdDatas, [appId]: next } }, updatedAtMs: s.now() };
    });
    if (missing) throw notFound();
    deps.pfdf.distribute(req.scsAsId, record.id, [appId]);
    return { status: 200, body: next, dataCategories: record.dataCategories };
  }

  /** A merge patch applied to the stored application, checked again as a whole. */
  function patched(current: PfdData, patch: unknown, req: RouteRequest): PfdData {
    const next = applyMergePatch(current, patch);
    const valid = s.schemas.validator('pfd-management', 'PfdData', 'request');
    if (!valid(next)) throw new T8Problem(400, PROBLEM_CAUSES.invalidParameter, 'the patched resource does not match the schema', valid.violations());
    validate(next, req);
    return next as PfdData;
  }

  const common = { path: PATH, target: 'collection' as const, reach: async () => deps.reach, validate, check: async () => undefined };
  const refusals = { 403: 'PfdReport', 409: 'PfdReport', 500: 'PfdReport' };
  return [
    {
      ...common,
      method: 'GET',
      operation: 'read',
      responses: { 200: 'PfdData' },
      handler: async req => {
        const record = await transactionOf(req);
        // Readable is what the list decision let through: its obligations are this answer's.
        if (!req.visible.some(r => r.id === record.id)) {
          await authorizeStored(s, deps.api, 'read', record);
          throw new T8Problem(403, PROBLEM_CAUSES.requestNotAuthorized, 'the request is not authorized');
        }
        return { status: 200, body: applicationOf(record, req.params['appId']), dataCategories: record.dataCategories };
      },
    },
    {
      ...common,
      method: 'PUT',
      operation: 'update',
      request: { contentType: 'application/json', schema: 'PfdData' },
      responses: { 200: 'PfdData', ...refusals },
      handler: async req => {
        const record = await transactionOf(req);
        await authorizeStored(s, deps.api, 'update', record);
        applicationOf(record, req.params['appId']);
        return write(req, record, req.body as PfdData);
      },
    },
    {
      ...common,
      method: 'PATCH',
      operation: 'update',
      request: { contentType: 'application/merge-patch+json', schema: 'PfdData' },
      responses: { 200: 'PfdData', ...refusals },
      handler: async req => {
        const record = await transactionOf(req);
        await authorizeStored(s, deps.api, 'update', record);
        return write(req, record, patched(applicationOf(record, req.params['appId']), req.body, req));
      },
    },
    {
      ...common,
      method: 'DELETE',
      operation: 'delete',
      responses: { 204: undefined },
      handler: async req => {
        const appId = req.params['appId'];
        const record = await transactionOf(req);
        await authorizeStored(s, deps.api, 'delete', record);
        applicationOf(record, appId);
        let missing = false;
        await s.store.update(deps.api, req.scsAsId, record.id, current => {
          missing = !current || !Object.hasOwn((current.resource as Transaction).pfdDatas, appId);
          if (missing) return undefined;
          const rest = withoutApplication(current!.resource as Transaction, appId);
          // A transaction holds at least one application: removing the last one ends it.
          return Object.keys(rest.pfdDatas).length === 0 ? null : { ...current!, resource: rest, updatedAtMs: s.now() };
        });
        if (missing) throw notFound();
        return { status: 204, dataCategories: [] };
      },
    },
  ];
}
