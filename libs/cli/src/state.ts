import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, fsyncSync, linkSync, mkdirSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { initPki, PRIVATE_DIR_MODE, PRIVATE_FILE_MODE } from '@aese/pki';
import type { PkiLayout } from '@aese/pki';
import { writeDeploymentNatsConfigs } from './nats-endpoint.js';

/** Name of the crypto service's key-encryption key file inside the state folder. */
export const KEK_FILE_NAME = 'crypto-kek';
/** Length of the key-encryption key: an AES-256 key. */
export const KEK_BYTES = 32;

/** Where the key-encryption key of a state folder lives (what `CRYPTO_KEK_FILE` points at). */
export function kekPath(stateDir: string): string {
  return join(resolve(stateDir), KEK_FILE_NAME);
}

/**
 * Creates `<stateDir>/crypto-kek` (32 random bytes, base64, mode 0600) unless it exists. An
 * existing file is never replaced: the crypto service's keys are encrypted under it, so a new
 * one would make them unreadable. It is checked instead, and its mode tightened.
 *
 * The file appears atomically (written aside, then hard-linked into place, which fails if
 * another process got there first), so a crash never leaves a truncated key.
 *
 * @throws Error when an existing file does not hold a 32-byte base64 key.
 */
export function ensureKek(stateDir: string): { path: string; created: boolean } {
  const path = kekPath(stateDir);
  mkdirSync(resolve(stateDir), { recursive: true, mode: PRIVATE_DIR_MODE });
  const tmp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  let created = false;
  try {
    const fd = openSync(tmp, 'wx', PRIVATE_FILE_MODE);
    try {
      writeSync(fd, `${randomBytes(KEK_BYTES).toString('base64')}\n`);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    chmodSync(tmp, PRIVATE_FILE_MODE);
    try {
      linkSync(tmp, path);
      created = true;
    } catch (err: unknown) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  } finally {
    rmSync(tmp, { force: true });
  }
  if (!created) {
    const kek = Buffer.from(readFileSync(path, 'utf8').trim(), 'base64');
    if (kek.length !== KEK_BYTES) {
      throw new Error(`${path} exists but does not hold ${KEK_BYTES} bytes, base64-encoded; it was not replaced`);
    }
  }
  chmodSync(path, PRIVATE_FILE_MODE);
  return { path, created };
}

/** Options of {@link prepareState}. */
export interface PrepareStateOptions {
  readonly stateDir: string;
  readonly trustDomain: string;
  /** Host names for the edge's T8 server certificate; used only when the PKI is created. */
  readonly t8Hostnames?: readonly string[];
}

/** What {@link prepareState} found or made. */
export interface PreparedState {
  readonly layout: PkiLayout;
  readonly pkiCreated: boolean;
  readonly kekPath: string;
  readonly kekCreated: boolean;
}

/**
 * Makes a state folder ready for the mesh: the operator PKI, the crypto key-encryption key and
 * the NATS configurations of the container deployments (compose, a three-node cluster).
 * Idempotent, and the one way both the `aese pki init` command and `npm start` do it.
 */
export async function prepareState(opts: PrepareStateOptions): Promise<PreparedState> {
  const pki = await initPki({
    stateDir: opts.stateDir,
    trustDomain: opts.trustDomain,
    ...(opts.t8Hostnames ? { t8Hostnames: opts.t8Hostnames } : {}),
  });
  const kek = ensureKek(opts.stateDir);
  writeDeploymentNatsConfigs(pki.layout, opts.trustDomain);
  return { layout: pki.layout, pkiCreated: pki.created, kekPath: kek.path, kekCreated: kek.created };
}
