import type { Env } from '@aese/config';
import { AeseError } from '@aese/errors';
import { isValidIdentityName, isValidTrustDomain, pkiLayout, readPkiMetadata } from '@aese/pki';
import { DEFAULT_TRUST_DOMAIN, MESH_ENDPOINTS } from '@aese/runtime';
import { T8_SCOPES } from '@aese/t8-catalog';
import { connectAuthenticationRegistry } from './authentication-registry.js';
import type { AuthenticationRegistryOptions } from './authentication-registry.js';
import { noPositionals, parseCommandArgs } from './args.js';
import { CLI_NAME, describeFailure, EXIT_FAILURE, EXIT_OK, EXIT_USAGE, UsageError } from './errors.js';
import {
  assertBundleFolderFree,
  BUNDLE_FILES,
  DEFAULT_BUNDLE_FOLDER,
  isInsideRepository,
  createAsCredentials,
  registrationOf,
  validateOnboardRequest,
  writeBundle,
} from './onboard.js';
import type { AsConfigFile } from './onboard.js';
import { formatTable } from './output.js';
import { connectPolicyAdmin, POLICY_USAGE, policyApply, policyShow } from './policy-commands.js';
import { describeGrantsOf, GRANT_USAGE, grantHint, policyGrant, policyWithdraw } from './grant-commands.js';
import type { GrantCheckDeps } from './grant-commands.js';
import { grantRows } from './grants.js';
import { NETWORK_USAGE, networkList, operatorCapabilityExposureClient } from './network-commands.js';
import type { NetworkAdminClient } from './network-commands.js';
import type { PolicyAdminClient, PolicyAdminOptions, PolicyCommandDeps } from './policy-commands.js';
import type { AsRegistry, RegisteredAs, RevocationTarget } from './registry.js';
import { auditCommand, auditTail, auditVerify, AUDIT_USAGE } from './audit-commands.js';
import { BENCH_COMMANDS, BENCH_USAGE } from './bench-commands.js';
import { keysCommand, keysList, keysRotate, KEYS_USAGE } from './keys-commands.js';
import { CLI_SETTINGS, DEFAULT_EDGE_URL, existingPkiTrustDomain, loadCliConfig, resolveTrustDomain, tokenEndpointOf } from './settings.js';
import type { CliConfig } from './settings.js';
import { prepareState } from './state.js';

/** Where a command's output goes and what environment it reads. */
export interface CliIo {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
  readonly env: Env;
}

/** Replaceable dependencies; the defaults are the real ones. */
export interface CliDeps {
  readonly connectRegistry?: (options: AuthenticationRegistryOptions) => AsRegistry;
  readonly connectPolicyAdmin?: (options: PolicyAdminOptions) => PolicyAdminClient & { close(): void };
  readonly connectCapabilityExposure?: (config: CliConfig) => ServedApisClient & NetworkAdminClient & { close(): void };
}

/** The capability-exposure RPC that lists the served APIs. */
interface ServedApisClient {
  listApis(request: Record<string, never>): Promise<{ apis: { name: string; dataCategories: string[] }[] }>;
}

