import type { CacheLookups } from '@aese/telemetry';
import type { Decide, Decision, DecisionRequest } from './decision.js';

/** Decisions remembered for the current policy version (0 turns the cache off). */
export const DEFAULT_DECISION_CACHE_SIZE = 10_000;

/** Where the cache learns which policy version is in force, and whether it may trust that. */
export interface PolicyVersionSource {
  /**
   * The version in force, or undefined when it is unknown or cannot be trusted right now (the
   * watch is down beyond the staleness bound): then nothing is served from the cache.
   */
  current(): number | undefined;
}

/** Counters for tests and logs. */
export interface DecisionCacheStats {
  /** Decisions answered from the cache. */
  readonly hits: number;
  /** Decisions asked of the decision point. */
  readonly asked: number;
}

/**
 * Remembers allow and deny decisions (with their obligations) per policy version in a bounded
 * LRU, so a repeated T8 request costs no Decide round trip. A decision is served only while its
 * version is the one in force: the entry's version is part of the key, the cache is emptied on
 * every change seen on the policy watch, and a decision that comes back under any other version
 * than the current one is not remembered. When the version cannot be trusted the cache steps
 * aside and every request asks the decision point (which fails closed by itself).
 */
export class DecisionCache {
  private readonly entries = new Map<string, Decision>();
  private hits = 0;
  private asked = 0;

  constructor(
    private readonly inner: Decide,
    private readonly versions: PolicyVersionSource,
    private readonly maxEntries = DEFAULT_DECISION_CACHE_SIZE,
    private readonly lookups?: CacheLookups,
  ) {}

  /** A {@link Decide} that answers from the cache when it may. */
  readonly decide: Decide = async request => {
    const version = this.versions.current();
    if (version !== undefined && this.maxEntries > 0) {
      const key = cacheKey(version, request);
      const hit = this.entries.get(key);
      if (hit) {
        // Refresh its place in the LRU order.
        this.entries.delete(key);
        this.entries.set(key, hit);
        this.hits += 1;
        this.lookups?.hit();
        return hit;
      }
    }
    this.asked += 1;
    this.lookups?.miss();
    const decision = await this.inner(request);
    // The version may have moved while the question was out: remember only a current answer.
    // Denials are not remembered: each one goes to the authorization service, which audits it.
    if (this.maxEntries > 0 && decision.allowed && decision.policyVersion === this.versions.current()) {
      this.entries.set(cacheKey(decision.policyVersion, request), freeze(decision));
      if (this.entries.size > this.maxEntries) this.entries.delete(this.entries.keys().next().value!);
    }
    return decision;
  };

  /** Forgets everything: called on every change of the policy store. */
  clear(): void {
    this.entries.clear();
  }

  get size(): number {
    return this.entries.size;
  }

  stats(): DecisionCacheStats {
    return { hits: this.hits, asked: this.asked };
  }
}

function cacheKey(version: number, r: DecisionRequest): string {
  return JSON.stringify([version, r.scsAsId, r.api, r.operation, [...r.dataCategories].sort(), [...r.targets].sort(), r.pathScsAsId]);
}

function freeze(d: Decision): Decision {
  return Object.freeze({
    allowed: d.allowed,
    policyVersion: d.policyVersion,
    denyCause: d.denyCause,
    obligations: Object.freeze(d.obligations.map(o => Object.freeze({ type: o.type, parameters: Object.freeze({ ...o.parameters }) }))),
  });
}
