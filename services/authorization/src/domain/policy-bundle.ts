import { checkParseEntities, checkParseSchema, policySetTextToParts, policyToJson, validate } from '@cedar-policy/cedar-wasm/nodejs';
import type { EntityJson } from '@cedar-policy/cedar-wasm/nodejs';
import { AeseError } from '@aese/errors';
import { isT8Scope, SERVED_T8_APIS } from '@aese/t8-catalog';
import { describeCedarErrors } from './cedar-errors.js';
import { LIMITS } from './limits.js';
import { assertTarget, isDenyCause, isName, isScsAsId, LOCATION_GRANULARITIES, OPERATIONS } from './vocabulary.js';
import type { LocationGranularity } from './vocabulary.js';

/** Cedar entity types of the schema (namespace `Aese`). */
export const ENTITY_TYPES = {
  application: 'Aese::Application',
  applicationGroup: 'Aese::ApplicationGroup',
  api: 'Aese::Api',
  action: 'Aese::Action',
} as const;

/** One API grant of one AS: the value of the Application tag named after the API. */
export interface ApiGrant {
  /** The tag value exactly as applied (Cedar entity JSON). */
  readonly json: Readonly<Record<string, unknown>>;
  readonly targets: ReadonlySet<string>;
  readonly encryptCategories: ReadonlySet<string>;
  readonly locationGranularity: LocationGranularity | undefined;
}

/** An AS as the grants describe it, indexed for per-request entity slicing. */
export interface ApplicationGrants {
  readonly scsAsId: string;
  readonly attrs: Readonly<Record<string, unknown>>;
  readonly parents: readonly EntityUid[];
  /** API name -> grant. */
  readonly grants: ReadonlyMap<string, ApiGrant>;
  /** Every ApplicationGroup entity the AS is in, transitively. */
  readonly ancestors: readonly EntityJson[];
  readonly rateLimitPerSecond: number | undefined;
}

/** A validated policy set and grants, ready to evaluate. */
export interface PolicyBundle {
  readonly policiesText: string;
  /** Policy id (its @id) -> policy text. */
  readonly policies: Readonly<Record<string, string>>;
  /** Forbid policy id -> its @denyCause (or FORBIDDEN_BY_POLICY when it has none). */
  readonly forbids: ReadonlyMap<string, string | undefined>;
  /** The entities as applied (Cedar entity JSON). */
  readonly entities: readonly EntityJson[];
  /** scsAsId -> its grants. */
  readonly applications: ReadonlyMap<string, ApplicationGrants>;
}

/** A Cedar entity uid in the `{ type, id }` form. */
export interface EntityUid {
  readonly type: string;
  readonly id: string;
}

const POLICY_ID = /^[A-Za-z0-9._-]{1,64}$/;
const ENTITY_ID_MAX = 128;

