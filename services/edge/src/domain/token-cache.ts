import { hash } from 'node:crypto';
import type { CacheLookups } from '@aese/telemetry';

/** Verified tokens remembered by default; one entry is a few hundred bytes. */
export const DEFAULT_TOKEN_CACHE_SIZE = 10_000;

/** What the authentication service said about a token presented over a certificate. */
export interface VerifiedToken {
  readonly scsAsId: string;
  readonly scopes: readonly string[];
  readonly jti: string;
  /** `exp`, seconds since the epoch. */
  readonly expiresAt: number;
}

interface Entry {
  readonly token: VerifiedToken;
  readonly thumbprint: string;
  readonly untilMs: number;
}

export interface TokenCacheOptions {
  readonly maxEntries?: number;
  readonly now?: () => number;
  /** Counts hits and misses (the hit ratio). */
  readonly lookups?: CacheLookups;
}

/**
 * Token verifications by (token, client certificate thumbprint), kept until the token's `exp`
 * in a bounded LRU, so an AS's repeated requests cost no round trip to the authentication
 * service. The key is a SHA-256 of the token, never the token itself. A verification is bound to
 * the certificate: the same token over another connection's certificate is a miss (and fails
 * verification there, RFC 8705).
 *
 * Entries are dropped explicitly when an AS, a certificate or a token is revoked
 * ({@link invalidateScsAsId}, {@link invalidateThumbprint}, {@link invalidateJti}); the edge wires
 * those to the revocation events.
 */
export class TokenCache {
  private readonly entries = new Map<string, Entry>();
  private readonly maxEntries: number;
  private readonly now: () => number;
  private readonly lookups: CacheLookups | undefined;

  constructor(options: TokenCacheOptions = {}) {
    this.maxEntries = options.maxEntries ?? DEFAULT_TOKEN_CACHE_SIZE;
    this.now = options.now ?? Date.now;
    this.lookups = options.lookups;
  }

  /** The cache key of a token presented with a certificate. */
  static keyOf(token: string, thumbprint: string): string {
    return `${hash('sha256', token, 'base64url')}.${thumbprint}`;
  }

  get size(): number {
    return this.entries.size;
  }

  get(key: string): VerifiedToken | undefined {
    const e = this.entries.get(key);
    if (!e) {
      this.lookups?.miss();
      return undefined;
    }
    if (e.untilMs <= this.now()) {
      this.entries.delete(key);
      this.lookups?.miss();
      return undefined;
    }
    // Least recently used goes first: move this one to the end.
    this.entries.delete(key);
    this.entries.set(key, e);
    this.lookups?.hit();
    return e.token;
  }

  set(key: string, thumbprint: string, token: VerifiedToken): void {
    if (this.maxEntries === 0) return;
    const untilMs = token.expiresAt * 1000;
    if (untilMs <= this.now()) return;
    this.entries.delete(key);
    while (this.entries.size >= this.maxEntries) {
      const oldest = this.entries.keys().next();
      if (oldest.done) break;
      this.entries.delete(oldest.value);
    }
    this.entries.set(key, { token, thumbprint, untilMs });
  }

  /** Drops every verification of an AS's tokens; returns how many. */
  invalidateScsAsId(scsAsId: string): number {
    return this.drop(e => e.token.scsAsId === scsAsId);
  }

  /** Drops every verification made over a certificate; returns how many. */
  invalidateThumbprint(thumbprint: string): number {
    return this.drop(e => e.thumbprint === thumbprint);
  }

  /** Drops the verifications of one token; returns how many. */
  invalidateJti(jti: string): number {
    return this.drop(e => e.token.jti === jti);
  }

  clear(): void {
    this.entries.clear();
  }

  private drop(match: (e: Entry) => boolean): number {
    let n = 0;
    for (const [k, e] of this.entries) {
      if (match(e)) {
        this.entries.delete(k);
        n++;
      }
    }
    return n;
  }
}

/**
 * Verifies tokens through the cache: a hit costs nothing, a miss asks once even when many
 * requests carry the same token at the same moment (they share the one call). Failures are not
 * cached: the next request asks again.
 */
export class CachingTokenVerifier {
  private readonly inflight = new Map<string, Promise<VerifiedToken>>();
  /** Bumped by every invalidation, so a verification that started before one is not cached. */
  private epoch = 0;

  constructor(
    readonly cache: TokenCache,
    private readonly verify: (token: string, certificateDer: Uint8Array) => Promise<VerifiedToken>,
  ) {}

  /** The verified token, from the cache or the authentication service. */
  get(token: string, thumbprint: string, certificateDer: Uint8Array): Promise<VerifiedToken> | VerifiedToken {
    const key = TokenCache.keyOf(token, thumbprint);
    const hit = this.cache.get(key);
    if (hit) return hit;
    let pending = this.inflight.get(key);
    if (!pending) {
      const epoch = this.epoch;
      const settle = (): void => {
        if (this.inflight.get(key) === started) this.inflight.delete(key);
      };
      const started: Promise<VerifiedToken> = this.verify(token, certificateDer).then(
        verified => {
          settle();
          if (epoch === this.epoch) this.cache.set(key, thumbprint, verified);
          return verified;
        },
        (err: unknown) => {
          settle();
          throw err;
        },
      );
      this.inflight.set(key, started);
      pending = started;
    }
    return pending;
  }

  invalidateScsAsId(scsAsId: string): void {
    this.bump();
    this.cache.invalidateScsAsId(scsAsId);
  }

  invalidateThumbprint(thumbprint: string): void {
    this.bump();
    this.cache.invalidateThumbprint(thumbprint);
  }

  invalidateJti(jti: string): void {
    this.bump();
    this.cache.invalidateJti(jti);
  }

  /** Verifications already under way may predate the invalidation: later requests do not join them. */
  private bump(): void {
    this.epoch++;
    this.inflight.clear();
  }
}
