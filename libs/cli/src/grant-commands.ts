/**
 * `aese policy grant` and `aese policy withdraw`: edit one AS's grants without writing JSON.
 * Each reads the policy version in force, edits its grants and applies the result based on the
 * version read, so a change made in between is refused rather than overwritten.
 */
import { AeseError } from '@aese/errors';
import { isValidIdentityName } from '@aese/pki';
import { DEFAULT_LOCATION_GRANULARITY, isT8Scope, LOCATION_GRANULARITIES, OPERATIONS, T8_SCOPES, targetSyntaxError } from '@aese/t8-catalog';
import { parseCommandArgs } from './args.js';
import { CLI_NAME, EXIT_OK, UsageError } from './errors.js';
import { GRANT_COLUMNS, grantCells, grantRows, setGrant, withdrawGrants } from './grants.js';
import type { ApiGrantSpec } from './grants.js';
import { formatTable } from './output.js';
import { expectedVersionOf } from './policy-commands.js';
import type { PolicyCommandDeps } from './policy-commands.js';

export const GRANT_USAGE = `  aese policy grant <scsAsId> --api <scope> --category <category>...
                  (--target <kind:value>... | --any-target) [--operation <op>]...
                  [--encrypt <category>]... [--location-granularity exact|cell|ta]
                  [--rate-limit <perSecond>] [--expected-version <n>]
      Add or replace the AS's grant for one API (docs/grants.md): the data categories it may
      reach, the UEs, groups and applications (externalId:, msisdn:, externalGroupId:,
      externalAppId:) or any target, the
      operations (default: all of ${OPERATIONS.join(' ')}), the categories whose answers are
      encrypted to the AS, how precise locations are (default ${DEFAULT_LOCATION_GRANULARITY}) and the
      AS's rate limit. Prints what the AS is now granted.
  aese policy withdraw <scsAsId> [--api <scope>] [--expected-version <n>]
      Remove the AS's grant for one API, or all of its grants. Prints what is left.
`;

/** What the grant command checks a grant against; both are optional (tests, partial stacks). */
export interface GrantCheckDeps {
  /** The served APIs with their data categories (capability-exposure ListApis). */
  readonly servedApis?: () => Promise<readonly { readonly name: string; readonly dataCategories: readonly string[] }[]>;
  /** The scopes the AS is registered with, or undefined when it is not onboarded. */
  readonly registeredScopes?: (scsAsId: string) => Promise<readonly string[] | undefined>;
}

export type GrantCommandDeps = PolicyCommandDeps & GrantCheckDeps;

function scsAsIdOf(positionals: readonly string[], command: string): string {
  if (positionals.length !== 1) throw new UsageError(`${command} needs one scsAsId`);
  const id = positionals[0];
  if (!isValidIdentityName(id)) throw new UsageError(`invalid scsAsId ${JSON.stringify(id)}: expected 1-64 characters of [A-Za-z0-9._-]`);
  return id;
}

/** Checks an API name: a served T8 API, or a clear word on why not. */
export function assertServedApi(api: string): void {
  if (isT8Scope(api)) return;
  const served = T8_SCOPES.join(', ');
  throw new UsageError(`unknown API ${JSON.stringify(api)}; served: ${served}`);
}

function targetsOf(raw: readonly string[]): string[] {
  for (const t of raw) {
    // The rules the authorization service applies, so a refusal comes before any change is made.
    const problem = targetSyntaxError(t);
    if (problem !== undefined) throw new UsageError(`--target ${problem} (see '${CLI_NAME} network list')`);
  }
  return [...new Set(raw)];
}

function rateOf(raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  if (!/^[1-9][0-9]{0,6}$/.test(raw) || Number(raw) > 1_000_000) throw new UsageError('--rate-limit must be a whole number of requests per second, 1-1000000');
  return Number(raw);
}

/** The AS's grants as a table, or a plain sentence when it has none. */
export function describeGrantsOf(entitiesJson: string, scsAsId: string): string {
  const rows = grantRows(entitiesJson, scsAsId);
  if (rows.length === 0) return `${scsAsId} has no grant: every T8 request it makes is refused\n`;
  return formatTable([...GRANT_COLUMNS], rows.map(grantCells));
}

/** The exact grant command an operator would run to grant an AS its first API. */
export function grantHint(scsAsId: string, api: string): string {
  return `${CLI_NAME} policy grant ${scsAsId} --api ${api} --category <category>... --target <kind:value>... (or --any-target)`;
}

async function checkCategories(deps: GrantCheckDeps, api: string, categories: readonly string[]): Promise<void> {
  if (!deps.servedApis) return;
  const module = (await deps.servedApis()).find(m => m.name === api);
  if (!module) throw new AeseError('FAILED_PRECONDITION', `capability-exposure does not serve ${api}`);
  const unknown = categories.filter(c => !module.dataCategories.includes(c));
  if (unknown.length > 0) {
    throw new UsageError(`${api} has no data category ${unknown.join(', ')}; its categories: ${module.dataCategories.join(', ')}`);
  }
}

