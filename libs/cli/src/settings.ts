import { loadConfig, optionalStr } from '@aese/config';
import type { Env, Setting } from '@aese/config';
import { pkiLayout, readPkiMetadata } from '@aese/pki';
import type { PkiLayout } from '@aese/pki';
import { COMMON_SETTINGS, DEFAULT_EDGE_PORT, DEFAULT_TRUST_DOMAIN } from '@aese/runtime';
import { CLI_NAME, UsageError } from './errors.js';
import { readStackRecord } from './nats-endpoint.js';

/** Where ASes reach the edge when nothing is configured: the port `npm start` uses. */
export const DEFAULT_EDGE_URL = `https://localhost:${DEFAULT_EDGE_PORT}`;

export { optionalStr };

/**
 * Settings of the operator tools (the `aese` CLI and `npm start`). Variable names and defaults are
 * those of the services ({@link COMMON_SETTINGS}), so one environment drives both.
 */
export const CLI_SETTINGS = {
  stateDir: COMMON_SETTINGS.stateDir,
  /** Unset: the trust domain recorded in the PKI's `pki.json`, else {@link DEFAULT_TRUST_DOMAIN}. */
  trustDomain: optionalStr(COMMON_SETTINGS.trustDomain.env),
  // Addresses unset: those of the stack running from the state folder (npm start records them),
  // else the standard ports.
  authenticationAddr: optionalStr(COMMON_SETTINGS.addrAuthentication.env),
  authorizationAddr: optionalStr(COMMON_SETTINGS.addrAuthorization.env),
  cryptoAddr: optionalStr(COMMON_SETTINGS.addrCrypto.env),
  replayGuardAddr: optionalStr(COMMON_SETTINGS.addrReplayGuard.env),
  capabilityExposureAddr: optionalStr(COMMON_SETTINGS.addrCapabilityExposure.env),
  /** Unset: the NATS of the stack running from the state folder. */
  natsUrl: optionalStr(COMMON_SETTINGS.natsUrl.env),
  natsCaFile: COMMON_SETTINGS.natsCaFile,
  /** Unset: the running stack's edge, else {@link DEFAULT_EDGE_URL}. */
  edgeUrl: optionalStr('AESE_EDGE_URL'),
} as const;

export type CliConfig = ReturnType<typeof loadCliConfig>;

/**
 * Reads {@link CLI_SETTINGS} once; a malformed value fails here, naming its variable. What is
 * unset comes from the running stack's record (`<state>/stack.json`), then the defaults, so
 * the CLI reaches the stack `npm start` runs whatever ports it was given.
 */
export function loadCliConfig(env: Env) {
  const raw = loadConfig(CLI_SETTINGS, env);
  const stack = readStackRecord(raw.stateDir);
  const address = (setting: Setting<string>): string => env[setting.env] || stack?.addresses?.[setting.env] || setting.default!;
  const config = {
    ...raw,
    authenticationAddr: address(COMMON_SETTINGS.addrAuthentication),
    authorizationAddr: address(COMMON_SETTINGS.addrAuthorization),
    cryptoAddr: address(COMMON_SETTINGS.addrCrypto),
    replayGuardAddr: address(COMMON_SETTINGS.addrReplayGuard),
    capabilityExposureAddr: address(COMMON_SETTINGS.addrCapabilityExposure),
    edgeUrl: raw.edgeUrl || stack?.edgeUrl || DEFAULT_EDGE_URL,
  };
  let url: URL;
  try {
    url = new URL(config.edgeUrl);
  } catch {
    throw new UsageError(`setting AESE_EDGE_URL must be an https URL, got ${JSON.stringify(config.edgeUrl)}`);
  }
  if (url.protocol !== 'https:') throw new UsageError('setting AESE_EDGE_URL must be an https URL');
  return config;
}

/**
 * The trust domain to use: an explicit choice (flag, then variable), else the one the existing
 * PKI was made for, else the default. An explicit choice that contradicts the PKI is caught by
 * `@aese/pki`, which names both.
 */
export function resolveTrustDomain(layout: PkiLayout, ...explicit: (string | undefined)[]): string {
  for (const td of explicit) if (td !== undefined && td !== '') return td;
  return readPkiMetadata(layout)?.trustDomain ?? DEFAULT_TRUST_DOMAIN;
}

/** The OAuth token endpoint under an edge URL. */
export function tokenEndpointOf(edgeUrl: string): string {
  return `${edgeUrl.replace(/\/+$/, '')}/oauth2/token`;
}

/** The trust domain of a state folder that must already hold a PKI. */
export function existingPkiTrustDomain(config: CliConfig): string {
  const layout = pkiLayout(config.stateDir);
  if (!readPkiMetadata(layout)) throw new Error(`no PKI in ${layout.root}: run '${CLI_NAME} pki init' first`);
  return resolveTrustDomain(layout, config.trustDomain);
}
