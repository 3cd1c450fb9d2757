import type { InvokeCall } from '../t8-handler.js';

/** Default of EDGE_ANSWER_REUSE_MAX_AGE_MS: the longest a reusable answer is given again. */
export const DEFAULT_ANSWER_REUSE_MAX_AGE_MS = 1_000;
/**
 * Its largest value: the bound on staleness should a withdrawal not arrive (a stream gone silent
 * is found by its keepalive only after 15 s). It may not exceed STALENESS_BOUND_MS either.
 */
export const MAX_ANSWER_REUSE_MAX_AGE_MS = 5_000;
/** Most answers held at once, and for one AS; the oldest make room. */
export const MAX_REUSABLE_ANSWERS = 10_000;
export const MAX_REUSABLE_ANSWERS_PER_AS = 1_000;
/** Most body bytes held at once, and most of one answer (a larger one is never kept). */
export const MAX_REUSABLE_BYTES = 32 * 1024 * 1024;
export const MAX_REUSABLE_ANSWER_BYTES = 64 * 1024;

interface Entry<A> {
  readonly answer: A;
  readonly scsAsId: string;
  readonly storedAtMs: number;
  readonly bytes: number;
}

/** Hits and misses, for tests and metrics. */
export interface ReuseStats {
  readonly hits: number;
  readonly misses: number;
}

/**
 * Answers capability-exposure marked reusable (InvokeResponse.reusable), given again to the same
 * SCS/AS for the same call without the hop, until capability-exposure withdraws them on the
 * stream they came on: a resource of the AS changed, the policy in force changed, or its copies
 * may be stale. The edge itself withdraws an AS's answers around each of that AS's writes and
 * everything when the stream ends.
 *
 * An answer is kept only if no withdrawal for its AS (or of everything) arrived between its call
 * being sent and its answer being offered ({@link epochOf}): one read before a change but
 * answered after the change was withdrawn is never kept. Every entry also ages out after `maxAgeMs`, a bound on any staleness whatever
 * happened to a withdrawal. Every security check of the request still runs before a lookup; only
 * capability-exposure's work is saved.
 */
export class ReusableAnswers<A> {
  private readonly entries = new Map<string, Entry<A>>();
  private readonly keysByAs = new Map<string, Set<string>>();
  /** Withdrawals of everything, and of each AS since the last of those. */
  private withdrawals = 0;
  private readonly asWithdrawals = new Map<string, number>();
  private bytes = 0;
  private hits = 0;
  private misses = 0;

  constructor(
    private readonly maxAgeMs: number,
    private readonly maxEntries = MAX_REUSABLE_ANSWERS,
    private readonly now: () => number = () => performance.now(),
    private readonly lookups?: { hit(): void; miss(): void },
  ) {}

  /** The key of a call whose answer may be reusable (a body-less GET); undefined for every other call. */
  static keyOf(call: InvokeCall): string | undefined {
    if (call.method !== 'GET' || call.body.length > 0) return undefined;
    return [call.scsAsId, call.path, call.contentType, call.apiRoot, [...call.scopes].sort().join(' ')].join('\n');
  }

  /**
   * Counts the withdrawals that concern an AS: taken when its call is sent, compared when the
   * answer is offered. Every withdrawal of everything counts for every AS.
   */
  epochOf(scsAsId: string): string {
    return `${this.withdrawals}.${this.asWithdrawals.get(scsAsId) ?? 0}`;
  }

  get stats(): ReuseStats {
    return { hits: this.hits, misses: this.misses };
  }

  /** The answer to give again, if one is held and young enough. */
  lookup(key: string): A | undefined {
    const entry = this.entries.get(key);
    if (entry !== undefined && this.now() - entry.storedAtMs <= this.maxAgeMs) {
      this.hits += 1;
      this.lookups?.hit();
      return entry.answer;
    }
    if (entry !== undefined) this.remove(key, entry);
    this.misses += 1;
    this.lookups?.miss();
    return undefined;
  }

  /**
   * Keeps a reusable answer of `bytes` body bytes, unless anything was withdrawn since its call
   * was sent at `sentAtEpoch` or it is larger than one answer may be.
   */
  offer(key: string, scsAsId: string, answer: A, sentAtEpoch: string, bytes: number): void {
    if (this.maxAgeMs <= 0 || this.maxEntries <= 0 || sentAtEpoch !== this.epochOf(scsAsId) || bytes > MAX_REUSABLE_ANSWER_BYTES) return;
    const old = this.entries.get(key);
    if (old !== undefined) this.remove(key, old);
    const own = this.keysByAs.get(scsAsId);
    if (own !== undefined && own.size >= MAX_REUSABLE_ANSWERS_PER_AS) {
      const oldestOwn = own.values().next().value as string;
      this.remove(oldestOwn, this.entries.get(oldestOwn)!);
    }
    while (this.entries.size >= this.maxEntries || (this.entries.size > 0 && this.bytes + bytes > MAX_REUSABLE_BYTES)) {
      const [oldestKey, oldest] = this.entries.entries().next().value as [string, Entry<A>];
      this.remove(oldestKey, oldest);
    }
    this.entries.set(key, { answer, scsAsId, storedAtMs: this.now(), bytes });
    this.bytes += bytes;
    let keys = this.keysByAs.get(scsAsId);
    if (keys === undefined) this.keysByAs.set(scsAsId, (keys = new Set()));
    keys.add(key);
  }

  /** Drops the answers given to these ASs; calls in flight are not kept either. */
  withdrawAs(scsAsIds: readonly string[]): void {
    for (const scsAsId of scsAsIds) {
      this.asWithdrawals.set(scsAsId, (this.asWithdrawals.get(scsAsId) ?? 0) + 1);
      for (const key of this.keysByAs.get(scsAsId) ?? []) {
        this.bytes -= this.entries.get(key)?.bytes ?? 0;
        this.entries.delete(key);
      }
      this.keysByAs.delete(scsAsId);
    }
  }

  /** Drops every answer; calls in flight are not kept either. */
  withdrawAll(): void {
    this.withdrawals += 1;
    // Every AS's count starts again under the new count of everything, so the map stays small.
    this.asWithdrawals.clear();
    this.entries.clear();
    this.keysByAs.clear();
    this.bytes = 0;
  }

  private remove(key: string, entry: Entry<A>): void {
    this.entries.delete(key);
    this.bytes -= entry.bytes;
    const keys = this.keysByAs.get(entry.scsAsId);
    keys?.delete(key);
    if (keys?.size === 0) this.keysByAs.delete(entry.scsAsId);
  }
}
