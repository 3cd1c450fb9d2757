import { Events } from 'nats';
import type { NatsConnection } from 'nats';

/** How long a service keeps deciding from its last verified state while NATS is unreachable. */
export const DEFAULT_STALENESS_BOUND_MS = 5_000;
/** Shortest interval between two liveness round trips (a bound of 0 still probes). */
const MIN_PROBE_INTERVAL_MS = 50;
/** Wait before catching up again after a failed catch-up. */
const RECOVER_RETRY_MS = 500;

/** Something that can tell when it has caught up with its stream again. */
export interface Resyncable {
  resync(): Promise<void>;
}

/**
 * Tracks whether this replica's control state (revocations, policies, a copy of a bucket) can be
 * trusted. It is fresh while NATS answers and every consumer is caught up. From the last moment
 * that was known to hold, it stays usable for the staleness bound, then decisions that depend on
 * it must fail closed until the connection is back and every consumer has caught up with what
 * was published meanwhile.
 *
 * Two ways of losing NATS are watched: a connection the client sees drop (a disconnect event),
 * and one that goes silent without dropping (a partition that loses packets), which the client
 * would notice only after minutes of missed pings: a round trip is asked for every third of the
 * bound, and a state no round trip has confirmed for the bound is stale. A disconnect during a
 * catch-up makes that catch-up count for nothing.
 */
export class Freshness {
  /** The last moment the state was known current: a round trip answered with every consumer caught up. */
  private currentAtMs: number;
  /** Whether the client holds a connection (between a disconnect and a reconnect it does not). */
  private connected = true;
  /** Set by a disconnect or a silence; cleared only by a catch-up that no later one interrupted. */
  private behind = false;
  /** Set while round trips go unanswered; cleared by the next answered one, which starts a catch-up. */
  private silent = false;
  private disconnects = 0;
  private recovering = false;
  private probing = false;
  private lastEmitted: boolean;
  private readonly probeIntervalMs: number;
  private readonly listeners: ((fresh: boolean) => void)[] = [];

  constructor(
    private readonly nc: NatsConnection,
    private readonly consumers: readonly Resyncable[],
    private readonly boundMs = DEFAULT_STALENESS_BOUND_MS,
    private readonly now: () => number = Date.now,
  ) {
    this.currentAtMs = now();
    this.lastEmitted = true;
    this.probeIntervalMs = Math.max(MIN_PROBE_INTERVAL_MS, Math.floor(boundMs / 3));
    void (async () => {
      for await (const s of nc.status()) {
        if (s.type === Events.Disconnect) this.disconnected();
        if (s.type === Events.Reconnect) this.reconnected();
      }
    })().catch(() => undefined);
    const probe = setInterval(() => void this.probe(), this.probeIntervalMs);
    probe.unref();
    void nc
      .closed()
      .catch(() => undefined)
      .finally(() => clearInterval(probe));
  }

  /** True while decisions may rely on the control state. */
  isFresh(): boolean {
    if (this.connected && !this.behind && !this.silent) return true;
    return this.now() - this.currentAtMs < this.boundMs;
  }

  /** Called with the new value whenever freshness may have changed (health flips on it). */
  onChange(listener: (fresh: boolean) => void): void {
    this.listeners.push(listener);
  }

  private disconnected(): void {
    // Current up to this moment, unless it already was not.
    if (this.connected && !this.behind && !this.silent) this.currentAtMs = this.now();
    this.connected = false;
    this.behind = true;
    this.disconnects++;
    setTimeout(() => this.emit(), Math.max(0, this.currentAtMs + this.boundMs - this.now()) + 1).unref();
  }

  private reconnected(): void {
    this.connected = true;
    void this.recover();
  }

  /** Catches every consumer up; counts only if no disconnect came in the meantime. */
  private async recover(): Promise<void> {
    if (this.recovering || !this.behind) return;
    this.recovering = true;
    const disconnects = this.disconnects;
    const startedAtMs = this.now();
    let caughtUp = false;
    try {
      await Promise.all(this.consumers.map(c => c.resync()));
      caughtUp = true;
    } catch {
      // Still behind: tried again below while connected.
    } finally {
      this.recovering = false;
    }
    if (caughtUp && disconnects === this.disconnects && this.connected && !this.silent) {
      this.behind = false;
      this.silent = false;
      this.currentAtMs = startedAtMs;
    } else if (this.connected && !this.silent) {
      setTimeout(() => void this.recover(), RECOVER_RETRY_MS).unref();
    }
    this.emit();
  }

  /** One round trip with the server, bounded by the probe interval; one at a time. */
  private async probe(): Promise<void> {
    if (this.probing || !this.connected) {
      this.emit();
      return;
    }
    this.probing = true;
    const sentAtMs = this.now();
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([this.nc.flush(), new Promise((_, reject) => (timer = setTimeout(() => reject(new Error('no answer')), this.probeIntervalMs)))]);
      if (this.silent) {
        // Heard again after a silence: what was published meanwhile may still be on its way.
        this.silent = false;
        void this.recover();
      } else if (!this.behind) this.currentAtMs = sentAtMs;
    } catch {
      if (!this.silent) {
        this.silent = true;
        this.behind = true;
        this.disconnects++;
      }
    } finally {
      clearTimeout(timer);
      this.probing = false;
    }
    this.emit();
  }

  /** Tells the listeners when freshness changed since it was last told. */
  private emit(): void {
    const fresh = this.isFresh();
    if (fresh === this.lastEmitted) return;
    this.lastEmitted = fresh;
    for (const l of this.listeners) l(fresh);
  }
}
