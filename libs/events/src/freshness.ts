import { Events } from 'nats';
import type { NatsConnection } from 'nats';

/** How long a service keeps deciding from its last verified state while NATS is unreachable. */
export const DEFAULT_STALENESS_BOUND_MS = 5_000;

/** Something that can tell when it has caught up with its stream again. */
export interface Resyncable {
  resync(): Promise<void>;
}

/**
 * Tracks whether this replica's control state (revocations, policies) can be trusted: fresh
 * while connected and caught up; after a disconnect it stays usable for the staleness bound,
 * then decisions that depend on it must fail closed until the connection is back and every
 * consumer has caught up with what was published meanwhile.
 */
export class Freshness {
  private degradedSince: number | undefined;
  private readonly listeners: ((fresh: boolean) => void)[] = [];

  constructor(
    nc: NatsConnection,
    private readonly consumers: readonly Resyncable[],
    private readonly boundMs = DEFAULT_STALENESS_BOUND_MS,
    private readonly now: () => number = Date.now,
  ) {
    void (async () => {
      for await (const s of nc.status()) {
        if (s.type === Events.Disconnect) this.degrade();
        if (s.type === Events.Reconnect) void this.recover();
      }
    })().catch(() => undefined);
  }

  /** True while decisions may rely on the control state. */
  isFresh(): boolean {
    return this.degradedSince === undefined || this.now() - this.degradedSince < this.boundMs;
  }

  /** Called with the new value whenever freshness may have changed (health flips on it). */
  onChange(listener: (fresh: boolean) => void): void {
    this.listeners.push(listener);
  }

  private degrade(): void {
    if (this.degradedSince !== undefined) return;
    this.degradedSince = this.now();
    const timer = setTimeout(() => this.emit(), this.boundMs + 1);
    timer.unref();
  }

  private async recover(): Promise<void> {
    try {
      await Promise.all(this.consumers.map(c => c.resync()));
      this.degradedSince = undefined;
    } catch {
      // Still behind: stay degraded; the next reconnect or status event retries.
      setTimeout(() => void this.recover(), 500).unref();
    }
    this.emit();
  }

  private emit(): void {
    const fresh = this.isFresh();
    for (const l of this.listeners) l(fresh);
  }
}
