/**
 * Edits of the grants (Cedar entity JSON, docs/grants.md) that `aese policy grant` and
 * `aese policy withdraw` make, and the rows `policy show` and onboarding print. Pure functions
 * over the JSON text: the authorization service validates the result against its schema.
 */
import { AeseError } from '@aese/errors';
import { DEFAULT_LOCATION_GRANULARITY } from '@aese/t8-catalog';
import type { LocationGranularity } from '@aese/t8-catalog';

/** Cedar entity type of an AS (id = scsAsId). */
export const APPLICATION_TYPE = 'Aese::Application';

/** One API grant: the value of the Application tag named after the API. */
export interface ApiGrantSpec {
  readonly operations: readonly string[];
  readonly categories: readonly string[];
  readonly targets: readonly string[];
  readonly anyTarget: boolean;
  readonly encryptCategories?: readonly string[];
  readonly locationGranularity?: LocationGranularity;
}

type Entity = { uid?: { type?: unknown; id?: unknown }; attrs?: Record<string, unknown>; parents?: unknown[]; tags?: Record<string, unknown> };

function parseEntities(entitiesJson: string): Entity[] {
  let value: unknown;
  try {
    value = JSON.parse(entitiesJson) as unknown;
  } catch {
    throw new AeseError('INTERNAL', 'the grants in force are not valid JSON');
  }
  if (!Array.isArray(value)) throw new AeseError('INTERNAL', 'the grants in force are not a JSON array');
  return value as Entity[];
}

const isApplication = (e: Entity, scsAsId?: string): boolean => e.uid?.type === APPLICATION_TYPE && (scsAsId === undefined || e.uid?.id === scsAsId);

const serialize = (entities: readonly Entity[]): string => `${JSON.stringify(entities, null, 2)}\n`;

/**
 * Adds or replaces the grant of one AS for one API; with `rateLimitPerSecond`, also sets the
 * AS's rate limit (it covers all of its APIs). An AS without an entity gets one.
 */
export function setGrant(entitiesJson: string, scsAsId: string, api: string, grant: ApiGrantSpec, rateLimitPerSecond?: number): string {
  const entities = parseEntities(entitiesJson);
  let app = entities.find(e => isApplication(e, scsAsId));
  if (!app) {
    app = { uid: { type: APPLICATION_TYPE, id: scsAsId }, attrs: {}, parents: [], tags: {} };
    entities.push(app);
  }
  const tag: Record<string, unknown> = {
    operations: [...grant.operations],
    categories: [...grant.categories],
    targets: [...grant.targets],
    anyTarget: grant.anyTarget,
  };
  if (grant.encryptCategories && grant.encryptCategories.length > 0) tag['encryptCategories'] = [...grant.encryptCategories];
  if (grant.locationGranularity !== undefined) tag['locationGranularity'] = grant.locationGranularity;
  app.tags = { ...(app.tags ?? {}), [api]: tag };
  if (rateLimitPerSecond !== undefined) app.attrs = { ...(app.attrs ?? {}), rateLimitPerSecond };
  return serialize(entities);
}

/**
 * Removes one API's grant of an AS, or all of its grants (its entity, groups and attributes stay).
 *
 * @returns the new grants and the APIs whose grant was removed (none: nothing changed).
 */
export function withdrawGrants(entitiesJson: string, scsAsId: string, api?: string): { entitiesJson: string; removed: string[] } {
  const entities = parseEntities(entitiesJson);
  const app = entities.find(e => isApplication(e, scsAsId));
  const tags = app?.tags ?? {};
  const removed = Object.keys(tags)
    .filter(a => api === undefined || a === api)
    .sort();
  if (app && removed.length > 0) app.tags = Object.fromEntries(Object.entries(tags).filter(([a]) => !removed.includes(a)));
  return { entitiesJson: serialize(entities), removed };
}

/** One row of a grants table: one API grant of one AS. */
export interface GrantRow {
  readonly scsAsId: string;
  readonly api: string;
  readonly operations: string;
  readonly categories: string;
  readonly targets: string;
  readonly obligations: string;
}

const list = (v: unknown): string[] => (Array.isArray(v) ? v.map(String) : []);

/**
 * The grants as table rows, one per AS and API (an AS without any grant: one row of dashes),
 * sorted; only `scsAsId`'s when given. Targets are counted, not listed: terminals and their
 * scrollback are logs too.
 */
export function grantRows(entitiesJson: string, scsAsId?: string): GrantRow[] {
  let entities: Entity[];
  try {
    entities = parseEntities(entitiesJson);
  } catch {
    return [];
  }
  const rows: GrantRow[] = [];
  for (const e of entities) {
    if (!isApplication(e, scsAsId)) continue;
    const id = String(e.uid?.id);
    const rate = e.attrs?.['rateLimitPerSecond'];
    const tags = (e.tags ?? {}) as Record<string, Record<string, unknown>>;
    const apis = Object.keys(tags).sort();
    if (apis.length === 0 && scsAsId === undefined) rows.push({ scsAsId: id, api: '-', operations: '-', categories: '-', targets: '-', obligations: '-' });
    for (const api of apis) {
      const g = tags[api] ?? {};
      const duties = [
        list(g['encryptCategories']).length > 0 ? `encrypt:${list(g['encryptCategories']).join('+')}` : '',
        `location:${typeof g['locationGranularity'] === 'string' ? g['locationGranularity'] : DEFAULT_LOCATION_GRANULARITY}`,
        typeof rate === 'number' ? `rate:${rate}/s` : '',
      ].filter(Boolean);
      rows.push({
        scsAsId: id,
        api,
        operations: list(g['operations']).join(','),
        categories: list(g['categories']).join(','),
        targets: g['anyTarget'] === true ? 'any' : String(list(g['targets']).length),
        obligations: duties.join(' '),
      });
    }
  }
  return rows.sort((a, b) => a.scsAsId.localeCompare(b.scsAsId) || a.api.localeCompare(b.api));
}

/** The table header of {@link grantRows}. */
export const GRANT_COLUMNS = ['SCS_AS_ID', 'API', 'OPERATIONS', 'CATEGORIES', 'TARGETS', 'OBLIGATIONS'] as const;

export const grantCells = (r: GrantRow): string[] => [r.scsAsId, r.api, r.operations, r.categories, r.targets, r.obligations];
