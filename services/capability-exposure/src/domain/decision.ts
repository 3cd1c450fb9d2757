/** CRUD operation of a T8 route, as the authorization service names it. */
export type Operation = 'create' | 'read' | 'update' | 'delete';
/** What a decision is asked about: a route's operation, or sending a notification (`notify`). */
export type DecisionOperation = Operation | 'notify';

/** One question to the policy decision point (aese.authorization.v1.Decide). */
export interface DecisionRequest {
  readonly scsAsId: string;
  readonly api: string;
  readonly operation: DecisionOperation;
  readonly dataCategories: readonly string[];
  /** "externalId:<v>", "msisdn:<v>" or "externalGroupId:<v>". */
  readonly targets: readonly string[];
  readonly pathScsAsId: string;
}

/** A duty attached to an allow decision. */
export interface Obligation {
  readonly type: string;
  readonly parameters: Readonly<Record<string, string>>;
}

export interface Decision {
  readonly allowed: boolean;
  readonly obligations: readonly Obligation[];
  readonly policyVersion: number;
  readonly denyCause: string;
}

/**
 * Asks for a decision. Throws when no decision can be had (the service is down, the call timed
 * out): the caller then fails closed with 503; an AeseError INVALID_INPUT means the request was
 * malformed, a fault of this service (500). The service wires the authorization gRPC client
 * here; tests may pass their own policy.
 */
export type Decide = (request: DecisionRequest) => Promise<Decision>;
