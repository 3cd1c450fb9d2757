import type { components } from '@aese/t8-openapi/ecr-control';
import { invalidParam, PROBLEM_CAUSES } from '../../domain/problem.js';
import type { Plmn, UeView } from '../../network/network-adapter.js';
import type { ApiModule, ModuleDefinition, ModuleRoute, ModuleServices, Reach, RouteRequest, RouteResult } from '../registry.js';
import { assertUeIdentifiers, ueTargetsOf } from '../toolkit/ue-members.js';
import { StoredCoverageRestrictions } from './network.js';
import type { CoverageRestriction, CoverageRestrictionChange, CoverageRestrictions } from './network.js';

export const ECR_CONTROL_API = '3gpp-ecr-control';
/** The one data category of enhanced coverage restriction data (with the visited PLMN it comes with). */
export const ECR_CATEGORY = 'coverage-restriction';
/** Most PLMNs one list may name. */
export const MAX_ECR_PLMNS = 32;
/** Feature 1 of the API (ECR_WB_5G): the WB-E-UTRAN coverage modes per PLMN, `ecrDataWbs`. */
const ECR_WB_5G = 0x1;

type EcrControl = components['schemas']['ECRControl'];
type EcrData = components['schemas']['ECRData'];

const SCHEMAS = { control: 'ECRControl', data: 'ECRData' } as const;
/** Members that configure; a query carries none of them. */
const CONFIGURED = ['restrictedPlmnIds', 'allowedPlmnIds', 'ecrDataWbs'] as const;

const plmnKey = (p: Plmn): string => `${p.mcc}-${p.mnc}`;

/** The features both sides support: ECR_WB_5G when the AS asked for it (features 1-4 are the last digit). */
function negotiated(supportedFeatures: string): number {
  const last = supportedFeatures.at(-1);
  return last === undefined ? 0 : Number.parseInt(last, 16) & ECR_WB_5G;
}

/** MCC and MNC as TS 38.413 writes them (TS29571 Mcc/Mnc; the TS29122 copies leave them open). */
const MCC = /^[0-9]{3}$/;
const MNC = /^[0-9]{2,3}$/;

/** A PLMN list the HSS can hold: well-formed PLMN ids, each once, a bounded number. */
function assertPlmns(pointer: string, plmns: readonly Plmn[]): void {
  if (plmns.length > MAX_ECR_PLMNS) throw invalidParam(pointer, `names more than ${MAX_ECR_PLMNS} PLMNs`);
  const seen = new Set<string>();
  plmns.forEach((p, i) => {
    if (!MCC.test(p.mcc) || !MNC.test(p.mnc)) throw invalidParam(`${pointer}/${i}`, 'a PLMN id is a 3-digit mcc and a 2- or 3-digit mnc');
    if (seen.has(plmnKey(p))) throw invalidParam(`${pointer}/${i}`, 'names a PLMN twice');
    seen.add(plmnKey(p));
  });
}

/** Rules of both operations: the caller named, identifier syntax, PLMN lists. */
function validateCommon(b: EcrControl): void {
  if (b.scsAsId === undefined) throw invalidParam('/scsAsId', 'is required: it names the calling SCS/AS');
  assertUeIdentifiers(b);
  if (b.restrictedPlmnIds) assertPlmns('/restrictedPlmnIds', b.restrictedPlmnIds);
  if (b.allowedPlmnIds) assertPlmns('/allowedPlmnIds', b.allowedPlmnIds);
  if (b.ecrDataWbs) {
    assertPlmns(
      '/ecrDataWbs',
      b.ecrDataWbs.map(w => w.plmnId),
    );
    if (!(negotiated(b.supportedFeatures) & ECR_WB_5G)) throw invalidParam('/ecrDataWbs', 'needs feature ECR_WB_5G (1) in supportedFeatures');
  }
}

function validateQuery(document: unknown): void {
  const b = document as EcrControl;
  validateCommon(b);
  for (const m of CONFIGURED) if (m in b) throw invalidParam(`/${m}`, 'has no place in a query');
}

function validateConfigure(document: unknown): void {
  const b = document as EcrControl;
  validateCommon(b);
  if (!CONFIGURED.some(m => m in b)) throw invalidParam('/restrictedPlmnIds', 'a configure needs restrictedPlmnIds, allowedPlmnIds or ecrDataWbs');
}

