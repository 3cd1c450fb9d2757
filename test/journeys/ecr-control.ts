import { HOME_PLMN, VISITED_PLMN } from '../../services/capability-exposure/src/network/simulated-core.ts';
import type { JourneyUe, T8ApiJourney } from '../support/t8-api-journey.ts';

/** The caller names itself in the body (`scsAsId`), and the UE by externalId. */
const about = (caller: string, ue: JourneyUe) => ({ supportedFeatures: '0', scsAsId: caller, externalId: ue.externalId });

/**
 * 3gpp-ecr-control: custom operations on the enhanced coverage restriction of one UE, with no
 * `{scsAsId}` in their paths. POST /query reads what the subscription holds (ECRData), POST
 * /configure replaces the list of PLMNs where enhanced coverage is restricted (or allowed): the
 * journey restricts it in the visited PLMN, and the refused callers would allow it at home only.
 */
export const ecrControlJourney: T8ApiJourney = {
  kind: 'rpc',
  api: '3gpp-ecr-control',
  version: 'v1',
  schemaFile: 'ecr-control',
  categories: ['coverage-restriction'],
  target: 'externalId',
  callerMember: 'scsAsId',
  schemas: { request: 'ECRControl', answer: 'ECRData' },
  read: { path: '/query', body: about },
  write: { path: '/configure', body: (caller, ue) => ({ ...about(caller, ue), restrictedPlmnIds: [VISITED_PLMN] }), expect: { restrictedPlmnIds: [VISITED_PLMN] } },
  otherWrite: { path: '/configure', body: (caller, ue) => ({ ...about(caller, ue), allowedPlmnIds: [HOME_PLMN] }) },
};