/** The usage text: every command, option and setting, with the defaults the code uses. */
export function usage(): string {
  const s = CLI_SETTINGS;
  return `${CLI_NAME}: operator CLI of the AESE secure SCEF

Usage:
  ${CLI_NAME} pki init [--trust-domain <td>] [--hostname <name>]...
      Create the operator PKI and the crypto key-encryption key in the state folder.
      Idempotent. --hostname names the edge's T8 certificate (default: localhost).
  ${CLI_NAME} as onboard <scsAsId> --scope <scope> [--scope <scope>]... [--out <dir>]
                  [--signature-profile required|optional]
      Issue an AS client certificate, request-signing and encryption keys, register the AS
      with the authentication service and write its bundle into <dir> (default:
      ~/${DEFAULT_BUNDLE_FOLDER}/<scsAsId>): ${Object.values(BUNDLE_FILES).join(', ')}.
      Prints what the AS is granted. A revoked scsAsId is refused (revocation is permanent).
  ${CLI_NAME} as list [--json]
      List the onboarded ASes.
  ${CLI_NAME} as suspend <scsAsId>
      Suspend an AS: its tokens stop verifying and it gets no new ones.
  ${CLI_NAME} as revoke <scsAsId> [--reason <text>]
  ${CLI_NAME} cert revoke <thumbprint> [--reason <text>]
  ${CLI_NAME} token revoke <jti> [--reason <text>]
      Revoke an AS, a certificate (x5t#S256) or a token at every replica of every service:
      requests are refused and the identity's open connections are closed within a second.
${POLICY_USAGE.trimEnd()}
${GRANT_USAGE.trimEnd()}
${NETWORK_USAGE.trimEnd()}
${KEYS_USAGE.trimEnd()}
${AUDIT_USAGE.trimEnd()}
${BENCH_USAGE.trimEnd()}
  ${CLI_NAME} help

T8 scopes (one per API this SCEF serves):
${wrap(T8_SCOPES, 6, 96)}

Settings (environment):
  ${s.stateDir.env.padEnd(25)} state folder (default: .state in the repository)
  ${s.trustDomain.env.padEnd(25)} SPIFFE trust domain (default: the PKI's, else ${DEFAULT_TRUST_DOMAIN})
  Unset addresses, edge URL and NATS are those of the stack npm start runs from the state
  folder (<state>/stack.json), else the defaults below.
  ${s.authenticationAddr.env.padEnd(25)} authentication service (default: localhost:${MESH_ENDPOINTS.authentication.port})
  ${s.authorizationAddr.env.padEnd(25)} authorization service (default: localhost:${MESH_ENDPOINTS.authorization.port})
  ${s.cryptoAddr.env.padEnd(25)} crypto service (default: localhost:${MESH_ENDPOINTS.crypto.port})
  ${s.replayGuardAddr.env.padEnd(25)} replay-guard service, for bench (default: localhost:${MESH_ENDPOINTS['replay-guard'].port})
  ${s.capabilityExposureAddr.env.padEnd(25)} capability-exposure service (default: localhost:${MESH_ENDPOINTS['capability-exposure'].port})
  ${s.edgeUrl.env.padEnd(25)} where ASes reach the edge (default: ${DEFAULT_EDGE_URL})
  ${s.natsUrl.env.padEnd(25)} NATS, for the audit trail (no default: the running stack's)

Exit status: 0 done, 1 failed, ${EXIT_USAGE} bad command line.
`;
}

/** Words joined by spaces into indented lines of at most `width` characters. */
function wrap(words: readonly string[], indent: number, width: number): string {
  const lines: string[] = [];
  let line = '';
  for (const w of words) {
    if (line !== '' && indent + line.length + 1 + w.length > width) {
      lines.push(line);
      line = '';
    }
    line = line === '' ? w : `${line} ${w}`;
  }
  if (line !== '') lines.push(line);
  return lines.map(l => `${' '.repeat(indent)}${l}`).join('\n');
}

function oneScsAsId(positionals: readonly string[], command: string): string {
  if (positionals.length === 0) throw new UsageError(`${command} needs an scsAsId`);
  if (positionals.length > 1) throw new UsageError(`${command} takes one scsAsId, got ${positionals.length} arguments`);
  return positionals[0];
}

async function pkiInit(args: readonly string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommandArgs(args, {
    'trust-domain': { type: 'string' },
    hostname: { type: 'string', multiple: true },
  });
  noPositionals(positionals, 'pki init');
  const config = loadCliConfig(io.env);
  const layout = pkiLayout(config.stateDir);
  const trustDomain = resolveTrustDomain(layout, values['trust-domain'], config.trustDomain);
  if (!isValidTrustDomain(trustDomain)) {
    throw new UsageError(`invalid trust domain ${JSON.stringify(trustDomain)}: expected [a-z0-9._-]{1,255}`);
  }
  const hostnames = values.hostname;
  const state = await prepareState({
    stateDir: config.stateDir,
    trustDomain,
    ...(hostnames && hostnames.length > 0 ? { t8Hostnames: hostnames } : {}),
  });
  const meta = readPkiMetadata(state.layout);
  const t8 = (meta?.t8Hostnames ?? []).join(', ');
  if (state.pkiCreated) {
    io.stdout(`created the PKI in ${state.layout.root} (trust domain ${trustDomain}; edge T8 certificate for ${t8})\n`);
  } else {
    io.stdout(`the PKI in ${state.layout.root} exists (trust domain ${trustDomain}); nothing changed\n`);
    const wanted = hostnames ?? [];
    if (wanted.some(h => !(meta?.t8Hostnames ?? []).includes(h))) {
      io.stdout(`note: --hostname applies only when the PKI is created; its T8 certificate is for ${t8}\n`);
    }
  }
  io.stdout(state.kekCreated ? `created the key-encryption key ${state.kekPath}\n` : `the key-encryption key ${state.kekPath} exists; kept\n`);
  return EXIT_OK;
}

