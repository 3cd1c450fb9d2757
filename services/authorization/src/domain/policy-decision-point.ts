import type { EntityJson } from '@cedar-policy/cedar-wasm/nodejs';
import { AeseError } from '@aese/errors';
import type { AuditRecord } from '@aese/events';
import type { Logger } from '@aese/logger';
import type { CedarEvaluator } from './cedar-evaluator.js';
import { decisionKey, parseDecisionRequest } from './decision-request.js';
import type { DecisionRequest, RawDecisionRequest } from './decision-request.js';
import { LruCache } from './lru-cache.js';
import type { CacheLookups } from '@aese/telemetry';
import { obligationsOf } from './obligations.js';
import type { Obligation } from './obligations.js';
import { ENTITY_TYPES } from './policy-bundle.js';
import type { ApplicationGrants, PolicyBundle } from './policy-bundle.js';
import { DENY_CAUSE_PRECEDENCE, DENY_CAUSES } from './vocabulary.js';

/** Decisions remembered per policy version when nothing is configured. */
export const DEFAULT_DECISION_CACHE_SIZE = 10_000;

/** The answer to one Decide request. */
export interface Decision {
  readonly allowed: boolean;
  readonly determiningPolicies: readonly string[];
  readonly obligations: readonly Obligation[];
  readonly policyVersion: number;
  /** Empty when allowed. */
  readonly denyCause: string;
}

/** Where security decisions are recorded (the audit trail); it must not block a decision. */
export interface AuditTrail {
  record(record: AuditRecord): void;
}

/** The audit action of a decision. */
export const DECIDE_AUDIT_ACTION = 'authorization.decide';

/** The policy set and grants that decide, with their version. */
export interface ActivePolicies {
  readonly version: number;
  readonly appliedAtMs: number;
  readonly bundle: PolicyBundle;
}

/**
 * The entities Cedar sees for one request: the AS, its groups, and of its grants only the one
 * for the requested API, with `targets` narrowed to the targets the request names. Evaluation
 * cost then depends on the request, not on how many UEs an AS is granted; `containsAll` over
 * the requested targets answers exactly as over the full set. Generic policies must therefore
 * read the grant through `principal.getTag(context.api)` (the shipped ones do).
 */
export function entitySlice(app: ApplicationGrants | undefined, req: DecisionRequest): EntityJson[] {
  if (!app) return [];
  const grant = app.grants.get(req.api);
  const tags = grant ? { [req.api]: { ...grant.json, targets: req.targets.filter(t => grant.targets.has(t)) } } : {};
  const principal = {
    uid: { type: ENTITY_TYPES.application, id: app.scsAsId },
    attrs: app.attrs,
    parents: app.parents,
    tags,
  } as unknown as EntityJson;
  return [principal, ...app.ancestors];
}

/**
 * The policy decision point: deny by default, Cedar decides, obligations come from the grant
 * that allowed. Swapping to a new version is atomic for callers (decisions are synchronous)
 * and empties the decision cache.
 */
export class PolicyDecisionPoint {
  private active: ActivePolicies | undefined;
  private readonly cache: LruCache<string, Decision>;

  constructor(
    private readonly evaluator: CedarEvaluator,
    private readonly logger: Logger,
    private readonly audit: AuditTrail,
    cacheSize: number = DEFAULT_DECISION_CACHE_SIZE,
    private readonly metrics?: { readonly decisions: { decided(allowed: boolean, cause: string): void }; readonly cache: CacheLookups },
  ) {
    this.cache = new LruCache(cacheSize);
  }

  /** The version deciding now, or undefined before the first valid one arrived. */
  get current(): ActivePolicies | undefined {
    return this.active;
  }

  /** Makes a validated bundle current. */
  activate(policies: ActivePolicies): void {
    this.evaluator.load(policies.bundle.policies);
    this.active = policies;
    this.cache.clear();
  }

  /**
   * Decides one request. Bad input fails with INVALID_INPUT before any evaluation; with no
   * valid policy set loaded every request fails with UNAVAILABLE (never an allow).
   */
  decide(raw: RawDecisionRequest): Decision {
    const req = parseDecisionRequest(raw);
    const active = this.active;
    if (!active) throw new AeseError('UNAVAILABLE', 'no valid policy set is loaded; every request is refused');
    const key = decisionKey(req);
    let decision = this.cache.get(key);
    if (!decision) {
      this.metrics?.cache.miss();
      decision = this.evaluate(active, req);
      this.cache.set(key, decision);
    } else this.metrics?.cache.hit();
    this.metrics?.decisions.decided(decision.allowed, decision.denyCause);
    if (!decision.allowed) {
      // Every denied request is audited and logged, cached or not; never with its targets
      // (UE identifiers).
      const detail = { api: req.api, operation: req.operation, categories: req.categories.join(','), policyVersion: active.version };
      this.audit.record({ actor: req.scsAsId, action: DECIDE_AUDIT_ACTION, decision: 'deny', reason: decision.denyCause, detail });
      this.logger.info({ scsAsId: req.scsAsId, ...detail, cause: decision.denyCause }, 'authorization denied');
    }
    return decision;
  }

  private evaluate(active: ActivePolicies, req: DecisionRequest): Decision {
    const app = active.bundle.applications.get(req.scsAsId);
    const answer = this.evaluator.evaluate({
      principal: { type: ENTITY_TYPES.application, id: req.scsAsId },
      action: { type: ENTITY_TYPES.action, id: req.operation },
      resource: { type: ENTITY_TYPES.api, id: req.api },
      context: {
        api: req.api,
        operation: req.operation,
        categories: [...req.categories],
        targets: [...req.targets],
        pathScsAs: { __entity: { type: ENTITY_TYPES.application, id: req.pathScsAsId } },
      },
      entities: entitySlice(app, req),
    });
    const base = { policyVersion: active.version, determiningPolicies: [...answer.reasons] };
    if (answer.erroredPolicies.length > 0) {
      // A policy that cannot be evaluated might have been the forbid that mattered: deny.
      this.logger.warn({ scsAsId: req.scsAsId, api: req.api, policies: answer.erroredPolicies, policyVersion: active.version }, 'policy evaluation failed; denied');
      return { ...base, allowed: false, obligations: [], denyCause: DENY_CAUSES.evaluationError };
    }
    if (answer.decision === 'allow') {
      return { ...base, allowed: true, obligations: obligationsOf(app, app?.grants.get(req.api), req.categories), denyCause: '' };
    }
    return { ...base, allowed: false, obligations: [], denyCause: denyCauseOf(answer.reasons, active.bundle, app !== undefined) };
  }
}

function denyCauseOf(reasons: readonly string[], bundle: PolicyBundle, known: boolean): string {
  const causes = reasons.map(id => bundle.forbids.get(id) ?? DENY_CAUSES.forbiddenByPolicy);
  if (causes.includes(DENY_CAUSES.scsAsIdMismatch)) return DENY_CAUSES.scsAsIdMismatch;
  // An AS without any grant is denied by default, whatever explanation a forbid offers.
  if (!known || causes.length === 0) return DENY_CAUSES.noGrant;
  for (const c of DENY_CAUSE_PRECEDENCE) if (causes.includes(c)) return c;
  return [...causes].sort()[0];
}
