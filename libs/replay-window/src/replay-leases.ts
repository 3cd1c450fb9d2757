import type { KV, NatsConnection } from 'nats';
import { AeseError } from '@aese/errors';
import type { Logger } from '@aese/logger';
import { JS_ERRORS, jsErrorCode, KV_BUCKETS, openKv } from '@aese/nats';
import { asTokenOf } from './nonce-key.js';

/** Which process holds each AS's replay window: one key per AS, expiring with the bucket's max age. */
export const REPLAY_LEASES_BUCKET = KV_BUCKETS.replayLeases;
/** How long a lease lives without renewal. */
export const DEFAULT_REPLAY_LEASE_MS = 10_000;
/** A held lease is given up after this long without a request for its AS, so another edge may take it. */
const IDLE_RELEASE_FACTOR = 3;
/** After a failed attempt to take an AS's lease, how long before the next. */
const RETRY_AFTER_MS = 1_000;

export interface ReplayLeasesOptions {
  /** This process, as other holders see it (an edge instance id). */
  readonly holder: string;
  readonly leaseMs?: number;
  readonly logger: Logger;
  /** The takeover barrier: reads the AS's whole history before this process decides for it. */
  readonly prepare: (asToken: string) => Promise<void>;
  /** Monotonic clock (ms); tests may replace it. */
  readonly now?: () => number;
}

interface Held {
  revision: number;
  /** Until when this process may decide for the AS (monotonic ms), from the last renewal sent. */
  validUntil: number;
  lastUsed: number;
}

/**
 * Explicit ownership of per-AS replay windows among edges. An edge decides replays for an AS in
 * its own memory only while it holds that AS's lease; for every other AS it asks the replay-guard
 * service, so a non-owner never decides alone.
 *
 * A lease is a KV key created only if absent (`create`) and renewed only at the revision its
 * holder last wrote (`update`), in a bucket whose max age is the lease time: a holder that stops
 * renewing loses it when the key ages out, and only then can another edge create it. A new holder
 * reads the AS's whole nonce history before it decides anything (the takeover barrier). A holder
 * counts its lease from when it sent the last renewal, so it gives up deciding before the key can
 * age out on the server. Safety does not rest on these clocks: every nonce is appended with an
 * expected-last-sequence check on the AS's subject (StreamNonceStore), so two deciders can never
 * both call a nonce fresh; the lease keeps them from contending.
 */
export class ReplayLeases {
  private readonly held = new Map<string, Held>();
  private readonly attempts = new Map<string, number>();
  private readonly leaseMs: number;
  private readonly now: () => number;
  private readonly renewer: NodeJS.Timeout;
  private closed = false;
  /** The renewal round in flight, if any. */
  private renewing: Promise<void> | undefined;

  private constructor(
    private readonly kv: KV,
    private readonly options: ReplayLeasesOptions,
  ) {
    this.leaseMs = options.leaseMs ?? DEFAULT_REPLAY_LEASE_MS;
    this.now = options.now ?? (() => performance.now());
    this.renewer = setInterval(() => void this.renew(), Math.max(100, Math.floor(this.leaseMs / 3))).unref();
  }

  static async open(nc: NatsConnection, options: ReplayLeasesOptions): Promise<ReplayLeases> {
    const leaseMs = options.leaseMs ?? DEFAULT_REPLAY_LEASE_MS;
    const kv = await openKv(nc, REPLAY_LEASES_BUCKET, { ttl: leaseMs });
    // The bucket's max age is what ends a silent holder's lease: it must be the lease time.
    const ttl = (await kv.status()).ttl;
    if (ttl !== leaseMs) {
      throw new AeseError(
        'FAILED_PRECONDITION',
        `KV bucket ${REPLAY_LEASES_BUCKET} expires leases after ${ttl} ms, not the configured ${leaseMs} ms: give every edge the same EDGE_REPLAY_LEASE_MS, or have the JetStream administrator set the bucket's max age`,
      );
    }
    return new ReplayLeases(kv, options);
  }

  /** Whether this process may decide for the AS now (the hot path: a map lookup). */
  owns(scsAsId: string): boolean {
    const h = this.held.get(scsAsId);
    if (!h) return false;
    const now = this.now();
    if (now >= h.validUntil) return false;
    h.lastUsed = now;
    return true;
  }

  /** Tries, in the background, to take the AS's lease if no one holds it. */
  want(scsAsId: string): void {
    if (this.closed || this.held.has(scsAsId)) return;
    const now = this.now();
    const last = this.attempts.get(scsAsId);
    if (last !== undefined && now - last < RETRY_AFTER_MS) return;
    this.attempts.set(scsAsId, now);
    void this.acquire(scsAsId).catch((err: unknown) => this.options.logger.debug({ err, scsAsId }, 'replay lease not taken'));
  }

  /** The ASes whose windows this process holds. */
  holding(): string[] {
    return [...this.held.keys()];
  }

  /** Gives every lease back (on stop), so another edge can take over at once. */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.renewer);
    // A renewal in flight would write a revision the deletes below do not name, keeping the lease.
    await this.renewing?.catch(() => undefined);
    const held = [...this.held];
    this.held.clear();
    await Promise.all(held.map(([scsAsId, h]) => this.kv.delete(asTokenOf(scsAsId), { previousSeq: h.revision }).catch(() => undefined)));
  }

  private value(): Uint8Array {
    return Buffer.from(JSON.stringify({ holder: this.options.holder }));
  }

  private async acquire(scsAsId: string): Promise<void> {
    const key = asTokenOf(scsAsId);
    const sentAt = this.now();
    // Refused when the key exists: another edge holds the lease.
    const revision = await this.kv.create(key, this.value());
    try {
      await this.options.prepare(key);
    } catch (err) {
      await this.kv.delete(key, { previousSeq: revision }).catch(() => undefined);
      throw err;
    }
    if (this.closed) {
      await this.kv.delete(key, { previousSeq: revision }).catch(() => undefined);
      return;
    }
    this.held.set(scsAsId, { revision, validUntil: sentAt + this.leaseMs * 0.8, lastUsed: this.now() });
    this.options.logger.info({ scsAsId }, 'replay window of the AS taken over by this edge');
  }

  private async renew(): Promise<void> {
    // A slow round must not overlap the next: two updates at one revision would drop a held lease.
    if (this.renewing) return;
    this.renewing = this.renewHeld().finally(() => {
      this.renewing = undefined;
    });
    await this.renewing;
  }

  private async renewHeld(): Promise<void> {
    for (const [scsAsId, h] of this.held) {
      const key = asTokenOf(scsAsId);
      const sentAt = this.now();
      if (sentAt - h.lastUsed > this.leaseMs * IDLE_RELEASE_FACTOR) {
        this.held.delete(scsAsId);
        await this.kv.delete(key, { previousSeq: h.revision }).catch(() => undefined);
        continue;
      }
      try {
        h.revision = await this.kv.update(key, this.value(), h.revision);
        h.validUntil = sentAt + this.leaseMs * 0.8;
      } catch (err) {
        // Taken by another edge, or NATS unreachable: stop deciding for the AS (the lease lapses).
        if (this.held.get(scsAsId) === h && this.now() >= h.validUntil) this.held.delete(scsAsId);
        if (isWrongRevision(err)) this.held.delete(scsAsId);
        this.options.logger.debug({ err: err instanceof AeseError ? err : String(err), scsAsId }, 'replay lease not renewed');
      }
    }
  }
}

function isWrongRevision(err: unknown): boolean {
  return jsErrorCode(err) === JS_ERRORS.wrongLastSequence || /wrong last sequence/i.test(String((err as Error).message));
}