function invalid(message: string): AeseError {
  return new AeseError('INVALID_INPUT', message);
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function uidOf(v: unknown, where: string): EntityUid {
  const inner = isRecord(v) && isRecord(v['__entity']) ? v['__entity'] : v;
  if (!isRecord(inner) || typeof inner['type'] !== 'string' || typeof inner['id'] !== 'string') {
    throw invalid(`${where} must be an entity uid {"type": ..., "id": ...}`);
  }
  return { type: inner['type'], id: inner['id'] };
}

const uidKey = (u: EntityUid): string => `${u.type}::${JSON.stringify(u.id)}`;

/**
 * Compiles a policy set and grants against the shipped schema, or refuses them. Everything an
 * operator applies and every version a replica receives goes through here, so nothing that
 * fails validation ever decides (security catalogue case 45).
 */
export class PolicyCompiler {
  constructor(readonly schema: string) {
    const parsed = checkParseSchema(schema);
    if (parsed.type !== 'success') throw new TypeError(`the shipped Cedar schema does not parse: ${describeCedarErrors(parsed.errors)}`);
  }

  /** @throws AeseError INVALID_INPUT with Cedar's diagnostics, bounded. */
  compile(policiesText: string, entitiesJson: string): PolicyBundle {
    if (Buffer.byteLength(policiesText) > LIMITS.maxPoliciesBytes) throw invalid(`policies exceed ${LIMITS.maxPoliciesBytes} bytes`);
    if (Buffer.byteLength(entitiesJson) > LIMITS.maxEntitiesBytes) throw invalid(`entities_json exceeds ${LIMITS.maxEntitiesBytes} bytes`);
    const { policies, forbids } = this.compilePolicies(policiesText);
    const entities = this.parseEntities(entitiesJson);
    return { policiesText, policies, forbids, entities, applications: indexApplications(entities) };
  }

  private compilePolicies(text: string): Pick<PolicyBundle, 'policies' | 'forbids'> {
    if (text.trim().length === 0) throw invalid('policies are required (a policy set that denies everything still needs a policy)');
    const parts = policySetTextToParts(text);
    if (parts.type !== 'success') throw invalid(`policies do not parse: ${describeCedarErrors(parts.errors)}`);
    if (parts.policy_templates.length > 0) throw invalid('policy templates are not supported: grants are entity data');
    if (parts.policies.length === 0) throw invalid('policies are required');
    if (parts.policies.length > LIMITS.maxPolicies) throw invalid(`at most ${LIMITS.maxPolicies} policies`);
    const policies: Record<string, string> = {};
    const forbids = new Map<string, string | undefined>();
    for (const policy of parts.policies) {
      const json = policyToJson(policy);
      if (json.type !== 'success') throw invalid(`a policy does not parse: ${describeCedarErrors(json.errors)}`);
      const annotations = json.json.annotations ?? {};
      const id = annotations['id'];
      if (id === undefined || !POLICY_ID.test(id)) {
        throw invalid('every policy needs an @id("...") annotation of 1-64 characters [A-Za-z0-9._-]');
      }
      if (Object.hasOwn(policies, id)) throw invalid(`duplicate policy @id ${JSON.stringify(id)}`);
      const cause = annotations['denyCause'];
      if (cause !== undefined) {
        if (json.json.effect !== 'forbid') throw invalid(`policy ${id}: @denyCause belongs on forbid policies`);
        if (!isDenyCause(cause)) throw invalid(`policy ${id}: @denyCause must be an upper-case code [A-Z0-9_]`);
      }
      policies[id] = policy;
      if (json.json.effect === 'forbid') forbids.set(id, cause);
    }
    const checked = validate({ schema: this.schema, policies: { staticPolicies: policies }, validationSettings: { mode: 'strict' } });
    if (checked.type !== 'success') throw invalid(`policies cannot be validated: ${describeCedarErrors(checked.errors)}`);
    if (checked.validationErrors.length > 0) {
      throw invalid(
        `policies fail schema validation: ${describeCedarErrors(checked.validationErrors.map(e => ({ message: `${e.policyId}: ${e.error.message}`, help: e.error.help })))}`,
      );
    }
    return { policies, forbids };
  }

  private parseEntities(text: string): EntityJson[] {
    let value: unknown;
    try {
      value = JSON.parse(text) as unknown;
    } catch {
      throw invalid('entities_json is not valid JSON');
    }
    if (!Array.isArray(value)) throw invalid('entities_json must be a JSON array of Cedar entities');
    if (value.length > LIMITS.maxEntities) throw invalid(`at most ${LIMITS.maxEntities} entities`);
    const entities = value as EntityJson[];
    const parsed = checkParseEntities({ entities, schema: this.schema });
    if (parsed.type !== 'success') throw invalid(`entities do not conform to the schema: ${describeCedarErrors(parsed.errors)}`);
    return entities;
  }
}

function grantOf(scsAsId: string, api: string, value: unknown): ApiGrant {
  const where = `grant ${api} of ${scsAsId}`;
  // A misspelt or unserved API would grant nothing and fail closed silently: name it instead.
  if (!isT8Scope(api)) {
    throw invalid(`${where}: the tag must name a T8 API this SCEF serves (served: ${SERVED_T8_APIS.join(', ')})`);
  }
  if (!isRecord(value)) throw invalid(`${where} must be a record`);
  // Types were checked against the schema; what the schema cannot say is checked here.
  const strings = (field: string): string[] => (Array.isArray(value[field]) ? (value[field] as string[]) : []);
  for (const op of strings('operations')) {
    if (!(OPERATIONS as readonly string[]).includes(op)) throw invalid(`${where}: unknown operation ${JSON.stringify(op)}`);
  }
  for (const field of ['categories', 'encryptCategories']) {
    for (const c of strings(field)) if (!isName(c)) throw invalid(`${where}: ${field} must be names [a-z0-9-]`);
  }
  strings('targets').forEach((t, i) => assertTarget(t, `${where}: targets[${i}]`));
  const granularity = value['locationGranularity'];
  if (granularity !== undefined && !(LOCATION_GRANULARITIES as readonly unknown[]).includes(granularity)) {
    throw invalid(`${where}: locationGranularity must be one of ${LOCATION_GRANULARITIES.join(', ')}`);
  }
  return {
    json: value,
    targets: new Set(strings('targets')),
    encryptCategories: new Set(strings('encryptCategories')),
    locationGranularity: granularity as LocationGranularity | undefined,
  };
}

function indexApplications(entities: readonly EntityJson[]): Map<string, ApplicationGrants> {
  const byUid = new Map<string, EntityJson>();
  for (const [i, e] of entities.entries()) {
    const uid = uidOf(e.uid, `entities[${i}].uid`);
    if (uid.type !== ENTITY_TYPES.application && uid.type !== ENTITY_TYPES.applicationGroup) {
      throw invalid(`entities[${i}]: grants hold ${ENTITY_TYPES.application} and ${ENTITY_TYPES.applicationGroup} entities only`);
    }
    if (uid.id.length === 0 || uid.id.length > ENTITY_ID_MAX) throw invalid(`entities[${i}]: the id must be 1-${ENTITY_ID_MAX} characters`);
    if (uid.type === ENTITY_TYPES.application && !isScsAsId(uid.id)) {
      throw invalid(`entities[${i}]: an Application id is an scsAsId, 1-${LIMITS.maxScsAsIdLength} characters of [A-Za-z0-9._-]`);
    }
    if (byUid.has(uidKey(uid))) throw invalid(`entities[${i}]: duplicate entity ${uid.type} ${JSON.stringify(uid.id)}`);
    byUid.set(uidKey(uid), e);
  }
  const ancestorsOf = (start: readonly EntityUid[]): EntityJson[] => {
    const seen = new Set<string>();
    const out: EntityJson[] = [];
    const queue = [...start];
    while (queue.length > 0) {
      const uid = queue.shift()!;
      const key = uidKey(uid);
      if (seen.has(key)) continue;
      seen.add(key);
      const entity = byUid.get(key);
      if (!entity) continue; // a parent that is not listed has no attributes and no parents
      out.push(entity);
      queue.push(...(entity.parents ?? []).map((p, j) => uidOf(p, `parents[${j}] of ${uid.type} ${JSON.stringify(uid.id)}`)));
    }
    return out;
  };
  const applications = new Map<string, ApplicationGrants>();
  for (const e of byUid.values()) {
    const uid = uidOf(e.uid, 'uid');
    if (uid.type !== ENTITY_TYPES.application) continue;
    const tags = isRecord(e.tags) ? e.tags : {};
    const apis = Object.keys(tags);
    if (apis.length > LIMITS.maxGrantsPerApplication) throw invalid(`${uid.id}: at most ${LIMITS.maxGrantsPerApplication} API grants`);
    const attrs = isRecord(e.attrs) ? e.attrs : {};
    const rate = attrs['rateLimitPerSecond'];
    if (rate !== undefined && (typeof rate !== 'number' || !Number.isInteger(rate) || rate < 1 || rate > LIMITS.maxRateLimitPerSecond)) {
      throw invalid(`${uid.id}: rateLimitPerSecond must be an integer in [1, ${LIMITS.maxRateLimitPerSecond}]`);
    }
    const parents = (e.parents ?? []).map((p, j) => uidOf(p, `parents[${j}] of ${uid.id}`));
    applications.set(uid.id, {
      scsAsId: uid.id,
      attrs,
      parents,
      grants: new Map(apis.map(api => [api, grantOf(uid.id, api, tags[api])])),
      ancestors: ancestorsOf(parents),
      rateLimitPerSecond: rate,
    });
  }
  return applications;
}
