import type { JsonWebKey } from 'node:crypto';
import { KeyPurpose, SignatureAlgorithm } from '@aese/protos/common/v1';
import type { GetJwksRequest, GetJwksResponse, PublicKey, SignRequest, SignResponse } from '@aese/protos/crypto/v1';
import type { AuditVerificationKey } from './audit-verify.js';
import { eventSigningJwks, JwksEventVerifier } from './signing.js';
import type { EventSigner } from './signing.js';

/** The one crypto call a signer needs (a mesh client of CryptoService fits). */
export interface CryptoSigner {
  sign(request: SignRequest): Promise<SignResponse>;
}

/** The one crypto call a verifier needs. */
export interface CryptoKeySource {
  getJwks(request: GetJwksRequest): Promise<GetJwksResponse>;
}

/** Signs through the crypto service with its key of one purpose (the caller's identity decides what it may sign). */
export function cryptoSigner(crypto: CryptoSigner, purpose: KeyPurpose): EventSigner {
  return {
    sign: async data => {
      const out = await crypto.sign({ purpose, data: Buffer.from(data) });
      return { kid: out.kid, signature: out.signature };
    },
  };
}

/** Signs control events, signed records and notification requests with crypto's event-signing key. */
export function cryptoEventSigner(crypto: CryptoSigner): EventSigner {
  return cryptoSigner(crypto, KeyPurpose.KEY_PURPOSE_EVENT_SIGNING);
}

/** Signs audit checkpoints through the crypto service with its audit-signing key. */
export function cryptoAuditSigner(crypto: CryptoSigner): EventSigner {
  return cryptoSigner(crypto, KeyPurpose.KEY_PURPOSE_AUDIT_SIGNING);
}

/** Verifies event signatures with crypto's event-signing keys, fetched as {@link JwksEventVerifier} does. */
export function cryptoEventVerifier(crypto: CryptoKeySource): JwksEventVerifier {
  return new JwksEventVerifier(async () => eventSigningJwks((await crypto.getJwks({})).keys));
}

/**
 * The audit-signing public keys in a crypto `GetJwks` answer, by kid. Crypto keeps every
 * audit-signing key in that answer, retired ones too, so old checkpoints keep verifying.
 */
export function auditSigningKeys(keys: readonly PublicKey[]): Map<string, AuditVerificationKey> {
  const out = new Map<string, AuditVerificationKey>();
  for (const k of keys) {
    if (k.purpose !== KeyPurpose.KEY_PURPOSE_AUDIT_SIGNING) continue;
    const alg = k.algorithm === SignatureAlgorithm.SIGNATURE_ALGORITHM_ES256 ? 'ES256' : k.algorithm === SignatureAlgorithm.SIGNATURE_ALGORITHM_EDDSA ? 'EdDSA' : undefined;
    if (!alg) continue;
    out.set(k.kid, { kid: k.kid, alg, jwk: JSON.parse(k.jwkJson) as JsonWebKey });
  }
  return out;
}
