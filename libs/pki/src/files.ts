import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';

/** Mode of private key files: owner read/write only. */
export const PRIVATE_FILE_MODE = 0o600;
/** Mode of certificates and metadata: public material, world-readable. */
export const PUBLIC_FILE_MODE = 0o644;
/** Mode of PKI directories: owner only, so key names are not listed to others either. */
export const PRIVATE_DIR_MODE = 0o700;

/**
 * Creates a directory (and parents) owner-only, and tightens it if it existed. Parents created
 * on the way get the same mode.
 *
 * @internal
 */
export function ensurePrivateDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
  chmodSync(dir, PRIVATE_DIR_MODE);
}

/**
 * Writes a file through a temporary sibling, fsync and rename, so a crash leaves either the old
 * file or the new one, never a truncated key. The mode is set at creation (no window in which a
 * key is readable by others) and again after the rename, whatever the umask.
 *
 * @internal
 */
export function writeFileAtomic(path: string, data: string, mode: number): void {
  const tmp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    const fd = openSync(tmp, 'wx', mode);
    try {
      writeSync(fd, data);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    chmodSync(tmp, mode);
    renameSync(tmp, path);
    chmodSync(path, mode);
  } catch (err: unknown) {
    rmSync(tmp, { force: true });
    throw err;
  }
}

/** Writes a private key with mode 0600. @internal */
export function writePrivateKeyFile(path: string, pem: string): void {
  writeFileAtomic(path, pem, PRIVATE_FILE_MODE);
}

/** Writes a certificate or other public file with mode 0644. @internal */
export function writePublicFile(path: string, data: string): void {
  writeFileAtomic(path, data, PUBLIC_FILE_MODE);
}