async function withRegistry<T>(config: CliConfig, deps: CliDeps, run: (registry: AsRegistry, trustDomain: string) => Promise<T>): Promise<T> {
  const trustDomain = existingPkiTrustDomain(config);
  const connect = deps.connectRegistry ?? connectAuthenticationRegistry;
  const registry = connect({ address: config.authenticationAddr, stateDir: config.stateDir, trustDomain });
  try {
    return await run(registry, trustDomain);
  } finally {
    registry.close();
  }
}

async function asOnboard(args: readonly string[], io: CliIo, deps: CliDeps): Promise<number> {
  const { values, positionals } = parseCommandArgs(args, {
    scope: { type: 'string', multiple: true },
    out: { type: 'string' },
    'signature-profile': { type: 'string' },
  });
  if (positionals.length > 1) throw new UsageError(`as onboard takes one scsAsId, got ${positionals.length} arguments`);
  const request = validateOnboardRequest({
    scsAsId: positionals[0],
    scopes: values.scope,
    outDir: values.out,
    signatureProfile: values['signature-profile'],
  });
  const config = loadCliConfig(io.env);
  assertBundleFolderFree(request.outDir);
  const registered = await withRegistry(config, deps, async (registry, trustDomain) => {
    const credentials = await createAsCredentials(config.stateDir, trustDomain, request.scsAsId);
    const as = await registry.register(registrationOf(request, credentials));
    const asConfig: AsConfigFile = {
      scsAsId: as.scsAsId,
      edgeUrl: config.edgeUrl,
      tokenEndpoint: tokenEndpointOf(config.edgeUrl),
      scopes: as.scopes,
      signatureProfile: as.signatureProfile,
      certificateThumbprint: credentials.thumbprint,
      signingKeyId: String(credentials.signingJwk.kid),
      encryptionKeyId: String(credentials.encryptionJwk.kid),
    };
    writeBundle(request.outDir, config.stateDir, credentials, asConfig);
    return { as, asConfig };
  });
  const { as, asConfig } = registered;
  const dir = request.outDir;
  const granted = await grantsAtOnboarding(config, deps, as.scsAsId, as.scopes);
  // RegisterApplicationServer replaces an existing registration: say so, the old certificate and
  // keys no longer work.
  const verb = as.createdAt === as.updatedAt ? 'onboarded' : 're-onboarded (previous certificate and keys replaced)';
  io.stdout(
    `${verb} ${as.scsAsId} (status ${as.status}; scopes ${as.scopes.join(' ')}; signatures ${as.signatureProfile})\n` +
      `  certificate thumbprint (x5t#S256): ${asConfig.certificateThumbprint}\n` +
      `  bundle: ${dir} (${Object.values(BUNDLE_FILES).join(', ')})\n` +
      `get an access token:\n` +
      `  curl --cert ${dir}/${BUNDLE_FILES.clientCertificate} --key ${dir}/${BUNDLE_FILES.clientKey} ` +
      `--cacert ${dir}/${BUNDLE_FILES.serverCa} -d grant_type=client_credentials -d client_id=${as.scsAsId} ` +
      `-d scope=${as.scopes.join('+')} ${asConfig.tokenEndpoint}\n` +
      (isInsideRepository(dir) ? `warning: ${dir} is inside the repository: keep its private keys out of version control\n` : '') +
      granted,
  );
  return EXIT_OK;
}

/**
 * What an AS just onboarded is granted, from the authorization service: its grants, or that it
 * has none and the command that grants one. Onboarding succeeded either way, so a failure to
 * read is reported, not thrown.
 */
async function grantsAtOnboarding(config: CliConfig, deps: CliDeps, scsAsId: string, scopes: readonly string[]): Promise<string> {
  let entitiesJson: string;
  try {
    entitiesJson = await withPolicyAdmin(config, deps, async client => (await client.getPolicies({})).entitiesJson);
  } catch (err) {
    return `grants: cannot be read from the authorization service at ${config.authorizationAddr} (${describeFailure(err)}); see '${CLI_NAME} policy show'\n`;
  }
  if (grantRows(entitiesJson, scsAsId).length > 0) return `granted (authorization policy in force):\n${describeGrantsOf(entitiesJson, scsAsId)}`;
  const categories = await servedCategories(config, deps).catch(() => undefined);
  const commands = scopes.map(api => {
    const known = categories?.get(api);
    return known && known.length > 0
      ? `  ${CLI_NAME} policy grant ${scsAsId} --api ${api} ${known.map(c => `--category ${c}`).join(' ')} --target <kind:value>... (or --any-target)`
      : `  ${grantHint(scsAsId, api)}`;
  });
  return (
    `${scsAsId} has no grant yet: every T8 request it makes is refused (403) until the operator grants it, for example:\n` +
    `${commands.join('\n')}\n` +
    `  (keep only the categories it needs; '${CLI_NAME} network list' shows the UE and group identifiers for --target)\n`
  );
}