/** What a configure changes: the list it gives (complete, replacing the one held) and the WB data. */
function changeOf(b: EcrControl): CoverageRestrictionChange {
  const list = b.restrictedPlmnIds
    ? { listed: 'restricted' as const, plmns: b.restrictedPlmnIds }
    : b.allowedPlmnIds
      ? { listed: 'allowed' as const, plmns: b.allowedPlmnIds }
      : undefined;
  const wb = b.ecrDataWbs?.map(w => ({ plmnId: w.plmnId, ...w.plmnEcrDataWb }));
  return { ...(list ? { list } : {}), ...(wb ? { wb } : {}) };
}

/**
 * 3gpp-ecr-control (TS 29.122 clause 5.12; procedures in clause 4.4): an AS queries or configures
 * the enhanced coverage restriction of one UE (externalId or msisdn) through the custom
 * operations POST /query (read) and POST /configure (update). Their paths carry no {scsAsId}:
 * the body's scsAsId names the caller and must be the authenticated AS. The answer is ECRData:
 * the restriction the subscription holds, and the PLMN the UE is visiting when it roams.
 */
function createEcrControlModule(s: ModuleServices, hss: CoverageRestrictions = new StoredCoverageRestrictions(s.store, ECR_CONTROL_API, ECR_CATEGORY, s.now)): ApiModule {
  const reachOf = async (b: EcrControl): Promise<Reach> => ({ dataCategories: [ECR_CATEGORY], targets: await ueTargetsOf(s.network, b) });

  async function resolve(b: EcrControl): Promise<UeView> {
    const ue = await s.network.findUe(b.externalId !== undefined ? { externalId: b.externalId } : { msisdn: b.msisdn! });
    if (!ue) throw invalidParam(b.externalId !== undefined ? '/externalId' : '/msisdn', 'is not known to the network', PROBLEM_CAUSES.unknownUe);
    return ue;
  }

  async function answer(b: EcrControl, ue: UeView, held: CoverageRestriction): Promise<RouteResult> {
    const features = negotiated(b.supportedFeatures);
    const roaming = await s.network.roaming(ue);
    const body: EcrData = {
      supportedFeatures: features.toString(16),
      ...(roaming.roaming ? { visitedPlmnId: { ...roaming.servingPlmn } } : {}),
      ...(held.listed === 'restricted' ? { restrictedPlmnIds: held.plmns.map(p => ({ ...p })) } : { allowedPlmnIds: held.plmns.map(p => ({ ...p })) }),
      ...(features & ECR_WB_5G
        ? { ecrDataWbs: held.wb.map(({ plmnId, ...modes }) => ({ plmnId: { ...plmnId }, ...(Object.keys(modes).length > 0 ? { plmnEcrDataWb: modes } : {}) })) }
        : {}),
    };
    return { status: 200, body, dataCategories: [ECR_CATEGORY] };
  }

  const route = (
    path: '/query' | '/configure',
    operation: 'read' | 'update',
    validate: ApiModule['validate'],
    serve: (req: RouteRequest) => Promise<RouteResult>,
  ): ModuleRoute => ({
    method: 'POST',
    path,
    operation,
    target: 'collection',
    request: { contentType: 'application/json', schema: SCHEMAS.control },
    responses: { 200: SCHEMAS.data },
    callerMember: 'scsAsId',
    validate,
    handler: serve,
  });

  const routes: ModuleRoute[] = [
    route('/query', 'read', validateQuery, async req => {
      const b = req.body as EcrControl;
      const ue = await resolve(b);
      return answer(b, ue, await hss.read(ue));
    }),
    route('/configure', 'update', validateConfigure, async req => {
      const b = req.body as EcrControl;
      const ue = await resolve(b);
      return answer(b, ue, await hss.write(ue, changeOf(b)));
    }),
  ];

  return {
    name: ECR_CONTROL_API,
    version: 'v1',
    scope: ECR_CONTROL_API,
    dataCategories: [ECR_CATEGORY],
    schemaFile: 'ecr-control',
    schemas: [SCHEMAS.control, SCHEMAS.data],
    reach: body => reachOf(body as EcrControl),
    routes,
  };
}

/** The ECRControl module, as registered. */
export const ecrControlModule: ModuleDefinition = { name: ECR_CONTROL_API, create: s => createEcrControlModule(s) };
