import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { AeseError } from '@aese/errors';

/** A private key encrypted at rest with the key-encryption key (AES-256-GCM). */
export interface SealedSecret {
  readonly iv: string;
  readonly ciphertext: string;
  readonly tag: string;
}

const KEK_BYTES = 32;
const IV_BYTES = 12;

/**
 * Encrypts a secret under the KEK. The additional data binds the ciphertext to its key record,
 * so a sealed key cannot be moved to another record (another purpose, say) undetected.
 */
export function seal(kek: Buffer, plaintext: Buffer, additionalData: string): SealedSecret {
  assertKek(kek);
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', kek, iv);
  cipher.setAAD(Buffer.from(additionalData, 'utf8'));
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return {
    iv: iv.toString('base64'),
    ciphertext: ciphertext.toString('base64'),
    tag: cipher.getAuthTag().toString('base64'),
  };
}

/** Decrypts a sealed secret; a wrong KEK or altered record fails with FAILED_PRECONDITION. */
export function unseal(kek: Buffer, sealed: SealedSecret, additionalData: string): Buffer {
  assertKek(kek);
  try {
    const decipher = createDecipheriv('aes-256-gcm', kek, Buffer.from(sealed.iv, 'base64'));
    decipher.setAAD(Buffer.from(additionalData, 'utf8'));
    decipher.setAuthTag(Buffer.from(sealed.tag, 'base64'));
    return Buffer.concat([decipher.update(Buffer.from(sealed.ciphertext, 'base64')), decipher.final()]);
  } catch (err) {
    throw new AeseError('FAILED_PRECONDITION', 'sealed key cannot be opened with the configured KEK', { cause: err });
  }
}

function assertKek(kek: Buffer): void {
  if (kek.length !== KEK_BYTES) throw new TypeError(`KEK must be ${KEK_BYTES} bytes`);
}
