import { invalidParam, PROBLEM_CAUSES } from '../../domain/problem.js';
import type { StoredResource } from '../../domain/resource-store.js';
import type { ApiModule, ModuleDefinition, ModuleServices, Reach, RouteRequest } from '../registry.js';
import { resourceLifecycle } from '../toolkit/lifecycle.js';
import { assertIdentifiersSyntax, identifierTargets } from '../ue-targets.js';
import { cpSetRoutes } from './cp-sets.js';
import { SimulatedCpHss } from './hss.js';
import { withAllRefused } from '../toolkit/refusals.js';
import { CP_IDENTIFIERS, cpProvisioningNetwork, setSelf, takenElsewhere } from './network.js';
import type { CpInfo, CpState } from './network.js';
import { assertCpSet, pointerSegment } from './set-rules.js';

export const CP_PROVISIONING_API = '3gpp-cp-parameter-provisioning';
/** The one data category of CP parameter provisioning: how and when a UE is expected to communicate. */
export const CP_CATEGORY = 'communication-pattern';

const S = '#/paths/~1{scsAsId}~1subscriptions';
const SCHEMAS = {
  subscription: 'CpInfo',
  set: 'CpParameterSet',
  report: 'CpReport',
  list: `${S}/get/responses/200/content/application~1json/schema`,
} as const;
/** The answer when the HSS refused every set of a request: 500 with the reports. */
const ALL_REFUSED: Readonly<Record<string, string>> = {
  POST: `${S}/post/responses/500/content/application~1json/schema`,
  PUT: `${S}~1{subscriptionId}/put/responses/500/content/application~1json/schema`,
};
const IDENTIFIER_MEMBERS = Object.keys(CP_IDENTIFIERS);

const reachOf = (body: CpInfo): Reach => ({ dataCategories: [CP_CATEGORY], targets: identifierTargets(body, CP_IDENTIFIERS) });

/**
 * 3gpp-cp-parameter-provisioning (TS 29.122 clauses 4.4.11 and 5.10): an AS provisions sets of
 * communication pattern parameters (periodic communication, scheduled times, stationarity,
 * battery, expected UE behaviour, ...) for one UE or an external group. The simulated HSS stores
 * each set unless the AS already provisioned its id for the UE (SET_ID_DUPLICATED), its values make
 * no pattern the network can apply (OTHER_REASON) or its confidence or accuracy is too low:
 * refusals come back as cpReports, or as 500 with the reports when every set was refused. One set
 * can be read, replaced or removed on its own (cpSets/{setId}, ./cp-sets.ts).
 */
function createCpProvisioningModule(s: ModuleServices): ApiModule {
  const hss = new SimulatedCpHss(s.now);

  function validate(body: CpInfo, req: RouteRequest): void {
    for (const member of ['ueIpAddr', 'ueMacAddr'] as const) {
      if (body[member] !== undefined) throw invalidParam(`/${member}`, 'the UE is named by externalId, msisdn or externalGroupId only');
    }
    if (IDENTIFIER_MEMBERS.filter(m => m in body).length !== 1) {
      throw invalidParam('/externalId', 'exactly one of externalId, msisdn or externalGroupId is required', PROBLEM_CAUSES.ueIdentifierRequired);
    }
    assertIdentifiersSyntax(body, CP_IDENTIFIERS);
    const self = req.existing?.resource['self'] as string | undefined;
    for (const [key, set] of Object.entries(body.cpParameterSets)) {
      assertCpSet(set, `/cpParameterSets/${pointerSegment(key)}`, self === undefined ? undefined : setSelf(self, set.setId));
    }
  }

  const subscriptions = resourceLifecycle<CpInfo, CpState>({
    services: s,
    api: CP_PROVISIONING_API,
    schemaFile: 'cp-provisioning',
    collection: '/{scsAsId}/subscriptions',
    idParam: 'subscriptionId',
    schemas: { resource: SCHEMAS.subscription, list: SCHEMAS.list },
    scefMembers: ['cpReports'],
    immutable: IDENTIFIER_MEMBERS,
    reach: reachOf,
    validate,
    network: cpProvisioningNetwork(s, CP_PROVISIONING_API, hss),
  });

  const sets = cpSetRoutes({
    services: s,
    api: CP_PROVISIONING_API,
    hss,
    reach: { dataCategories: [CP_CATEGORY], targets: [] },
    takenElsewhere: (record: StoredResource) => takenElsewhere(s, CP_PROVISIONING_API, (record.state['ueHandles'] as string[] | undefined) ?? [], record.scsAsId, record.id),
    setSelf,
  });

  return {
    name: CP_PROVISIONING_API,
    version: 'v1',
    scope: CP_PROVISIONING_API,
    dataCategories: [CP_CATEGORY],
    schemaFile: 'cp-provisioning',
    schemas: [SCHEMAS.subscription, SCHEMAS.set, SCHEMAS.report],
    reach: async body => reachOf(body as CpInfo),
    // A create or replace the HSS refused entirely answers 500 with the CpReports (TS 29.122 cl. 5.10.3).
    routes: [...withAllRefused(subscriptions.routes, { schemas: ALL_REFUSED, dataCategories: [CP_CATEGORY] }), ...sets],
  };
}

/** The CpProvisioning module, as registered. */
export const cpProvisioningModule: ModuleDefinition = { name: CP_PROVISIONING_API, create: createCpProvisioningModule };
