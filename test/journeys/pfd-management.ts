import { randomUUID } from 'node:crypto';
import type { JsonBody, T8ApiJourney } from '../support/t8-api-journey.ts';
import { listSchema } from '../support/t8-api-journey.ts';

/** External application ids are network-wide: every run, and every create of a run, names its own. */
const RUN = `journey-${randomUUID().slice(0, 8)}`;
let created = 0;

/** An application recognised by its server certificate's names: the simulated edge UPFs cannot read those. */
function videoApp(appId: string): JsonBody {
  return {
    externalAppId: appId,
    pfds: {
      sni: { pfdId: 'sni', domainNames: ['video.example.com'], dnProtocol: 'TLS_SNI' },
      san: { pfdId: 'san', domainNames: ['video.example.com'], dnProtocol: 'TLS_SAN' },
      flows: { pfdId: 'flows', flowDescriptions: ['permit out tcp from 198.51.100.7 443 to assigned'] },
    },
    allowedDelay: 60,
  };
}
const transaction = (appId: string, notificationDestination: string): JsonBody => ({ pfdDatas: { [appId]: videoApp(appId) }, notificationDestination });

/**
 * 3gpp-pfd-management: PFDs name applications, not UEs (the `ue` is not used). The AS provisions
 * the PFDs of a video application; the simulated PFDF stores them and pushes them to the user
 * plane, where the edge UPFs cannot match names in server certificates (TLS_SAN): the AS is told
 * with a PARTIAL_FAILURE PfdReport naming the application and the DNAIs of those UPFs.
 */
export const pfdManagementJourney: T8ApiJourney = {
  api: '3gpp-pfd-management',
  version: 'v1',
  schemaFile: 'pfd-management',
  collection: 'transactions',
  categories: ['pfd'],
  target: 'none',
  create: (_ue, notificationDestination) => transaction(`${RUN}-video-${++created}`, notificationDestination),
  schemas: { request: 'PfdManagement', resource: 'PfdManagement', list: listSchema('transactions') },
  put: { status: 200, body: (_ue, notificationDestination) => transaction(`${RUN}-replaced`, notificationDestination) },
  patch: {
    contentType: 'application/merge-patch+json',
    schema: 'PfdManagementPatch',
    status: 200,
    body: { pfdDatas: { [`${RUN}-added`]: videoApp(`${RUN}-added`) } },
    expect: {},
  },
  notification: {
    schema: '#/paths/~1{scsAsId}~1transactions/post/callbacks/notificationDestination/{request.body#~1notificationDestination}/post/requestBody/content/application~1json/schema',
    matches: n => {
      const reports = (Array.isArray(n) ? n : []) as JsonBody[];
      return reports.some(r => r['failureCode'] === 'PARTIAL_FAILURE' && (r['externalAppIds'] as string[]).some(id => id.startsWith(RUN)));
    },
  },
};
