/**
 * The operator tooling of the mesh: the `aese` command line (PKI, AS onboarding and listing,
 * suspension) and the state-folder preparation that `npm start` shares with it, so each thing
 * is done one way.
 *
 * @packageDocumentation
 */
export { connectAuthenticationRegistry } from './authentication-registry.js';
export type { AuthenticationRegistryOptions } from './authentication-registry.js';
export { runCli, usage } from './commands.js';
export type { CliDeps, CliIo } from './commands.js';
export { CLI_NAME, describeFailure, EXIT_FAILURE, EXIT_OK, EXIT_USAGE, UsageError } from './errors.js';
export {
  BUNDLE_FILES,
  ENCRYPTION_KEY_ALG,
  SIGNING_KEY_ALG,
  assertBundleFolderFree,
  createAsCredentials,
  publicJwkOf,
  registrationOf,
  validateOnboardRequest,
  writeBundle,
} from './onboard.js';
export type { AsConfigFile, AsCredentials, OnboardRequest } from './onboard.js';
export { connectPolicyAdmin, MAX_POLICY_FILE_BYTES, POLICY_USAGE, policyApply, policyShow } from './policy-commands.js';
export type { PolicyAdminClient, PolicyAdminOptions, PolicyCommandDeps } from './policy-commands.js';
export { SIGNATURE_PROFILES } from './registry.js';
export { CLUSTER_NODES, COMPOSE_NATS_TLS, natsStatePaths, readStackRecord, writePrivateNatsConfig } from './nats-endpoint.js';
export type { NatsStatePaths, StackRecord } from './nats-endpoint.js';
export type { AsRegistration, AsRegistry, AsStatusName, RegisteredAs, SignatureProfileName } from './registry.js';
export { CLI_SETTINGS, DEFAULT_EDGE_URL, loadCliConfig, optionalStr, resolveTrustDomain, tokenEndpointOf } from './settings.js';
export type { CliConfig } from './settings.js';
export {
  builtServiceEntry,
  DEFAULT_BUILD_DIR,
  DEFAULT_NATS_SERVER_BIN,
  DEFAULT_START_TIMEOUT_MS,
  listensInKernelTable,
  PORT_SETTINGS,
  portEnvOf,
  runStack,
  START_ORDER,
  START_SETTINGS,
  STOP_GRACE_MS,
} from './stack.js';
export type { StackOptions } from './stack.js';
export { ensureKek, KEK_BYTES, KEK_FILE_NAME, kekPath, prepareState } from './state.js';
export type { PreparedState, PrepareStateOptions } from './state.js';