async function withPolicyAdmin<T>(config: CliConfig, deps: CliDeps, run: (client: PolicyAdminClient) => Promise<T>): Promise<T> {
  const connect = deps.connectPolicyAdmin ?? connectPolicyAdmin;
  const client = connect({ address: config.authorizationAddr, stateDir: config.stateDir, trustDomain: existingPkiTrustDomain(config) });
  try {
    return await run(client);
  } finally {
    client.close();
  }
}

async function withCapabilityExposure<T>(config: CliConfig, deps: CliDeps, run: (client: ServedApisClient & NetworkAdminClient) => Promise<T>): Promise<T> {
  const client = (deps.connectCapabilityExposure ?? operatorCapabilityExposureClient)(config);
  try {
    return await run(client);
  } catch (err) {
    throw new AeseError('UNAVAILABLE', `capability-exposure at ${config.capabilityExposureAddr}: ${describeFailure(err)}`, { cause: err });
  } finally {
    client.close();
  }
}

/** The data categories of each served API, as capability-exposure declares them. */
async function servedCategories(config: CliConfig, deps: CliDeps): Promise<Map<string, readonly string[]>> {
  const { apis } = await withCapabilityExposure(config, deps, c => c.listApis({}));
  return new Map(apis.map(a => [a.name, a.dataCategories]));
}

function listRows(list: readonly RegisteredAs[]): string {
  if (list.length === 0) return 'no SCS/AS is onboarded\n';
  return formatTable(
    ['SCS_AS_ID', 'STATUS', 'SIGNATURES', 'SCOPES', 'CERTIFICATES', 'UPDATED'],
    list.map(as => [as.scsAsId, as.status, as.signatureProfile, as.scopes.join(','), String(as.certificateThumbprints.length), as.updatedAt]),
  );
}

async function asList(args: readonly string[], io: CliIo, deps: CliDeps): Promise<number> {
  const { values, positionals } = parseCommandArgs(args, { json: { type: 'boolean' } });
  noPositionals(positionals, 'as list');
  const config = loadCliConfig(io.env);
  const list = await withRegistry(config, deps, registry => registry.list());
  const sorted = [...list].sort((a, b) => a.scsAsId.localeCompare(b.scsAsId));
  io.stdout(values.json ? `${JSON.stringify(sorted, null, 2)}\n` : listRows(sorted));
  return EXIT_OK;
}

async function asSuspend(args: readonly string[], io: CliIo, deps: CliDeps): Promise<number> {
  const { positionals } = parseCommandArgs(args, {});
  const scsAsId = oneScsAsId(positionals, 'as suspend');
  if (!isValidIdentityName(scsAsId)) throw new UsageError(`invalid scsAsId ${JSON.stringify(scsAsId)}`);
  const config = loadCliConfig(io.env);
  const as = await withRegistry(config, deps, registry => registry.suspend(scsAsId));
  io.stdout(`suspended ${as.scsAsId} (status ${as.status})\n`);
  return EXIT_OK;
}

const THUMBPRINT = /^[A-Za-z0-9_-]{43}$/;
const JTI = /^[A-Za-z0-9._-]{1,128}$/;

