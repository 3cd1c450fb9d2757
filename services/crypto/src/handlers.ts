import { KeyPurpose as PbPurpose, SignatureAlgorithm as PbAlg } from '@aese/protos/common/v1';
import { KeyStatus } from '@aese/protos/crypto/v1';
import type { CryptoServiceService } from '@aese/protos/crypto/v1';
import type { PublicKey } from '@aese/protos/crypto/v1';
import { AeseError } from '@aese/errors';
import type { HandlersOf } from '@aese/grpc-server';
import type { KeyAlgorithm, KeyCustody, KeyPurpose, PublishedKey } from './domain/keys.js';

type Handlers = HandlersOf<typeof CryptoServiceService>;

const PURPOSE_FROM_PB: Partial<Record<PbPurpose, KeyPurpose>> = {
  [PbPurpose.KEY_PURPOSE_ACCESS_TOKEN]: 'access-token',
  [PbPurpose.KEY_PURPOSE_MESSAGE_SIGNING]: 'message-signing',
  [PbPurpose.KEY_PURPOSE_EVENT_SIGNING]: 'event-signing',
  [PbPurpose.KEY_PURPOSE_AUDIT_SIGNING]: 'audit-signing',
};
const PURPOSE_TO_PB: Record<KeyPurpose, PbPurpose> = {
  'access-token': PbPurpose.KEY_PURPOSE_ACCESS_TOKEN,
  'message-signing': PbPurpose.KEY_PURPOSE_MESSAGE_SIGNING,
  'event-signing': PbPurpose.KEY_PURPOSE_EVENT_SIGNING,
  'audit-signing': PbPurpose.KEY_PURPOSE_AUDIT_SIGNING,
};
const ALG_TO_PB: Record<KeyAlgorithm, PbAlg> = {
  ES256: PbAlg.SIGNATURE_ALGORITHM_ES256,
  EdDSA: PbAlg.SIGNATURE_ALGORITHM_EDDSA,
};
const ALG_FROM_PB: Partial<Record<PbAlg, KeyAlgorithm>> = {
  [PbAlg.SIGNATURE_ALGORITHM_ES256]: 'ES256',
  [PbAlg.SIGNATURE_ALGORITHM_EDDSA]: 'EdDSA',
};
/** Largest payload the service signs; a JWS header and claims set are far smaller. */
const MAX_SIGN_BYTES = 64 * 1024;

function purposeOf(p: PbPurpose): KeyPurpose {
  const purpose = PURPOSE_FROM_PB[p];
  if (!purpose) throw new AeseError('INVALID_INPUT', 'purpose is required');
  return purpose;
}

function toPb(k: PublishedKey): PublicKey {
  return {
    kid: k.kid,
    algorithm: ALG_TO_PB[k.alg],
    purpose: PURPOSE_TO_PB[k.purpose],
    jwkJson: JSON.stringify(k.publicJwk),
    status: k.status === 'retired' ? KeyStatus.KEY_STATUS_RETIRED : KeyStatus.KEY_STATUS_ACTIVE,
    createdAtMs: k.createdAtMs,
    expiresAtMs: k.expiresAtMs,
  };
}

/** Proto <-> domain for the crypto service. */
/** Rotation with its side effects (event, audit), supplied by the server wiring. */
export type Rotate = (purpose: KeyPurpose, alg: KeyAlgorithm | undefined, actor: string) => ReturnType<KeyCustody['rotate']>;

export function cryptoHandlers(custody: KeyCustody, rotate: Rotate): Handlers {
  return {
    sign: async (req, ctx) => {
      if (req.data.length === 0 || req.data.length > MAX_SIGN_BYTES) {
        throw new AeseError('INVALID_INPUT', `data must be 1..${MAX_SIGN_BYTES} bytes`);
      }
      const out = await custody.sign(ctx.caller, purposeOf(req.purpose), req.data);
      return { kid: out.kid, algorithm: ALG_TO_PB[out.alg], signature: out.signature };
    },
    verify: async req => {
      if (req.kid.length === 0 || req.kid.length > 256) throw new AeseError('INVALID_INPUT', 'kid must be 1..256 characters');
      return { valid: custody.verify(req.kid, req.data, req.signature) };
    },
    getJwks: async () => ({ keys: custody.published().map(toPb) }),
    delegateSigningKey: async (req, ctx) => {
      const out = await custody.delegate(ctx.caller, purposeOf(req.purpose));
      return { kid: out.kid, algorithm: ALG_TO_PB[out.alg], privateKeyPkcs8: out.pkcs8, notAfterMs: out.notAfterMs };
    },
    rotateKey: async (req, ctx) => {
      const alg = req.algorithm === PbAlg.SIGNATURE_ALGORITHM_UNSPECIFIED ? undefined : ALG_FROM_PB[req.algorithm];
      if (req.algorithm !== PbAlg.SIGNATURE_ALGORITHM_UNSPECIFIED && !alg) throw new AeseError('INVALID_INPUT', 'unsupported algorithm');
      const out = await rotate(purposeOf(req.purpose), alg, ctx.caller);
      return { key: toPb(out.key), retiredKid: out.retiredKid ?? '' };
    },
  };
}
