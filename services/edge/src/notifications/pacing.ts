/** Notifications one AS may have waiting at this edge; past it a new one cannot be held. */
export const DEFAULT_MAX_HELD_PER_AS = 128;
/** Idle lanes kept before the ones whose pacing is over are forgotten. */
const MAX_IDLE_LANES = 10_000;

/** What {@link NotificationLanes.run} gives back when the lanes were closed before the task ran. */
export const LANES_CLOSED = Symbol('lanes closed');

export interface NotificationLanesOptions {
  readonly maxHeldPerAs?: number;
  readonly now?: () => number;
  /** Waits `ms` or until `closed` resolves, whichever is first. */
  readonly sleep?: (ms: number, closed: Promise<void>) => Promise<void>;
}

interface Lane {
  tail: Promise<unknown>;
  held: number;
  /** The earliest time the next task may start (the previous start plus 1/perSecond). */
  nextAtMs: number;
}

const realSleep = (ms: number, closed: Promise<void>): Promise<void> =>
  new Promise(resolve => {
    const timer = setTimeout(resolve, ms);
    void closed.then(() => {
      clearTimeout(timer);
      resolve();
    });
  });

/**
 * One lane per AS: its notifications go out one at a time, in the order they came, and under a
 * `rate-limit` obligation no sooner than 1/perSecond after the previous one started (a slot every
 * 1/perSecond, no burst). Lanes of different ASes run side by side, so a slow or rate-limited AS
 * delays only itself. A lane holds at most `maxHeldPerAs` tasks: the next one is refused
 * (undefined) and the caller reports it as not held, never silently.
 *
 * Pacing is per edge replica, as the T8 rate limiter is: N replicas deliver up to N x perSecond.
 */
export class NotificationLanes {
  private readonly lanes = new Map<string, Lane>();
  private readonly maxHeld: number;
  private readonly now: () => number;
  private readonly sleep: (ms: number, closed: Promise<void>) => Promise<void>;
  private stopped = false;
  private signalClosed!: () => void;
  private readonly closed = new Promise<void>(resolve => (this.signalClosed = resolve));

  constructor(options: NotificationLanesOptions = {}) {
    this.maxHeld = options.maxHeldPerAs ?? DEFAULT_MAX_HELD_PER_AS;
    if (!(this.maxHeld >= 1)) throw new TypeError('a lane must hold at least one notification');
    this.now = options.now ?? Date.now;
    this.sleep = options.sleep ?? realSleep;
  }

  /** Tasks waiting or running for an AS. */
  held(scsAsId: string): number {
    return this.lanes.get(scsAsId)?.held ?? 0;
  }

  /**
   * Queues `task` in the AS's lane, paced to `perSecond` when set. Undefined when the lane is
   * full; {@link LANES_CLOSED} when the lanes closed before the task started.
   */
  run<T>(scsAsId: string, perSecond: number | undefined, task: () => Promise<T>): Promise<T | typeof LANES_CLOSED> | undefined {
    if (this.stopped) return Promise.resolve(LANES_CLOSED);
    let lane = this.lanes.get(scsAsId);
    if (!lane) {
      if (this.lanes.size >= MAX_IDLE_LANES) this.prune();
      lane = { tail: Promise.resolve(), held: 0, nextAtMs: 0 };
      this.lanes.set(scsAsId, lane);
    }
    if (lane.held >= this.maxHeld) return undefined;
    lane.held++;
    const l = lane;
    const run = l.tail.then(async (): Promise<T | typeof LANES_CLOSED> => {
      if (this.stopped) return LANES_CLOSED;
      if (perSecond !== undefined) {
        const wait = l.nextAtMs - this.now();
        if (wait > 0) await this.sleep(wait, this.closed);
        if (this.stopped) return LANES_CLOSED;
        l.nextAtMs = Math.max(this.now(), l.nextAtMs) + 1000 / perSecond;
      }
      return task();
    });
    l.tail = run.then(
      () => undefined,
      () => undefined,
    );
    void l.tail.then(() => l.held--);
    return run;
  }

  /** Lets no waiting task start (they resolve {@link LANES_CLOSED}); running ones finish. */
  close(): void {
    this.stopped = true;
    this.signalClosed();
  }

  private prune(): void {
    const now = this.now();
    for (const [id, lane] of this.lanes) if (lane.held === 0 && lane.nextAtMs <= now) this.lanes.delete(id);
  }
}
