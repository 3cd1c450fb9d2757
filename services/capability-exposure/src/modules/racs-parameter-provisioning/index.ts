import { invalidParam, PROBLEM_CAUSES } from '../../domain/problem.js';
import type { ApiModule, ModuleDefinition, ModuleServices, Reach } from '../registry.js';
import { resourceLifecycle } from '../toolkit/lifecycle.js';
import { withAllRefused } from '../toolkit/refusals.js';
import { racsProvisioningNetwork } from './network.js';
import type { Provisioning, State } from './network.js';
import { SimulatedUcmf } from './ucmf.js';

export const RACS_PARAMETER_PROVISIONING_API = '3gpp-racs-pp';
/** The one data category of RACS provisioning: the radio capabilities of UE models. */
export const RADIO_CAPABILITY_CATEGORY = 'radio-capability';

const P = '#/paths/~1{scsAsId}~1provisionings';
const PI = `${P}~1{provisioningId}`;
const SCHEMAS = {
  provisioning: 'RacsProvisioningData',
  patch: 'RacsProvisioningDataPatch',
  report: 'RacsFailureReport',
  list: `${P}/get/responses/200/content/application~1json/schema`,
} as const;
/** The answer when the UCMF refused every configuration of a request: 500 with the reports. */
const ALL_REFUSED: Readonly<Record<string, string>> = {
  POST: `${P}/post/responses/500/content/application~1json/schema`,
  PUT: `${PI}/put/responses/500/content/application~1json/schema`,
  PATCH: `${PI}/patch/responses/500/content/application~1json/schema`,
};
/** A manufacturer-assigned UE radio capability ID (TS 23.003 cl. 29.2): type 0, 8 hex digits of Vendor ID, 11 of RCI. */
const MANUFACTURER_RACS_ID = /^0[0-9A-Fa-f]{19}$/;

/**
 * RACS data describes UE models (IMEI TACs), not UEs: no UE or group is named, so a request reaches
 * no authorization target and is granted by API, operation and category.
 */
const REACH: Reach = { dataCategories: [RADIO_CAPABILITY_CATEGORY], targets: [] };

/** A map key as a JSON pointer segment (RFC 6901). */
const pointerSegment = (key: string): string => key.replace(/~/g, '~0').replace(/\//g, '~1');

function validate(body: Provisioning): void {
  for (const [key, config] of Object.entries(body.racsConfigs)) {
    const at = `/racsConfigs/${pointerSegment(key)}`;
    if (config.racsId !== key) throw invalidParam(`${at}/racsId`, 'must equal its key in racsConfigs', PROBLEM_CAUSES.idMismatch);
    if (!MANUFACTURER_RACS_ID.test(config.racsId)) throw invalidParam(`${at}/racsId`, 'must be a manufacturer-assigned UE radio capability ID (TS 23.003 cl. 29.2)');
    for (const member of ['racsParamEps', 'racsParam5Gs'] as const) {
      if (config[member] === '') throw invalidParam(`${at}/${member}`, 'must not be empty');
    }
  }
}

/**
 * 3gpp-racs-pp (TS 29.122 clause 5.16, RacsParameterProvisioning): an AS provisions
 * the UE radio capabilities (EPS and/or 5GS containers) behind manufacturer-assigned UE radio
 * capability IDs, each for the IMEI TACs of the UE models it applies to. The simulated UCMF stores
 * each configuration unless its ID is provisioned already (RACS_ID_DUPLICATED), one of its TACs
 * belongs to another vendor's IDs (OTHER_REASON) or a container is larger than it keeps
 * (RESOURCE_LIMITATION): refusals come back as racsReports, or as 500 with the reports when every
 * configuration was refused (./network.ts, ./ucmf.ts).
 */
function createRacsParameterProvisioningModule(s: ModuleServices): ApiModule {
  const ucmf = new SimulatedUcmf();

  const provisionings = resourceLifecycle<Provisioning, State>({
    services: s,
    api: RACS_PARAMETER_PROVISIONING_API,
    schemaFile: 'racs-parameter-provisioning',
    collection: '/{scsAsId}/provisionings',
    idParam: 'provisioningId',
    schemas: { resource: SCHEMAS.provisioning, list: SCHEMAS.list },
    patch: { kind: 'merge-patch', schema: SCHEMAS.patch, answer: 200 },
    scefMembers: ['racsReports'],
    reach: () => REACH,
    validate,
    network: racsProvisioningNetwork(s, RACS_PARAMETER_PROVISIONING_API, ucmf),
  });

  return {
    name: RACS_PARAMETER_PROVISIONING_API,
    version: 'v1',
    scope: RACS_PARAMETER_PROVISIONING_API,
    dataCategories: REACH.dataCategories,
    schemaFile: 'racs-parameter-provisioning',
    schemas: [SCHEMAS.provisioning, SCHEMAS.patch, SCHEMAS.report],
    reach: async () => REACH,
    // A request the UCMF refused entirely answers 500 with the reports; a patch starts from the provisioning without them.
    routes: withAllRefused(provisionings.routes, { schemas: ALL_REFUSED, dataCategories: REACH.dataCategories, reportsMember: 'racsReports' }),
  };
}

/** The RacsParameterProvisioning module, as registered. */
export const racsParameterProvisioningModule: ModuleDefinition = { name: RACS_PARAMETER_PROVISIONING_API, create: createRacsParameterProvisioningModule };
