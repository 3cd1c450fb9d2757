import { constants, createHmac, sign, timingSafeEqual, verify } from 'node:crypto';
import type { KeyObject } from 'node:crypto';

/**
 * RFC 9421 section 3.3 algorithms this library can compute. Only the
 * {@link DEFAULT_ALLOWED_ALGORITHMS} are accepted unless a caller widens the set explicitly
 * (the RFC's Appendix B vectors use rsa-pss-sha512 and hmac-sha256).
 */
export const SIGNATURE_ALGORITHMS = ['ecdsa-p256-sha256', 'ed25519', 'rsa-pss-sha512', 'hmac-sha256'] as const;

/** One of {@link SIGNATURE_ALGORITHMS}. */
export type SignatureAlgorithm = (typeof SIGNATURE_ALGORITHMS)[number];

/**
 * The T8 profile: AS request signatures and SCEF response/notification signatures use only
 * asymmetric, modern curves. HMAC would need a shared secret per AS, RSA brings padding choices.
 */
export const DEFAULT_ALLOWED_ALGORITHMS: readonly SignatureAlgorithm[] = Object.freeze(['ecdsa-p256-sha256', 'ed25519']);

/** True for a string naming one of {@link SIGNATURE_ALGORITHMS}. */
export function isSignatureAlgorithm(value: unknown): value is SignatureAlgorithm {
  return typeof value === 'string' && (SIGNATURE_ALGORITHMS as readonly string[]).includes(value);
}

/** RFC 9421 section 3.3.1: RSASSA-PSS with SHA-512, MGF1 SHA-512 and a 64-byte salt. */
const RSA_PSS = { padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 64 } as const;

/**
 * Whether `key` is a key of the kind `alg` needs, for signing (private or secret) or verifying
 * (public or secret). A P-384 key for ecdsa-p256-sha256 or a private key handed to a verifier is a
 * configuration mistake that must not verify anything.
 */
export function keyFitsAlgorithm(alg: SignatureAlgorithm, key: KeyObject, use: 'sign' | 'verify'): boolean {
  if (alg === 'hmac-sha256') return key.type === 'secret' && (key.symmetricKeySize ?? 0) >= 32;
  if (key.type !== (use === 'sign' ? 'private' : 'public')) return false;
  switch (alg) {
    case 'ecdsa-p256-sha256':
      return key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1';
    case 'ed25519':
      return key.asymmetricKeyType === 'ed25519';
    case 'rsa-pss-sha512':
      return (key.asymmetricKeyType === 'rsa' || key.asymmetricKeyType === 'rsa-pss') && (key.asymmetricKeyDetails?.modulusLength ?? 0) >= 2048;
  }
}

/** Signs the signature base; the caller has checked {@link keyFitsAlgorithm}. */
export function signBytes(alg: SignatureAlgorithm, key: KeyObject, data: Buffer): Buffer {
  switch (alg) {
    case 'ecdsa-p256-sha256':
      return sign('sha256', data, { key, dsaEncoding: 'ieee-p1363' });
    case 'ed25519':
      return sign(null, data, key);
    case 'rsa-pss-sha512':
      return sign('sha512', data, { key, ...RSA_PSS });
    case 'hmac-sha256':
      return createHmac('sha256', key).update(data).digest();
  }
}

function isZero(bytes: Buffer, start: number, end: number): boolean {
  for (let i = start; i < end; i++) if (bytes[i] !== 0) return false;
  return true;
}

/**
 * Verifies signature bytes over the signature base. Never throws: a signature node cannot even
 * parse is simply not valid. ECDSA signatures must be the 64-byte r||s form of RFC 9421 section
 * 3.3.4 (a DER signature is refused, not converted) and r = 0 or s = 0 is refused outright.
 */
export function verifyBytes(alg: SignatureAlgorithm, key: KeyObject, data: Buffer, signature: Buffer): boolean {
  try {
    switch (alg) {
      case 'ecdsa-p256-sha256':
        if (signature.length !== 64) return false;
        if (isZero(signature, 0, 32) || isZero(signature, 32, 64)) return false;
        return verify('sha256', data, { key, dsaEncoding: 'ieee-p1363' }, signature);
      case 'ed25519':
        return signature.length === 64 && verify(null, data, key, signature);
      case 'rsa-pss-sha512':
        return verify('sha512', data, { key, ...RSA_PSS }, signature);
      case 'hmac-sha256': {
        const expected = createHmac('sha256', key).update(data).digest();
        return signature.length === expected.length && timingSafeEqual(signature, expected);
      }
    }
  } catch {
    return false;
  }
}