/** A note when the AS's registration would not let it use the API (no token scope for it). */
async function scopeNote(deps: GrantCheckDeps, scsAsId: string, api: string): Promise<string> {
  if (!deps.registeredScopes) return '';
  const scopes = await deps.registeredScopes(scsAsId);
  if (scopes === undefined) return `note: ${scsAsId} is not onboarded yet ('${CLI_NAME} as onboard ${scsAsId} --scope ${api} ...')\n`;
  if (!scopes.includes(api)) {
    return `note: ${scsAsId} is registered for ${scopes.join(', ') || 'no scope'}, not ${api}: its tokens cannot carry that scope until it is onboarded again with --scope ${api}\n`;
  }
  return '';
}

export async function policyGrant(args: readonly string[], deps: GrantCommandDeps): Promise<number> {
  const { values, positionals } = parseCommandArgs(args, {
    api: { type: 'string' },
    category: { type: 'string', multiple: true },
    target: { type: 'string', multiple: true },
    'any-target': { type: 'boolean' },
    operation: { type: 'string', multiple: true },
    encrypt: { type: 'string', multiple: true },
    'location-granularity': { type: 'string' },
    'rate-limit': { type: 'string' },
    'expected-version': { type: 'string' },
  });
  const scsAsId = scsAsIdOf(positionals, 'policy grant');
  const api = values.api;
  if (api === undefined) throw new UsageError('policy grant needs --api <scope>');
  assertServedApi(api);
  const categories = [...new Set(values.category ?? [])];
  if (categories.length === 0) throw new UsageError('policy grant needs at least one --category');
  const anyTarget = values['any-target'] === true;
  const targets = targetsOf(values.target ?? []);
  if (anyTarget === targets.length > 0) throw new UsageError('policy grant needs --target <kind:value>... or --any-target (not both)');
  const operations = [...new Set(values.operation ?? OPERATIONS)];
  for (const op of operations) {
    if (!(OPERATIONS as readonly string[]).includes(op)) throw new UsageError(`--operation must be one of ${OPERATIONS.join(', ')}`);
  }
  const encryptCategories = [...new Set(values.encrypt ?? [])];
  const notGranted = encryptCategories.filter(c => !categories.includes(c));
  if (notGranted.length > 0) throw new UsageError(`--encrypt names ${notGranted.join(', ')}, which --category does not grant`);
  const granularity = values['location-granularity'];
  if (granularity !== undefined && !(LOCATION_GRANULARITIES as readonly string[]).includes(granularity)) {
    throw new UsageError(`--location-granularity must be one of ${LOCATION_GRANULARITIES.join(', ')}`);
  }
  const rate = rateOf(values['rate-limit']);
  const expected = expectedVersionOf(values['expected-version']);
  await checkCategories(deps, api, categories);

  const grant: ApiGrantSpec = {
    operations,
    categories,
    targets,
    anyTarget,
    encryptCategories,
    ...(granularity !== undefined ? { locationGranularity: granularity as ApiGrantSpec['locationGranularity'] } : {}),
  };
  const current = await deps.client.getPolicies({});
  if (current.version === 0) {
    throw new AeseError('FAILED_PRECONDITION', `no policy version is in force: apply a policy set first ('${CLI_NAME} policy apply <policies.cedar> <grants.json>')`);
  }
  const entitiesJson = setGrant(current.entitiesJson, scsAsId, api, grant, rate);
  const { version } = await deps.client.applyPolicies({ policies: current.policies, entitiesJson, expectedVersion: expected ?? current.version });
  deps.stdout(
    `granted ${api} to ${scsAsId}: policy version ${version} (was ${current.version})\n` +
      (rate !== undefined ? `rate limit of ${scsAsId}: ${rate} requests/s over all its APIs\n` : '') +
      describeGrantsOf(entitiesJson, scsAsId) +
      (await scopeNote(deps, scsAsId, api)),
  );
  return EXIT_OK;
}

export async function policyWithdraw(args: readonly string[], deps: PolicyCommandDeps): Promise<number> {
  const { values, positionals } = parseCommandArgs(args, { api: { type: 'string' }, 'expected-version': { type: 'string' } });
  const scsAsId = scsAsIdOf(positionals, 'policy withdraw');
  const api = values.api;
  const expected = expectedVersionOf(values['expected-version']);
  const current = await deps.client.getPolicies({});
  const { entitiesJson, removed } = withdrawGrants(current.entitiesJson, scsAsId, api);
  if (removed.length === 0) {
    throw new AeseError('NOT_FOUND', api === undefined ? `${scsAsId} has no grant; nothing changed` : `${scsAsId} has no grant for ${api}; nothing changed`);
  }
  const { version } = await deps.client.applyPolicies({ policies: current.policies, entitiesJson, expectedVersion: expected ?? current.version });
  deps.stdout(`withdrew ${removed.join(', ')} from ${scsAsId}: policy version ${version} (was ${current.version})\n${describeGrantsOf(entitiesJson, scsAsId)}`);
  return EXIT_OK;
}
