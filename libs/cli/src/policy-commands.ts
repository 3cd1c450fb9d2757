import { readFileSync, statSync } from 'node:fs';
import { extname } from 'node:path';
import { AeseError } from '@aese/errors';
import { createMeshClient } from '@aese/grpc-client';
import { OPERATOR_NAME, pkiLayout, readMeshTlsMaterial, spiffeId } from '@aese/pki';
import { AuthorizationServiceClient } from '@aese/protos/authorization/v1';
import type { ApplyPoliciesRequest, ApplyPoliciesResponse, GetPoliciesRequest, GetPoliciesResponse } from '@aese/protos/authorization/v1';
import { parseCommandArgs } from './args.js';
import { EXIT_OK, UsageError } from './errors.js';
import { formatTable } from './output.js';
import { GRANT_COLUMNS, grantCells, grantRows } from './grants.js';

/**
 * The authorization service's admin RPCs as the policy commands use them. A mesh client of
 * `AuthorizationServiceClient` (see {@link connectPolicyAdmin}) is one; tests may pass another.
 */
export interface PolicyAdminClient {
  applyPolicies(request: ApplyPoliciesRequest): Promise<ApplyPoliciesResponse>;
  getPolicies(request: GetPoliciesRequest): Promise<GetPoliciesResponse>;
}

/** What the policy commands need: the admin client, where output goes, how files are read. */
export interface PolicyCommandDeps {
  readonly client: PolicyAdminClient;
  readonly stdout: (text: string) => void;
  /** Reads a file named on the command line; the default is a size-bounded read from disk. */
  readonly readFile?: (path: string) => string;
}

/** Options of {@link connectPolicyAdmin}. */
export interface PolicyAdminOptions {
  /** host:port of the authorization service; the host must be in its certificate. */
  readonly address: string;
  readonly stateDir: string;
  readonly trustDomain: string;
  readonly deadlineMs?: number;
}

/** Largest policy or grants file the commands read: above the service's own caps, bounded. */
export const MAX_POLICY_FILE_BYTES = 1024 * 1024;

/** Usage lines of the policy commands, for the CLI's help text. */
export const POLICY_USAGE = `  aese policy show [--json | --grants | --policies | --schema]
      Show the current policy version: a table of the per-AS grants, or with --grants the
      grants file (Cedar entity JSON, ready to edit and apply), --policies the Cedar policy set,
      --schema the schema both are validated against, --json all of it.
  aese policy apply <file> [<file>] [--expected-version <n>]
      Validate and apply a new policy version. A .cedar file replaces the policy set, a JSON
      array replaces the grants, a JSON object {"policies", "entities"} (as 'policy show --json'
      prints) replaces both; what is not given is kept. The change is refused if the version
      changed since it was read (or is not <n>); 0 skips that check.
`;

/**
 * Connects to the authorization service's admin RPCs with the operator's certificate
 * (`spiffe://<td>/operator/admin`, the only identity on their allow-list); the server must
 * prove it is `spiffe://<td>/svc/authorization`. Close it after use.
 */
export function connectPolicyAdmin(options: PolicyAdminOptions): PolicyAdminClient & { close(): void } {
  return createMeshClient(AuthorizationServiceClient, {
    address: options.address,
    tls: readMeshTlsMaterial(pkiLayout(options.stateDir), OPERATOR_NAME),
    serverId: spiffeId(options.trustDomain, 'svc', 'authorization'),
    ...(options.deadlineMs ? { deadlineMs: options.deadlineMs } : {}),
  });
}

function readBounded(path: string): string {
  let size: number;
  try {
    size = statSync(path).size;
  } catch {
    throw new AeseError('NOT_FOUND', `cannot read ${path}`);
  }
  if (size > MAX_POLICY_FILE_BYTES) throw new AeseError('INVALID_INPUT', `${path} is larger than ${MAX_POLICY_FILE_BYTES} bytes`);
  return readFileSync(path, 'utf8');
}

/** What one file given to `policy apply` replaces. */
interface PolicyChange {
  policies?: string;
  entitiesJson?: string;
}

function classify(path: string, text: string): PolicyChange {
  if (extname(path).toLowerCase() === '.cedar') return { policies: text };
  let value: unknown;
  try {
    value = JSON.parse(text) as unknown;
  } catch {
    throw new AeseError('INVALID_INPUT', `${path} is neither a .cedar policy file nor valid JSON`);
  }
  if (Array.isArray(value)) return { entitiesJson: text };
  if (typeof value === 'object' && value !== null) {
    const bundle = value as Record<string, unknown>;
    if (typeof bundle['policies'] === 'string' && Array.isArray(bundle['entities'])) {
      return { policies: bundle['policies'], entitiesJson: `${JSON.stringify(bundle['entities'], null, 2)}\n` };
    }
  }
  throw new AeseError('INVALID_INPUT', `${path}: expected a JSON array of Cedar entities or an object {"policies": "...", "entities": [...]}`);
}

