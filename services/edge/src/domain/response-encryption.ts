import { CompactEncrypt, importJWK } from 'jose';
import type { CryptoKey } from 'jose';
import type { EncryptionJwk } from './application-server.js';

/** The media type of a compact JWE body (RFC 7516 section 9.2.1, T8 profile section 5). */
export const JOSE_MEDIA_TYPE = 'application/jose';
/** Key management and content encryption of response JWEs (T8 profile section 5). */
export const JWE_ALG = 'ECDH-ES+A256KW';
export const JWE_ENC = 'A256GCM';
/** The obligation type that makes a response body confidential to its AS. */
export const ENCRYPT_RESPONSE_OBLIGATION = 'encrypt-response';

const imported = new WeakMap<EncryptionJwk, Promise<CryptoKey>>();

function publicKeyOf(key: EncryptionJwk): Promise<CryptoKey> {
  let found = imported.get(key);
  if (!found) {
    found = importJWK({ ...key.jwk }, JWE_ALG) as Promise<CryptoKey>;
    imported.set(key, found);
  }
  return found;
}

/**
 * Encrypts a response body to the AS's registered key as a compact JWE (`ECDH-ES+A256KW`,
 * `A256GCM`, `cty` = the body's media type, `kid` = the AS key's kid); the AS decrypts it with any
 * JOSE library and gets exactly the T8 body back. An ephemeral key per message (ECDH-ES), so
 * responses cannot be linked by their key material.
 */
export async function encryptBody(body: Uint8Array, contentType: string, key: EncryptionJwk): Promise<Uint8Array> {
  const jwe = await new CompactEncrypt(body).setProtectedHeader({ alg: JWE_ALG, enc: JWE_ENC, cty: contentType, kid: key.kid }).encrypt(await publicKeyOf(key));
  return Buffer.from(jwe, 'ascii');
}

/**
 * True when an `Accept` field asks for `application/jose` (with a q-value above zero). The
 * edge then encrypts the response body to the AS's key, whatever the policy says.
 */
export function acceptsJose(accept: readonly string[] | undefined): boolean {
  if (!accept) return false;
  for (const range of accept.join(',').split(',')) {
    const [type, ...params] = range.split(';').map(s => s.trim().toLowerCase());
    if (type !== JOSE_MEDIA_TYPE) continue;
    const q = params.find(p => p.startsWith('q='));
    if (q === undefined || Number(q.slice(2)) > 0) return true;
  }
  return false;
}
