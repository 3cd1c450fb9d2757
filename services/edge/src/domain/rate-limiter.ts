/** Requests per second each AS may make when nothing else is configured. */
export const DEFAULT_RATE_LIMIT_PER_S = 100;
/** Requests an AS may make at once after being idle (the bucket's capacity). */
export const DEFAULT_RATE_LIMIT_BURST = 200;
/** How long a lower limit learnt from an authorization decision applies without being seen again. */
export const DEFAULT_OVERRIDE_TTL_MS = 5 * 60_000;
/** Buckets kept before idle ones (full again) are dropped; an AS's bucket is a few numbers. */
const MAX_BUCKETS = 10_000;

/** The answer of {@link RateLimiter.take}. */
export type RateDecision = { readonly allowed: true } | { readonly allowed: false; readonly retryAfterS: number };

export interface RateLimiterOptions {
  readonly perSecond: number;
  readonly burst: number;
  readonly overrideTtlMs?: number;
  readonly now?: () => number;
}

interface Bucket {
  tokens: number;
  atMs: number;
  /** A lower rate an authorization decision asked for, and until when it holds. */
  override?: { perSecond: number; untilMs: number };
}

/**
 * A token bucket per SCS/AS, in memory, checked before the edge reads a body or calls any
 * service: a flood from one AS empties only its own bucket (SECURITY-TESTS 8, 53). An
 * authorization decision may carry a `rate-limit` obligation; it can lower an AS's rate (never
 * raise it above the configured one) and holds while decisions keep repeating it.
 *
 * Limits are per edge replica: N replicas admit up to N times the rate in total, which is what a
 * per-replica bucket without a shared store can promise.
 */
export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private readonly now: () => number;
  private readonly overrideTtlMs: number;

  constructor(private readonly options: RateLimiterOptions) {
    if (!(options.perSecond > 0) || !(options.burst >= 1)) throw new TypeError('rate limits must be positive');
    this.now = options.now ?? Date.now;
    this.overrideTtlMs = options.overrideTtlMs ?? DEFAULT_OVERRIDE_TTL_MS;
  }

  /** Takes one token of `scsAsId`'s bucket, or says how many whole seconds until one is there. */
  take(scsAsId: string): RateDecision {
    const now = this.now();
    const bucket = this.bucketOf(scsAsId, now);
    const { perSecond, burst } = this.limitsOf(bucket, now);
    bucket.tokens = Math.min(burst, bucket.tokens + ((now - bucket.atMs) / 1000) * perSecond);
    bucket.atMs = now;
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return { allowed: true };
    }
    return { allowed: false, retryAfterS: Math.max(1, Math.ceil((1 - bucket.tokens) / perSecond)) };
  }

  /**
   * Applies a `rate-limit` obligation seen for an AS: its rate becomes `perSecond` if that is
   * lower than the configured one. A malformed or non-positive value is ignored (the configured
   * limit stays, which is the stricter of the two only if the obligation was wrong).
   */
  lower(scsAsId: string, perSecond: number): void {
    if (!Number.isFinite(perSecond) || perSecond <= 0) return;
    const now = this.now();
    const bucket = this.bucketOf(scsAsId, now);
    bucket.override = { perSecond, untilMs: now + this.overrideTtlMs };
    bucket.tokens = Math.min(bucket.tokens, this.limitsOf(bucket, now).burst);
  }

  /** Forgets everything known about an AS (its bucket starts full again). */
  forget(scsAsId: string): void {
    this.buckets.delete(scsAsId);
  }

  /** The rate and burst that apply to an AS now. */
  limitsFor(scsAsId: string): { perSecond: number; burst: number } {
    const bucket = this.buckets.get(scsAsId);
    return bucket ? this.limitsOf(bucket, this.now()) : { perSecond: this.options.perSecond, burst: this.options.burst };
  }

  private limitsOf(bucket: Bucket, now: number): { perSecond: number; burst: number } {
    const o = bucket.override;
    if (!o || o.untilMs <= now || o.perSecond >= this.options.perSecond) {
      return { perSecond: this.options.perSecond, burst: this.options.burst };
    }
    // A lowered rate lowers the burst in proportion: at most one second's worth, at least one.
    return { perSecond: o.perSecond, burst: Math.min(this.options.burst, Math.max(1, Math.ceil(o.perSecond))) };
  }

  private bucketOf(scsAsId: string, now: number): Bucket {
    let bucket = this.buckets.get(scsAsId);
    if (!bucket) {
      if (this.buckets.size >= MAX_BUCKETS) this.prune(now);
      bucket = { tokens: this.options.burst, atMs: now };
      this.buckets.set(scsAsId, bucket);
    }
    return bucket;
  }

  /** Drops buckets that have refilled completely and carry no live override: forgetting them changes nothing. */
  private prune(now: number): void {
    for (const [id, b] of this.buckets) {
      const { perSecond, burst } = this.limitsOf(b, now);
      const full = b.tokens + ((now - b.atMs) / 1000) * perSecond >= burst;
      if (full && (!b.override || b.override.untilMs <= now)) this.buckets.delete(id);
    }
  }
}
