import { AeseError } from '@aese/errors';
import { JSON_MEDIA_TYPE } from './responses.js';
import type { EdgeResponse } from './responses.js';

/** What a published key is for; only some purposes are shown to application servers. */
export type KeyPurpose = 'access-token' | 'message-signing' | 'event-signing' | 'unknown';

/** A public key as the crypto service publishes it. */
export interface PublishedKey {
  readonly kid: string;
  readonly alg: 'ES256' | 'EdDSA' | undefined;
  readonly purpose: KeyPurpose;
  readonly jwkJson: string;
}

export type PublicJwk = Readonly<Record<string, string>>;

/** How long the edge reuses a fetched key set before asking the crypto service again. */
export const DEFAULT_JWKS_TTL_MS = 10_000;
/** How long an old key set may still be served while the crypto service cannot be reached. */
export const DEFAULT_JWKS_MAX_STALE_MS = 5 * 60_000;
/** `Cache-Control: max-age` of the JWKS response, in seconds. */
export const JWKS_MAX_AGE_S = 60;

/**
 * Keys application servers verify with: access tokens, and responses and notifications. Event
 * signing keys sign internal control messages and are not published to the outside.
 */
const PUBLISHED_PURPOSES: ReadonlySet<KeyPurpose> = new Set(['access-token', 'message-signing']);
/** Public members of EC and OKP keys (RFC 7517, 7518, 8037); anything else is dropped. */
const PUBLIC_MEMBERS = ['kty', 'crv', 'x', 'y'] as const;
const CURVES: Readonly<Record<string, string>> = { ES256: 'P-256', EdDSA: 'Ed25519' };

/**
 * One JWK for the outside: only public members are copied (a private `d` in the input can never
 * reach a client), with `kid`, `use: sig` and `alg` always set. A key that is not a well-formed
 * ES256 or EdDSA public key is left out.
 */
export function toPublicJwk(key: PublishedKey): PublicJwk | undefined {
  if (!key.alg || key.kid.length === 0) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(key.jwkJson);
  } catch {
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return undefined;
  const src = parsed as Record<string, unknown>;
  const out: Record<string, string> = {};
  for (const m of PUBLIC_MEMBERS) {
    const v = src[m];
    if (typeof v === 'string') out[m] = v;
  }
  if (out['crv'] !== CURVES[key.alg] || typeof out['x'] !== 'string') return undefined;
  if (key.alg === 'ES256' && (out['kty'] !== 'EC' || typeof out['y'] !== 'string')) return undefined;
  if (key.alg === 'EdDSA' && (out['kty'] !== 'OKP' || 'y' in out)) return undefined;
  return { ...out, kid: key.kid, use: 'sig', alg: key.alg };
}

/** The published JWK Set (RFC 7517 section 5). */
export function renderJwks(keys: readonly PublishedKey[]): { keys: PublicJwk[] } {
  const out: PublicJwk[] = [];
  const seen = new Set<string>();
  for (const k of keys) {
    if (!PUBLISHED_PURPOSES.has(k.purpose) || seen.has(k.kid)) continue;
    const jwk = toPublicJwk(k);
    if (!jwk) continue;
    seen.add(k.kid);
    out.push(jwk);
  }
  return { keys: out };
}

export function jwksResponse(jwks: { keys: PublicJwk[] }): EdgeResponse {
  return {
    status: 200,
    headers: { 'content-type': JSON_MEDIA_TYPE, 'cache-control': `max-age=${JWKS_MAX_AGE_S}` },
    body: jwks,
  };
}

export interface JwksCacheOptions {
  /** Reads the published keys (from the crypto service). */
  readonly fetch: () => Promise<readonly PublishedKey[]>;
  readonly ttlMs?: number;
  readonly maxStaleMs?: number;
  readonly now?: () => number;
}

/**
 * A short-lived in-memory copy of the JWK Set: a burst of JWKS requests costs one call to the
 * crypto service (concurrent misses share it). When the crypto service fails, a copy younger
 * than `maxStaleMs` is still served; without one the failure propagates (503, fail closed).
 */
export class JwksCache {
  private cached: { jwks: { keys: PublicJwk[] }; atMs: number } | undefined;
  private inflight: Promise<{ keys: PublicJwk[] }> | undefined;
  private expired = false;
  private expiries = 0;
  private readonly ttlMs: number;
  private readonly maxStaleMs: number;
  private readonly now: () => number;

  constructor(private readonly options: JwksCacheOptions) {
    this.ttlMs = options.ttlMs ?? DEFAULT_JWKS_TTL_MS;
    this.maxStaleMs = options.maxStaleMs ?? DEFAULT_JWKS_MAX_STALE_MS;
    this.now = options.now ?? Date.now;
  }

  async get(): Promise<{ keys: PublicJwk[] }> {
    const c = this.cached;
    if (c && !this.expired && this.now() - c.atMs < this.ttlMs) return c.jwks;
    let pending = this.inflight;
    if (!pending) {
      const started: Promise<{ keys: PublicJwk[] }> = this.refresh().finally(() => {
        if (this.inflight === started) this.inflight = undefined;
      });
      this.inflight = pending = started;
    }
    try {
      return await pending;
    } catch (err) {
      const stale = this.cached;
      if (stale && this.now() - stale.atMs < this.maxStaleMs) return stale.jwks;
      throw err instanceof AeseError ? err : new AeseError('UNAVAILABLE', 'key set unavailable', { cause: err });
    }
  }

  /**
   * Marks the copy as out of date, so the next read asks the crypto service: a key the edge just
   * started signing with (a new delegated key) is published at once, not after the TTL. The old
   * copy stays as the stale fallback.
   */
  expire(): void {
    this.expiries++;
    this.expired = true;
    // A read already under way may predate the new key: later readers start their own.
    this.inflight = undefined;
  }

  private async refresh(): Promise<{ keys: PublicJwk[] }> {
    const started = this.expiries;
    const jwks = renderJwks(await this.options.fetch());
    if (started === this.expiries) {
      this.cached = { jwks, atMs: this.now() };
      this.expired = false;
    }
    return jwks;
  }
}