/** `as revoke`, `cert revoke`, `token revoke`: permanent, at every replica within a second. */
function revokeCommand(kind: RevocationTarget['kind']) {
  return async (args: readonly string[], io: CliIo, deps: CliDeps): Promise<number> => {
    const { values, positionals } = parseCommandArgs(args, { reason: { type: 'string' } });
    const what = { as: 'an scsAsId', cert: 'a certificate thumbprint (x5t#S256, base64url)', token: 'a token jti' }[kind];
    if (positionals.length !== 1) throw new UsageError(`${kind} revoke needs ${what}`);
    const value = positionals[0];
    let target: RevocationTarget;
    if (kind === 'as') {
      if (!isValidIdentityName(value)) throw new UsageError(`invalid scsAsId ${JSON.stringify(value)}`);
      target = { kind, scsAsId: value };
    } else if (kind === 'cert') {
      if (!THUMBPRINT.test(value)) throw new UsageError('a certificate thumbprint is 43 base64url characters (SHA-256)');
      target = { kind, thumbprint: value };
    } else {
      if (!JTI.test(value)) throw new UsageError('a jti is 1-128 characters of [A-Za-z0-9._-]');
      target = { kind, jti: value };
    }
    const reason = values.reason ?? 'revoked by the operator';
    if (reason.length > 256) throw new UsageError('--reason is at most 256 characters');
    const config = loadCliConfig(io.env);
    const version = await withRegistry(config, deps, registry => registry.revoke(target, reason));
    io.stdout(`revoked ${kind === 'as' ? 'SCS/AS' : kind === 'cert' ? 'certificate' : 'token'} ${value} (revocation event ${version})\n`);
    return EXIT_OK;
  };
}

/**
 * Runs a policy command with an operator connection to the authorization service; the grant
 * command also checks categories with capability-exposure and scopes with the AS registry.
 */
function policyCommand(run: (args: readonly string[], deps: PolicyCommandDeps & GrantCheckDeps) => Promise<number>) {
  return async (args: readonly string[], io: CliIo, deps: CliDeps): Promise<number> => {
    const config = loadCliConfig(io.env);
    const checks: GrantCheckDeps = {
      servedApis: async () => [...(await servedCategories(config, deps))].map(([name, dataCategories]) => ({ name, dataCategories })),
      registeredScopes: async scsAsId => {
        const list = await withRegistry(config, deps, registry => registry.list());
        return list.find(a => a.scsAsId === scsAsId)?.scopes;
      },
    };
    return withPolicyAdmin(config, deps, client => run(args, { client, stdout: io.stdout, ...checks }));
  };
}

async function networkCommand(args: readonly string[], io: CliIo, deps: CliDeps): Promise<number> {
  const config = loadCliConfig(io.env);
  return withCapabilityExposure(config, deps, client => networkList(args, client, io.stdout));
}

type Command = (args: readonly string[], io: CliIo, deps: CliDeps) => Promise<number>;

const COMMANDS: Readonly<Record<string, Readonly<Record<string, Command>>>> = {
  pki: { init: pkiInit },
  as: { onboard: asOnboard, list: asList, suspend: asSuspend, revoke: revokeCommand('as') },
  cert: { revoke: revokeCommand('cert') },
  token: { revoke: revokeCommand('token') },
  keys: { rotate: keysCommand(keysRotate), list: keysCommand(keysList) },
  audit: { tail: auditCommand(auditTail), verify: auditCommand(auditVerify) },
  policy: {
    show: policyCommand(policyShow),
    apply: policyCommand(policyApply),
    grant: policyCommand(policyGrant),
    withdraw: policyCommand(policyWithdraw),
  },
  network: { list: networkCommand },
  bench: BENCH_COMMANDS,
};

/**
 * Runs one command line and returns the exit status. Every failure becomes one line on stderr
 * (`aese: <message>`), never a stack trace: operators read it, scripts test the status.
 */
export async function runCli(argv: readonly string[], io: CliIo, deps: CliDeps = {}): Promise<number> {
  try {
    if (argv.length > 0 && (argv[0] === 'help' || argv.includes('--help') || argv.includes('-h'))) {
      io.stdout(usage());
      return EXIT_OK;
    }
    const [group, name, ...rest] = argv;
    if (group === undefined) throw new UsageError(`missing command (see '${CLI_NAME} --help')`);
    const commands = COMMANDS[group];
    if (!commands) throw new UsageError(`unknown command ${JSON.stringify(group)} (see '${CLI_NAME} --help')`);
    const known = Object.keys(commands).join(', ');
    if (name === undefined) throw new UsageError(`${group} needs a subcommand: ${known}`);
    const command = Object.hasOwn(commands, name) ? commands[name] : undefined;
    if (!command) throw new UsageError(`unknown command "${group} ${name}"; expected one of: ${known}`);
    return await command(rest, io, deps);
  } catch (err: unknown) {
    io.stderr(`${CLI_NAME}: ${describeFailure(err)}\n`);
    return err instanceof UsageError ? EXIT_USAGE : EXIT_FAILURE;
  }
}
