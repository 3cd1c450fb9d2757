import { createPublicKey, verify } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import type { JWK } from 'jose';
import { KeyPurpose } from '@aese/protos/common/v1';
import type { PublicKey } from '@aese/protos/crypto/v1';

/** Signs control events; in the mesh this is the crypto service with an event-signing key. */
export interface EventSigner {
  sign(data: Uint8Array): Promise<{ kid: string; signature: Uint8Array }>;
}

/** Verifies control-event signatures. */
export interface EventVerifier {
  verify(kid: string, data: Uint8Array, signature: Uint8Array): Promise<boolean>;
}

/** The exact bytes an event signature covers: the subject, type and version bind the payload. */
export function signedBytes(subject: string, type: string, version: number, payload: Uint8Array): Uint8Array {
  const head = Buffer.from(`aese-control-event/v1\n${subject}\n${type}\n${version}\n`, 'utf8');
  return Buffer.concat([head, payload]);
}

/** An unknown kid refreshes the key set at most once per this interval. */
export const EVENT_KEY_REFRESH_COOLDOWN_MS = 2_000;

/**
 * Verifies with locally cached public keys (JWKs of the event-signing purpose), fetched from the
 * key custodian on an unknown kid at most once per cooldown: a flood of forged kids costs nothing.
 */
export class JwksEventVerifier implements EventVerifier {
  private keys = new Map<string, { alg: string; key: KeyObject }>();
  private lastFetch = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly fetchKeys: () => Promise<JWK[]>,
    private readonly now: () => number = Date.now,
  ) {}

  async verify(kid: string, data: Uint8Array, signature: Uint8Array): Promise<boolean> {
    let entry = this.keys.get(kid);
    if (!entry && this.now() - this.lastFetch >= EVENT_KEY_REFRESH_COOLDOWN_MS) {
      await this.refresh();
      entry = this.keys.get(kid);
    }
    if (!entry) return false;
    try {
      const digest = entry.alg === 'ES256' ? 'sha256' : null;
      return verify(digest, data, { key: entry.key, dsaEncoding: 'ieee-p1363' }, signature);
    } catch {
      return false;
    }
  }

  private async refresh(): Promise<void> {
    this.lastFetch = this.now();
    const next = new Map<string, { alg: string; key: KeyObject }>();
    for (const jwk of await this.fetchKeys()) {
      if (!jwk.kid || (jwk.alg !== 'ES256' && jwk.alg !== 'EdDSA')) continue;
      next.set(jwk.kid, { alg: jwk.alg, key: createPublicKey({ key: jwk as never, format: 'jwk' }) });
    }
    this.keys = next;
  }
}

/** The event-signing public keys in a crypto `GetJwks` answer: what control-event verifiers trust. */
export function eventSigningJwks(keys: readonly PublicKey[]): JWK[] {
  return keys.filter(k => k.purpose === KeyPurpose.KEY_PURPOSE_EVENT_SIGNING).map(k => JSON.parse(k.jwkJson) as JWK);
}
