import { chmodSync, closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, writeSync } from 'node:fs';
import { homedir } from 'node:os';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { REPO_ROOT } from '@aese/runtime';
import { calculateJwkThumbprint, exportJWK, generateKeyPair } from 'jose';
import type { JWK } from 'jose';
import { issueAsClientCertificate, isValidIdentityName, pkiLayout, PRIVATE_DIR_MODE, PRIVATE_FILE_MODE, PUBLIC_FILE_MODE } from '@aese/pki';
import { isT8Scope, T8_SCOPES } from '@aese/t8-catalog';
import { UsageError } from './errors.js';
import { SIGNATURE_PROFILES } from './registry.js';
import type { AsRegistration, SignatureProfileName } from './registry.js';

/** JWS algorithm of an AS's request-signing key (RFC 9421 `ecdsa-p256-sha256`). */
export const SIGNING_KEY_ALG = 'ES256';
/** JWE key-management algorithm of an AS's response-encryption key, on P-256. */
export const ENCRYPTION_KEY_ALG = 'ECDH-ES+A256KW';

/** The files of an onboarding bundle, as named in the AS's output folder. */
export const BUNDLE_FILES = {
  clientCertificate: 'client.crt',
  clientKey: 'client.key',
  serverCa: 'ca.crt',
  signingKey: 'signing.jwk',
  encryptionKey: 'encryption.jwk',
  config: 'as.json',
} as const;

/** Bundle files holding private keys: written 0600, never overwritten. */
const PRIVATE_BUNDLE_FILES: ReadonlySet<string> = new Set([BUNDLE_FILES.clientKey, BUNDLE_FILES.signingKey, BUNDLE_FILES.encryptionKey]);

/** What the operator asked for. */
export interface OnboardRequest {
  readonly scsAsId: string;
  readonly scopes: readonly string[];
  readonly outDir: string;
  readonly signatureProfile: SignatureProfileName;
}

/**
 * Checks an onboarding request before anything is issued. Scopes are checked against the served
 * T8 APIs, the same list the registry enforces, so a typo costs no certificate.
 *
 * @throws UsageError naming the bad argument.
 */
export function validateOnboardRequest(input: {
  scsAsId: string | undefined;
  scopes: readonly string[] | undefined;
  outDir: string | undefined;
  signatureProfile: string | undefined;
}): OnboardRequest {
  const { scsAsId } = input;
  if (!scsAsId) throw new UsageError('as onboard needs an scsAsId');
  if (!isValidIdentityName(scsAsId)) {
    throw new UsageError(`invalid scsAsId ${JSON.stringify(scsAsId)}: expected 1-64 characters of [A-Za-z0-9._-]`);
  }
  const scopes = [...new Set(input.scopes ?? [])];
  if (scopes.length === 0) throw new UsageError('as onboard needs at least one --scope');
  for (const s of scopes) {
    if (isT8Scope(s)) continue;
    const served = T8_SCOPES.join(', ');
    throw new UsageError(`unknown scope ${JSON.stringify(s)}; the scopes are the served T8 APIs: ${served}`);
  }
  const profile = input.signatureProfile ?? 'required';
  if (!(SIGNATURE_PROFILES as readonly string[]).includes(profile)) {
    throw new UsageError(`--signature-profile must be one of ${SIGNATURE_PROFILES.join(', ')}`);
  }
  return { scsAsId, scopes, outDir: resolve(input.outDir ?? defaultBundleDir(scsAsId)), signatureProfile: profile as SignatureProfileName };
}

/** Where a bundle goes without --out: the operator's home, never the repository (private keys). */
export function defaultBundleDir(scsAsId: string): string {
  return join(homedir(), DEFAULT_BUNDLE_FOLDER, scsAsId);
}

/** The folder under the home directory that holds bundles by default (also in .gitignore). */
export const DEFAULT_BUNDLE_FOLDER = 'aese-bundles';

/** True when a path is inside the repository, where private keys risk being committed. */
export function isInsideRepository(path: string): boolean {
  const rel = relative(REPO_ROOT, resolve(path));
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
}

/**
 * Refuses an output folder that already holds part of a bundle: an AS's private keys are never
 * overwritten by accident. Checked before anything is issued or registered.
 *
 * @throws UsageError naming the first file found.
 */
export function assertBundleFolderFree(outDir: string): void {
  for (const name of Object.values(BUNDLE_FILES)) {
    const path = join(outDir, name);
    if (existsSync(path)) throw new UsageError(`${path} exists; choose an empty --out folder`);
  }
}

