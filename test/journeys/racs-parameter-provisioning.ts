import { randomUUID } from 'node:crypto';
import type { JsonBody, T8ApiJourney } from '../support/t8-api-journey.ts';
import { listSchema } from '../support/t8-api-journey.ts';

/** A manufacturer-assigned UE radio capability ID (type 0, 8-digit Vendor ID, 11-digit RCI), new every run and create. */
const racsId = (): string => `00000a1b2${randomUUID().replace(/-/g, '').slice(0, 11)}`;
/** A TAC of a UE model of that vendor. */
const TAC = '35999901';

/** One ID with its EPS and 5GS containers, for one UE model. */
function provisioning(): JsonBody {
  const id = racsId();
  return { racsConfigs: { [id]: { racsId: id, racsParamEps: 'beef01', racsParam5Gs: 'c0ffee00', imeiTacs: [TAC] } } };
}
const first = provisioning();

/**
 * 3gpp-racs-pp: radio capabilities of a UE model (IMEI TAC), not of a UE (the `ue` is not used).
 * The simulated UCMF stores the ID with its EPS and 5GS containers; a replacement provisions
 * another ID, a patch removes its EPS container. The API notifies nothing.
 */
export const racsParameterProvisioningJourney: T8ApiJourney = {
  api: '3gpp-racs-pp',
  version: 'v1',
  schemaFile: 'racs-parameter-provisioning',
  collection: 'provisionings',
  categories: ['radio-capability'],
  target: 'none',
  create: () => provisioning(),
  schemas: { request: 'RacsProvisioningData', resource: 'RacsProvisioningData', list: listSchema('provisionings') },
  put: { status: 200, body: () => first },
  patch: {
    contentType: 'application/merge-patch+json',
    schema: 'RacsProvisioningDataPatch',
    status: 200,
    body: { racsConfigs: { [Object.keys(first['racsConfigs'] as JsonBody)[0]]: { racsParamEps: null } } },
    expect: {},
  },
};