export function expectedVersionOf(raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  if (!/^(0|[1-9][0-9]{0,14})$/.test(raw)) throw new UsageError(`--expected-version must be a version number, got ${JSON.stringify(raw)}`);
  return Number(raw);
}

function countEntities(entitiesJson: string): number {
  try {
    const v = JSON.parse(entitiesJson) as unknown;
    return Array.isArray(v) ? v.length : 0;
  } catch {
    return 0;
  }
}

/**
 * `aese policy apply <file> [<file>] [--expected-version <n>]`: reads the current version,
 * replaces what the files give, and applies the result based on the version read, so two
 * operators editing at once cannot overwrite each other silently (the second gets
 * FAILED_PRECONDITION). The service validates everything against the schema; nothing invalid
 * becomes current.
 *
 * @returns the exit status; failures are thrown for the CLI to print on one line.
 */
export async function policyApply(args: readonly string[], deps: PolicyCommandDeps): Promise<number> {
  const { values, positionals } = parseCommandArgs(args, { 'expected-version': { type: 'string' } });
  if (positionals.length === 0) throw new UsageError('policy apply needs a .cedar policy file, a grants JSON file, or both');
  if (positionals.length > 2) throw new UsageError(`policy apply takes at most two files, got ${positionals.length}`);
  const expected = expectedVersionOf(values['expected-version']);
  const read = deps.readFile ?? readBounded;
  const change: PolicyChange = {};
  for (const path of positionals) {
    const part = classify(path, read(path));
    if ((part.policies !== undefined && change.policies !== undefined) || (part.entitiesJson !== undefined && change.entitiesJson !== undefined)) {
      throw new UsageError('policy apply: two files replace the same part (policies or grants)');
    }
    Object.assign(change, part);
  }
  const current = await deps.client.getPolicies({});
  if (current.version === 0 && (change.policies === undefined || change.entitiesJson === undefined)) {
    throw new AeseError('FAILED_PRECONDITION', 'no policy version is in force: give both the .cedar policy file and the grants file');
  }
  const policies = change.policies ?? current.policies;
  const entitiesJson = change.entitiesJson ?? current.entitiesJson;
  const { version } = await deps.client.applyPolicies({ policies, entitiesJson, expectedVersion: expected ?? current.version });
  const replaced = [change.policies !== undefined ? 'policies' : '', change.entitiesJson !== undefined ? 'grants' : ''].filter(Boolean).join(' and ');
  deps.stdout(`applied policy version ${version} (replaced the ${replaced}; ${countEntities(entitiesJson)} entities; was version ${current.version})\n`);
  return EXIT_OK;
}

/**
 * `aese policy show [--json | --grants | --policies | --schema]`: the version deciding on the
 * authorization replica that answered.
 */
export async function policyShow(args: readonly string[], deps: PolicyCommandDeps): Promise<number> {
  const { values, positionals } = parseCommandArgs(args, {
    json: { type: 'boolean' },
    grants: { type: 'boolean' },
    policies: { type: 'boolean' },
    schema: { type: 'boolean' },
  });
  if (positionals.length > 0) throw new UsageError(`policy show takes no argument ${JSON.stringify(positionals[0])}`);
  const chosen = (['json', 'grants', 'policies', 'schema'] as const).filter(k => values[k] === true);
  if (chosen.length > 1) throw new UsageError(`policy show: choose one of --${chosen.join(', --')}`);
  const p = await deps.client.getPolicies({});
  const appliedAt = p.version === 0 ? 'never' : new Date(p.appliedAtMs).toISOString();
  const withNewline = (s: string): string => (s.endsWith('\n') ? s : `${s}\n`);
  switch (chosen[0]) {
    case 'json': {
      let entities: unknown;
      try {
        entities = JSON.parse(p.entitiesJson) as unknown;
      } catch {
        entities = p.entitiesJson;
      }
      deps.stdout(`${JSON.stringify({ version: p.version, appliedAt, policies: p.policies, entities, schema: p.schema }, null, 2)}\n`);
      break;
    }
    case 'grants':
      deps.stdout(withNewline(p.entitiesJson));
      break;
    case 'policies':
      deps.stdout(withNewline(p.policies));
      break;
    case 'schema':
      deps.stdout(withNewline(p.schema));
      break;
    default: {
      const rows = grantRows(p.entitiesJson);
      const table = rows.length === 0 ? 'no SCS/AS has a grant\n' : formatTable(GRANT_COLUMNS, rows.map(grantCells));
      const header = p.version === 0 ? 'no policy version is in force: every decision is refused\n' : `policy version ${p.version}, applied ${appliedAt}\n`;
      deps.stdout(`${header}${table}`);
    }
  }
  return EXIT_OK;
}
