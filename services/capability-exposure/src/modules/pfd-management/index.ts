import { targetOf } from '@aese/t8-catalog';
import { checkNotificationDestination } from '../../domain/notification-destination.js';
import { invalidParam, PROBLEM_CAUSES } from '../../domain/problem.js';
import type { ApiModule, ModuleDefinition, ModuleRoute, ModuleServices, Reach, RouteRequest, RouteResult } from '../registry.js';
import { resourceLifecycle } from '../toolkit/lifecycle.js';
import { assertIdentifierSyntax } from '../ue-targets.js';
import { applicationRoutes } from './applications.js';
import { withAllRefused } from '../toolkit/refusals.js';
import { pfdManagementNetwork, provisionedElsewhere } from './network.js';
import type { State, Transaction } from './network.js';
import { applicationSelf, assertPfdData, pointerSegment } from './pfd-rules.js';
import { SimulatedPfdf } from './pfdf.js';

export const PFD_MANAGEMENT_API = '3gpp-pfd-management';
/** The one data category of PFD management: the traffic descriptions of an AS's applications. */
export const PFD_CATEGORY = 'pfd';

const T = '#/paths/~1{scsAsId}~1transactions';
const TI = `${T}~1{transactionId}`;
const SCHEMAS = {
  transaction: 'PfdManagement',
  patch: 'PfdManagementPatch',
  application: 'PfdData',
  report: 'PfdReport',
  list: `${T}/get/responses/200/content/application~1json/schema`,
  notification: `${T}/post/callbacks/notificationDestination/{request.body#~1notificationDestination}/post/requestBody/content/application~1json/schema`,
} as const;
/** The answer when the PFDF refused every application of a request: 500 with the reports. */
const ALL_REFUSED: Readonly<Record<string, string>> = {
  POST: `${T}/post/responses/500/content/application~1json/schema`,
  PUT: `${TI}/put/responses/500/content/application~1json/schema`,
  PATCH: `${TI}/patch/responses/500/content/application~1json/schema`,
};
const QUERY_APP_IDS = 'external-app-ids';

/**
 * PFDs describe an application's traffic for every UE that uses it: they name no UE or group but
 * applications, and an AS may describe only the applications it is granted
 * (`externalAppId:<id>` targets), so one AS cannot provision, or block, another's application.
 */
function reachOf(t: Transaction): Reach {
  return { dataCategories: [PFD_CATEGORY], targets: Object.keys(t.pfdDatas).map(id => targetOf('externalAppId', id)) };
}
/** One application's routes decide on the category here and on the stored transaction's applications in their handlers. */
const CATEGORY_ONLY: Reach = { dataCategories: [PFD_CATEGORY], targets: [] };

/** A transaction with only the queried applications (and their reports), or undefined when it has none of them. */
function onlyApplications(t: Transaction, wanted: ReadonlySet<string>): Transaction | undefined {
  const pfdDatas = Object.fromEntries(Object.entries(t.pfdDatas).filter(([id]) => wanted.has(id)));
  if (Object.keys(pfdDatas).length === 0) return undefined;
  const reports = Object.entries(t.pfdReports ?? {})
    .map(([k, r]) => [k, { ...r, externalAppIds: r.externalAppIds.filter(a => wanted.has(a)) }] as const)
    .filter(([, r]) => r.externalAppIds.length > 0);
  const { pfdReports: _all, ...rest } = t;
  return { ...rest, pfdDatas, ...(reports.length > 0 ? { pfdReports: Object.fromEntries(reports) } : {}) };
}

/** `?external-app-ids=a,b` (or repeated): the transactions' PFDs of those applications only. */
function filtered(result: RouteResult, req: RouteRequest): RouteResult {
  const wanted = new Set(req.query.getAll(QUERY_APP_IDS).flatMap(v => v.split(',').filter(Boolean)));
  if (wanted.size === 0) return result;
  return { ...result, body: (result.body as Transaction[]).map(t => onlyApplications(t, wanted)).filter(t => t !== undefined) };
}

