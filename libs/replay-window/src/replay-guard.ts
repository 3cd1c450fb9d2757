import { AeseError } from '@aese/errors';
import { assertReplayCheck, nonceKey } from './nonce-key.js';
import type { ReplayCheck } from './nonce-key.js';

/** What the guard says about a request it could decide. Undecidable requests throw UNAVAILABLE. */
export const VERDICTS = ['accepted', 'replayed', 'stale', 'future'] as const;
export type Verdict = (typeof VERDICTS)[number];

/**
 * Where nonces are remembered. Implementations must be shared by every replica and must answer
 * "already there" only when the key really exists; when they cannot tell, they throw (UNAVAILABLE).
 */
export interface NonceStore {
  /**
   * Records `key` unless it exists: true if newly recorded, false if it already existed. The key
   * must be kept at least `ttlMs`. Throws an AeseError UNAVAILABLE when the outcome is unknown
   * (store unreachable, timeout, `signal` aborted).
   */
  recordOnce(key: string, ttlMs: number, signal?: AbortSignal): Promise<boolean>;
  /**
   * The time (ms since the epoch) from which the store provably holds every key recorded, or
   * undefined when it has never lost one (a durable store). The guard refuses to decide requests
   * that could have been recorded before that time.
   */
  historySinceMs(): number | undefined;
}

/** Extra seconds a nonce is kept beyond window + skew: whole-second rounding plus clock drift between replicas. */
export const STORE_TTL_MARGIN_S = 5;

export interface ReplayGuardOptions {
  readonly store: NonceStore;
  /** How old `created` may be, in seconds. */
  readonly windowS: number;
  /** How far in the future `created` may be, in seconds (client clock ahead of ours). */
  readonly skewS: number;
  /** The clock, ms since the epoch; injected so tests can freeze it. */
  readonly now?: () => number;
  /** Told of every refusal by verdict, and of every request it could not decide (`unavailable`). */
  readonly refusals?: { refused(verdict: string): void };
}

/**
 * How long a nonce must stay in the store. A nonce recorded at t has `created` <= t + skew and is
 * accepted until `created` + window (+1 s of whole-second rounding): window + skew + 1 s after t
 * at most. The margin also absorbs a replica whose clock is a few seconds behind the others.
 */
export function nonceTtlMs(windowS: number, skewS: number): number {
  return (windowS + skewS + STORE_TTL_MARGIN_S) * 1000;
}

/**
 * Accepts each (scsAsId, nonce) once while its `created` is inside `[now - window, now + skew]`
 * (whole seconds, both ends included). The window is checked before the store is touched, so
 * stale and future requests cost nothing and write nothing. It fails closed: when the store
 * cannot answer, or cannot vouch for the period a request could have been seen in, the guard
 * throws UNAVAILABLE and never says "accepted".
 */
export class ReplayGuard {
  readonly windowS: number;
  readonly skewS: number;
  readonly ttlMs: number;
  private readonly store: NonceStore;
  private readonly now: () => number;
  private readonly refusals: ReplayGuardOptions['refusals'];

  constructor(options: ReplayGuardOptions) {
    if (!Number.isInteger(options.windowS) || options.windowS < 1) throw new TypeError('windowS must be a positive integer');
    if (!Number.isInteger(options.skewS) || options.skewS < 0) throw new TypeError('skewS must be a non-negative integer');
    this.store = options.store;
    this.windowS = options.windowS;
    this.skewS = options.skewS;
    this.ttlMs = nonceTtlMs(options.windowS, options.skewS);
    this.now = options.now ?? Date.now;
    this.refusals = options.refusals;
  }

  /** Decides one request; see the class comment. Throws INVALID_INPUT for malformed input. */
  async check(input: ReplayCheck, signal?: AbortSignal): Promise<Verdict> {
    assertReplayCheck(input);
    if (!this.refusals) return this.decide(input, signal);
    let verdict: Verdict;
    try {
      verdict = await this.decide(input, signal);
    } catch (err) {
      if (err instanceof AeseError && err.code === 'UNAVAILABLE') this.refusals.refused('unavailable');
      throw err;
    }
    if (verdict !== 'accepted') this.refusals.refused(verdict);
    return verdict;
  }

  private async decide(input: ReplayCheck, signal: AbortSignal | undefined): Promise<Verdict> {
    const nowS = Math.floor(this.now() / 1000);
    if (input.created < nowS - this.windowS) return 'stale';
    if (input.created > nowS + this.skewS) return 'future';
    const since = this.store.historySinceMs();
    // A nonce recorded before the store lost its history had created <= (loss time + skew).
    if (since !== undefined && input.created <= Math.floor(since / 1000) + this.skewS) {
      throw new AeseError('UNAVAILABLE', 'the replay store cannot vouch for requests created before it last lost its history; sign the request again');
    }
    if (signal?.aborted) throw new AeseError('UNAVAILABLE', 'the call was abandoned before the replay check');
    let recorded: boolean;
    try {
      recorded = await this.store.recordOnce(nonceKey(input.scsAsId, input.nonce), this.ttlMs, signal);
    } catch (err) {
      if (err instanceof AeseError) throw err;
      throw new AeseError('UNAVAILABLE', 'the replay store failed; the request cannot be decided', { cause: err });
    }
    return recorded ? 'accepted' : 'replayed';
  }
}
