import type { Operation } from '../../domain/decision.js';
import { PROBLEM_CAUSES, T8Problem } from '../../domain/problem.js';
import type { StoredResource } from '../../domain/resource-store.js';
import type { ModuleServices } from '../registry.js';

/**
 * Decides a request on a stored resource's reach (its targets and data categories), for routes
 * the pipeline cannot decide on the body (a member of a stored resource, such as one PFD
 * application or one CP set). Fails closed as the pipeline does: 403 with the decision's cause,
 * 503 when authorization does not answer.
 */
export async function authorizeStored(s: ModuleServices, api: string, operation: Operation, record: StoredResource): Promise<void> {
  let allowed: boolean;
  let cause: string;
  try {
    const d = await s.decide({ scsAsId: record.scsAsId, api, operation, dataCategories: record.dataCategories, targets: record.targets, pathScsAsId: record.scsAsId });
    allowed = d.allowed;
    cause = d.denyCause;
  } catch {
    throw new T8Problem(503, PROBLEM_CAUSES.authorizationUnavailable, 'authorization is unavailable; the request was not executed');
  }
  if (!allowed) throw new T8Problem(403, cause || PROBLEM_CAUSES.requestNotAuthorized, 'the request is not authorized');
}

/** What a decision taken again says: go ahead, never (the grant is gone), or not now (no answer). */
export type StillAuthorized = 'allowed' | 'denied' | 'unavailable';

/**
 * Whether the AS may still have the SCEF act on a stored resource it created, decided now: for
 * what the SCEF does later on its own (a buffered delivery, a pending trigger, a scheduled
 * broadcast), since grants can be withdrawn and ASes suspended meanwhile. `unavailable` when
 * authorization does not answer: the action waits (until its own deadline), never taken
 * undecided, and is not failed for an outage either.
 */
export async function stillAuthorized(s: ModuleServices, api: string, record: StoredResource, operation: Operation = 'create'): Promise<StillAuthorized> {
  try {
    const d = await s.decide({ scsAsId: record.scsAsId, api, operation, dataCategories: record.dataCategories, targets: record.targets, pathScsAsId: record.scsAsId });
    return d.allowed ? 'allowed' : 'denied';
  } catch {
    return 'unavailable';
  }
}
