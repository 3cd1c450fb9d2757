import { createHash, randomUUID } from 'node:crypto';
import { preparsePolicySet, preparseSchema, statefulIsAuthorized } from '@cedar-policy/cedar-wasm/nodejs';
import type { Context, EntityJson } from '@cedar-policy/cedar-wasm/nodejs';
import { AeseError } from '@aese/errors';
import { describeCedarErrors } from './cedar-errors.js';
import type { EntityUid } from './policy-bundle.js';

/** What Cedar answered for one request. */
export interface CedarAnswer {
  readonly decision: 'allow' | 'deny';
  /** Ids of the policies that determined the decision. */
  readonly reasons: readonly string[];
  /** Ids of the policies whose evaluation failed. */
  readonly erroredPolicies: readonly string[];
}

/** One authorization request in Cedar terms. */
export interface CedarRequest {
  readonly principal: EntityUid;
  readonly action: EntityUid;
  readonly resource: EntityUid;
  readonly context: Context;
  readonly entities: readonly EntityJson[];
}

/**
 * The Cedar engine (cedar-wasm) with the schema and the current policy set parsed once.
 * cedar-wasm keeps preparsed sets in a process-wide table keyed by name; each evaluator uses
 * its own name, so two service instances in one process (tests, say) never see each other's
 * policies. Loading a set and evaluating are synchronous, so a request is evaluated entirely
 * against one set.
 */
export class CedarEvaluator {
  private readonly schemaName: string;
  private readonly policySetName = `aese-authorization-${randomUUID()}`;
  private loaded = false;

  constructor(schema: string) {
    this.schemaName = `aese-schema-${createHash('sha256').update(schema).digest('hex').slice(0, 32)}`;
    const parsed = preparseSchema(this.schemaName, schema);
    if (parsed.type !== 'success') throw new TypeError(`the Cedar schema does not parse: ${describeCedarErrors(parsed.errors)}`);
  }

  /** Makes a (validated) policy set the one evaluated from now on. */
  load(policies: Readonly<Record<string, string>>): void {
    const parsed = preparsePolicySet(this.policySetName, { staticPolicies: { ...policies } });
    if (parsed.type !== 'success') throw new AeseError('INVALID_INPUT', `policies do not parse: ${describeCedarErrors(parsed.errors)}`);
    this.loaded = true;
  }

  /**
   * Evaluates one request with the request validated against the schema (an action, principal,
   * resource or context that the schema does not allow is an error, never a silent allow).
   *
   * @throws AeseError UNAVAILABLE before a set is loaded, INTERNAL when Cedar refuses the request.
   */
  evaluate(req: CedarRequest): CedarAnswer {
    if (!this.loaded) throw new AeseError('UNAVAILABLE', 'no policy set is loaded');
    const answer = statefulIsAuthorized({
      principal: req.principal,
      action: req.action,
      resource: req.resource,
      context: req.context,
      entities: [...req.entities],
      preparsedSchemaName: this.schemaName,
      preparsedPolicySetId: this.policySetName,
      validateRequest: true,
    });
    if (answer.type !== 'success') {
      // Cedar's messages may quote context values (UE identifiers): they are not kept.
      throw new AeseError('INTERNAL', `the policy engine refused the request (${answer.errors.length} errors)`);
    }
    return {
      decision: answer.response.decision,
      reasons: answer.response.diagnostics.reason,
      erroredPolicies: answer.response.diagnostics.errors.map(e => e.policyId),
    };
  }
}
