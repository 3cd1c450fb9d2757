import { createPrivateKey } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { AeseError } from '@aese/errors';
import type { SignatureAlgorithm } from '@aese/http-signatures';

/** A delegated key is not used in its last seconds: a signature made then could outlive it. */
export const DELEGATED_KEY_SAFETY_MS = 5_000;
/** Renewal starts when this share of a key's lifetime is left (or one minute, if longer, up to half). */
const RENEW_SHARE = 0.2;
const RENEW_MIN_MS = 60_000;
/** After a failed renewal, wait this long before asking again (while the current key still serves). */
const RETRY_MS = 1_000;

/** What the crypto service hands over (DelegateSigningKey): the private key in memory only. */
export interface DelegatedKeyGrant {
  readonly kid: string;
  readonly alg: SignatureAlgorithm;
  readonly pkcs8: Uint8Array;
  readonly notAfterMs: number;
}

/** A signing key the edge may use now. */
export interface SigningKey {
  readonly kid: string;
  readonly alg: SignatureAlgorithm;
  readonly key: KeyObject;
  readonly notAfterMs: number;
}

export interface DelegatedSigningKeyOptions {
  /** Asks the crypto service for a fresh delegated message-signing key. */
  readonly fetch: () => Promise<DelegatedKeyGrant>;
  /** Called with each new kid (the edge refreshes its JWKS copy so the key is published). */
  readonly onNewKey?: (kid: string) => void;
  readonly onRenewalError?: (err: unknown) => void;
  readonly now?: () => number;
}

/**
 * The short-lived message-signing key the crypto service delegates to this edge, so that signing
 * a T8 response costs no round trip (issue 3, "Edge efficiency"). The private key lives in this
 * object only, never on disk or in logs. It is renewed in the background well before it expires
 * (the crypto service publishes each delegated key in the JWKS for as long as its signatures can
 * be checked); when no usable key can be had, {@link current} throws UNAVAILABLE and the edge
 * answers 503 before executing anything.
 */
export class DelegatedSigningKey {
  private key: SigningKey | undefined;
  private renewAtMs = 0;
  private retryAtMs = 0;
  private inflight: Promise<SigningKey> | undefined;
  private readonly now: () => number;

  constructor(private readonly options: DelegatedSigningKeyOptions) {
    this.now = options.now ?? Date.now;
  }

  /** The key, if one is usable right now; starts a renewal in the background when it is due. */
  usable(): SigningKey | undefined {
    const now = this.now();
    const key = this.key;
    if (key && now >= this.renewAtMs && now >= this.retryAtMs) {
      this.renew().catch(() => undefined);
    }
    return key && now < key.notAfterMs - DELEGATED_KEY_SAFETY_MS ? key : undefined;
  }

  /** A usable key, asking the crypto service for one when there is none. */
  async current(): Promise<SigningKey> {
    const key = this.usable();
    if (key) return key;
    try {
      return await this.renew();
    } catch (err) {
      throw err instanceof AeseError ? err : new AeseError('UNAVAILABLE', 'no message-signing key', { cause: err });
    }
  }

  /** Fetches a new key now (concurrent callers share one request). */
  renew(): Promise<SigningKey> {
    this.inflight ??= this.fetch().finally(() => {
      this.inflight = undefined;
    });
    return this.inflight;
  }

  /** Drops the private key (at stop). */
  clear(): void {
    this.key = undefined;
  }

  private async fetch(): Promise<SigningKey> {
    let grant: DelegatedKeyGrant;
    try {
      grant = await this.options.fetch();
    } catch (err) {
      this.retryAtMs = this.now() + RETRY_MS;
      this.options.onRenewalError?.(err);
      throw err;
    }
    const now = this.now();
    if (grant.notAfterMs - DELEGATED_KEY_SAFETY_MS <= now) {
      this.retryAtMs = now + RETRY_MS;
      throw new AeseError('UNAVAILABLE', 'the delegated signing key is already expired');
    }
    const key: SigningKey = {
      kid: grant.kid,
      alg: grant.alg,
      key: createPrivateKey({ key: Buffer.from(grant.pkcs8), format: 'der', type: 'pkcs8' }),
      notAfterMs: grant.notAfterMs,
    };
    const lifetime = grant.notAfterMs - now;
    // Never before half the lifetime, so a short delegation cannot turn into a renewal per request.
    this.renewAtMs = grant.notAfterMs - Math.min(lifetime / 2, Math.max(RENEW_MIN_MS, lifetime * RENEW_SHARE));
    const isNew = this.key?.kid !== key.kid;
    this.key = key;
    if (isNew) this.options.onNewKey?.(key.kid);
    return key;
  }
}
