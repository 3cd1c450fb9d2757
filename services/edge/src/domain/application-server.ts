import { createPublicKey } from 'node:crypto';
import type { ResolvedKey } from '@aese/http-signatures';

/** Whether an AS must sign every T8 request (the default) or may send unsigned ones. */
export type SignatureProfile = 'required' | 'optional';

/** A registered public encryption key of an AS (JWK), for JWE of responses. */
export interface EncryptionJwk {
  readonly kid: string;
  readonly jwk: Readonly<Record<string, string>>;
}

/**
 * The onboarded SCS/AS behind a verified client certificate, as the edge needs it for every
 * request on the connection: its request-signing keys ready to verify with, its encryption key,
 * its signature profile and status.
 */
export interface ApplicationServer {
  readonly scsAsId: string;
  readonly active: boolean;
  readonly signatureProfile: SignatureProfile;
  /** Request-signing keys by kid; only these verify this AS's signatures. */
  readonly signingKeys: ReadonlyMap<string, ResolvedKey>;
  readonly encryptionKey: EncryptionJwk | undefined;
  /** Base64url SHA-256 of the certificate this record was resolved for. */
  readonly thumbprint: string;
}

/** Public members of the key types the registry accepts (it refuses anything else at onboarding). */
const PUBLIC_MEMBERS = ['kty', 'crv', 'x', 'y'] as const;

function publicMembers(jwk: Record<string, unknown>): Record<string, string> | undefined {
  const out: Record<string, string> = {};
  for (const m of PUBLIC_MEMBERS) {
    const v = jwk[m];
    if (typeof v === 'string') out[m] = v;
    else if (v !== undefined) return undefined;
  }
  return out;
}

function parseObject(json: string): Record<string, unknown> | undefined {
  try {
    const v: unknown = JSON.parse(json);
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The RFC 9421 algorithm of a registered signing JWK: ECDSA P-256 or Ed25519 (T8 profile
 * section 4). The algorithm comes from the key, never from the request, so a signature cannot
 * choose how it is verified.
 */
function signatureAlgorithmOf(jwk: Record<string, string>): ResolvedKey['alg'] | undefined {
  if (jwk['kty'] === 'EC' && jwk['crv'] === 'P-256' && jwk['y'] !== undefined) return 'ecdsa-p256-sha256';
  if (jwk['kty'] === 'OKP' && jwk['crv'] === 'Ed25519' && jwk['y'] === undefined) return 'ed25519';
  return undefined;
}

/**
 * Parses an AS's registered request-signing keys (public JWKs with a kid) into verification keys
 * by kid. A key that is malformed, private, of another type, or whose kid repeats is left out:
 * a signature naming it then fails as UNKNOWN_KEY, never with a key of the wrong kind.
 */
export function signingKeysOf(jwks: readonly string[]): Map<string, ResolvedKey> {
  const out = new Map<string, ResolvedKey>();
  const repeated = new Set<string>();
  for (const json of jwks) {
    const jwk = parseObject(json);
    if (!jwk || 'd' in jwk || typeof jwk['kid'] !== 'string' || jwk['kid'].length === 0) continue;
    const kid = jwk['kid'];
    const pub = publicMembers(jwk);
    const alg = pub && signatureAlgorithmOf(pub);
    if (!pub || !alg) continue;
    if (out.has(kid) || repeated.has(kid)) {
      out.delete(kid);
      repeated.add(kid);
      continue;
    }
    try {
      out.set(kid, { alg, key: createPublicKey({ key: pub, format: 'jwk' }) });
    } catch {
      // Off-curve or otherwise unusable: left out.
    }
  }
  return out;
}

/** An AS's registered encryption key (ECDH-ES on P-256 or X25519), or undefined when none or malformed. */
export function encryptionKeyOf(json: string): EncryptionJwk | undefined {
  if (json === '') return undefined;
  const jwk = parseObject(json);
  if (!jwk || 'd' in jwk || typeof jwk['kid'] !== 'string' || jwk['kid'].length === 0) return undefined;
  const pub = publicMembers(jwk);
  if (!pub) return undefined;
  const fits = (pub['kty'] === 'EC' && pub['crv'] === 'P-256' && pub['y'] !== undefined) || (pub['kty'] === 'OKP' && pub['crv'] === 'X25519' && pub['y'] === undefined);
  return fits ? { kid: jwk['kid'], jwk: pub } : undefined;
}

/** Parsed key sets remembered; an entry is one AS registration's keys. */
const MAX_PARSED_KEY_SETS = 1_000;

/**
 * Parses registered keys once per registration rather than once per connection: every new
 * connection of an AS resolves its identity again, and building key objects from JWKs is the
 * costly part of that. Keyed by the registered JSON itself, so a changed registration is parsed
 * afresh and an old one is never mistaken for it.
 */
export class RegisteredKeyCache {
  private readonly parsed = new Map<string, { signingKeys: Map<string, ResolvedKey>; encryptionKey: EncryptionJwk | undefined }>();

  keysOf(signingKeysJson: readonly string[], encryptionKeyJson: string): { signingKeys: ReadonlyMap<string, ResolvedKey>; encryptionKey: EncryptionJwk | undefined } {
    const key = JSON.stringify([signingKeysJson, encryptionKeyJson]);
    let hit = this.parsed.get(key);
    if (!hit) {
      if (this.parsed.size >= MAX_PARSED_KEY_SETS) this.parsed.clear();
      hit = { signingKeys: signingKeysOf(signingKeysJson), encryptionKey: encryptionKeyOf(encryptionKeyJson) };
      this.parsed.set(key, hit);
    }
    return hit;
  }
}