/** The transaction routes with their TS 29.122 extras: the 500 of a refused request, the query of the list. */
function transactionRoutes(routes: readonly ModuleRoute[]): ModuleRoute[] {
  return withAllRefused(routes, { schemas: ALL_REFUSED, dataCategories: [PFD_CATEGORY], reportsMember: 'pfdReports' }).map(r =>
    r.method === 'GET' && r.target === 'collection' ? { ...r, handler: async req => filtered(await r.handler(req), req) } : r,
  );
}

/**
 * 3gpp-pfd-management (TS 29.122 clauses 4.4.10 and 5.11): an AS provisions the packet flow
 * descriptions (flow 3-tuples, URLs, domain names) of its external application ids in
 * transactions; the simulated PFDF stores each application unless it is provisioned already
 * (APP_ID_DUPLICATED), its allowedDelay is shorter than the PFDF can honour (SHORT_DELAY) or it
 * has more PFDs than the PFDF keeps (RESOURCE_LIMITATION): refusals come back as pfdReports, or as
 * 500 with the reports when every application was refused. Stored PFDs then go out to the user
 * plane; what some UPFs cannot enforce is notified as a PARTIAL_FAILURE PfdReport (./network.ts).
 * One application can be read, replaced, patched or removed on its own (./applications.ts).
 */
function createPfdManagementModule(s: ModuleServices): ApiModule {
  const pfdf = new SimulatedPfdf(s.network, PFD_MANAGEMENT_API);
  const network = pfdManagementNetwork(s, { api: PFD_MANAGEMENT_API, category: PFD_CATEGORY, pfdf, notificationSchema: SCHEMAS.notification });

  function validate(body: Transaction, req: RouteRequest): void {
    if (body.websockNotifConfig !== undefined) throw invalidParam('/websockNotifConfig', 'notifications are delivered over HTTPS only');
    if (body.requestTestNotification === true && body.notificationDestination === undefined) {
      throw invalidParam('/notificationDestination', 'is required for a test notification');
    }
    const self = req.existing?.resource['self'] as string | undefined;
    for (const [key, data] of Object.entries(body.pfdDatas)) {
      const at = `/pfdDatas/${pointerSegment(key)}`;
      if (data.externalAppId !== key) throw invalidParam(`${at}/externalAppId`, 'must equal its key in pfdDatas', PROBLEM_CAUSES.idMismatch);
      assertIdentifierSyntax(`${at}/externalAppId`, 'externalAppId', key);
      assertPfdData(data, at, self === undefined ? undefined : applicationSelf(self, key));
    }
  }

  const transactions = resourceLifecycle<Transaction, State>({
    services: s,
    api: PFD_MANAGEMENT_API,
    schemaFile: 'pfd-management',
    collection: '/{scsAsId}/transactions',
    idParam: 'transactionId',
    schemas: { resource: SCHEMAS.transaction, list: SCHEMAS.list },
    patch: { kind: 'merge-patch', schema: SCHEMAS.patch, answer: 200 },
    scefMembers: ['pfdReports'],
    reach: reachOf,
    validate,
    check: async body => {
      if (body.notificationDestination !== undefined) await checkNotificationDestination(body.notificationDestination, s.destinations);
    },
    network,
  });

  const applications = applicationRoutes({
    services: s,
    api: PFD_MANAGEMENT_API,
    pfdf,
    reach: CATEGORY_ONLY,
    provisionedElsewhere: (scsAsId, transactionId) => provisionedElsewhere(s, PFD_MANAGEMENT_API, scsAsId, transactionId),
  });

  return {
    name: PFD_MANAGEMENT_API,
    version: 'v1',
    scope: PFD_MANAGEMENT_API,
    dataCategories: [PFD_CATEGORY],
    schemaFile: 'pfd-management',
    schemas: [SCHEMAS.transaction, SCHEMAS.patch, SCHEMAS.application, SCHEMAS.report],
    notificationSchema: SCHEMAS.notification,
    reach: async body => reachOf(body as Transaction),
    routes: [...transactionRoutes(transactions.routes), ...applications],
    onNetworkEvent: async event => (await network.onNetworkEvent?.(event, transactions)) ?? [],
    stop: async () => network.stop?.(),
  };
}

/** The PfdManagement module, as registered. */
export const pfdManagementModule: ModuleDefinition = { name: PFD_MANAGEMENT_API, create: createPfdManagementModule };
