import { loadConfig, optionalStr, str } from '@aese/config';
import type { Env } from '@aese/config';
import { pkiLayout, readPkiMetadata } from '@aese/pki';
import type { PkiLayout } from '@aese/pki';
import { COMMON_SETTINGS, DEFAULT_EDGE_PORT, DEFAULT_TRUST_DOMAIN } from '@aese/runtime';
import { CLI_NAME, UsageError } from './errors.js';

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
  authenticationAddr: COMMON_SETTINGS.addrAuthentication,
  authorizationAddr: COMMON_SETTINGS.addrAuthorization,
  cryptoAddr: COMMON_SETTINGS.addrCrypto,
  /** Unset: the NATS of the stack running from the state folder. */
  natsUrl: optionalStr(COMMON_SETTINGS.natsUrl.env),
  natsCaFile: COMMON_SETTINGS.natsCaFile,
  edgeUrl: str('AESE_EDGE_URL', DEFAULT_EDGE_URL),
} as const;

export type CliConfig = ReturnType<typeof loadCliConfig>;

/** Reads {@link CLI_SETTINGS} once; a malformed value fails here, naming its variable. */
export function loadCliConfig(env: Env) {
  const config = loadConfig(CLI_SETTINGS, env);
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