/** Everything made for an AS at onboarding; private parts stay with the AS. */
export interface AsCredentials {
  readonly certPem: string;
  readonly keyPem: string;
  readonly thumbprint: string;
  /** Private signing JWK with `kid`, `alg`, `use`. */
  readonly signingJwk: JWK;
  /** Private encryption JWK with `kid`, `alg`, `use`. */
  readonly encryptionJwk: JWK;
}

async function keyPair(alg: typeof SIGNING_KEY_ALG | typeof ENCRYPTION_KEY_ALG, use: 'sig' | 'enc'): Promise<JWK> {
  const { privateKey } = await generateKeyPair(alg, { extractable: true, ...(use === 'enc' ? { crv: 'P-256' } : {}) });
  const jwk = await exportJWK(privateKey);
  // RFC 7638 thumbprint of the public key: unique per key, so a new key never reuses a kid.
  const kid = await calculateJwkThumbprint(publicJwkOf(jwk));
  return { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y, d: jwk.d, kid, alg, use };
}

/** The public half of a JWK: every member but the private ones. */
export function publicJwkOf(jwk: JWK): JWK {
  const { d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, oth: _oth, k: _k, ...pub } = jwk;
  return pub;
}

/**
 * Issues the AS client certificate (AS CA) and generates its request-signing (ES256) and
 * response-encryption (ECDH-ES P-256) key pairs. Nothing is written or registered here.
 */
export async function createAsCredentials(stateDir: string, trustDomain: string, scsAsId: string): Promise<AsCredentials> {
  const [cert, signingJwk, encryptionJwk] = await Promise.all([
    issueAsClientCertificate(stateDir, trustDomain, scsAsId),
    keyPair(SIGNING_KEY_ALG, 'sig'),
    keyPair(ENCRYPTION_KEY_ALG, 'enc'),
  ]);
  return { certPem: cert.certPem, keyPem: cert.keyPem, thumbprint: cert.thumbprint, signingJwk, encryptionJwk };
}

/** What the registry receives for new credentials: the thumbprint and public keys only. */
export function registrationOf(request: OnboardRequest, credentials: AsCredentials): AsRegistration {
  return {
    scsAsId: request.scsAsId,
    certificateThumbprints: [credentials.thumbprint],
    scopes: request.scopes,
    signingKeys: [publicJwkOf(credentials.signingJwk)],
    encryptionKey: publicJwkOf(credentials.encryptionJwk),
    signatureProfile: request.signatureProfile,
  };
}

/** Contents of `as.json`: what an AS client needs to find and use the SCEF. */
export interface AsConfigFile {
  readonly scsAsId: string;
  readonly edgeUrl: string;
  readonly tokenEndpoint: string;
  readonly scopes: readonly string[];
  readonly signatureProfile: SignatureProfileName;
  readonly certificateThumbprint: string;
  readonly signingKeyId: string;
  readonly encryptionKeyId: string;
}

function writeNewFile(path: string, data: string, mode: number): void {
  const fd = openSync(path, 'wx', mode);
  try {
    writeSync(fd, data);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  chmodSync(path, mode);
}

/**
 * Writes the onboarding bundle into `outDir` (created 0700 if absent): `client.crt`, `client.key`,
 * `ca.crt` (the T8 server CA, to verify the edge), `signing.jwk`, `encryption.jwk` and `as.json`.
 * Private files are 0600 from creation, whatever the umask, and no file is overwritten.
 *
 * @returns the paths written, in order.
 */
export function writeBundle(outDir: string, stateDir: string, credentials: AsCredentials, config: AsConfigFile): string[] {
  // A folder made here is owner-only; an existing one (the operator's choice) keeps its mode,
  // the private files in it are 0600 either way.
  if (!existsSync(outDir)) {
    mkdirSync(outDir, { recursive: true, mode: PRIVATE_DIR_MODE });
    chmodSync(outDir, PRIVATE_DIR_MODE);
  }
  const serverCa = readFileSync(pkiLayout(stateDir).t8Ca.cert, 'utf8');
  const files: [string, string][] = [
    [BUNDLE_FILES.clientCertificate, credentials.certPem],
    [BUNDLE_FILES.clientKey, credentials.keyPem],
    [BUNDLE_FILES.serverCa, serverCa],
    [BUNDLE_FILES.signingKey, `${JSON.stringify(credentials.signingJwk, null, 2)}\n`],
    [BUNDLE_FILES.encryptionKey, `${JSON.stringify(credentials.encryptionJwk, null, 2)}\n`],
    [BUNDLE_FILES.config, `${JSON.stringify(config, null, 2)}\n`],
  ];
  return files.map(([name, data]) => {
    const path = join(outDir, name);
    writeNewFile(path, data, PRIVATE_BUNDLE_FILES.has(name) ? PRIVATE_FILE_MODE : PUBLIC_FILE_MODE);
    return path;
  });
}
