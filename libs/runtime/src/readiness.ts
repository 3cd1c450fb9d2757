import type { Logger } from '@aese/logger';

/** First pause after a failed start-up step; it doubles up to the maximum. */
export const DEFAULT_READINESS_MIN_BACKOFF_MS = 250;
export const DEFAULT_READINESS_MAX_BACKOFF_MS = 1_000;

/** One thing a service needs before it may report SERVING (keys fetched, a feed caught up). */
export interface ReadinessStep {
  readonly what: string;
  run(): Promise<void>;
}

export interface ReadinessOptions {
  readonly logger: Logger;
  /** Run in order; a step that succeeded is never run again. */
  readonly steps: readonly ReadinessStep[];
  /** Called once, when every step has succeeded. */
  readonly onReady: () => void;
  readonly minBackoffMs?: number;
  readonly maxBackoffMs?: number;
}

/** The background start-up of a service's state; `stop()` ends the retries. */
export interface Readiness {
  readonly ready: boolean;
  /** Resolves once ready (never rejects; never resolves if stopped first). */
  readonly whenReady: Promise<void>;
  stop(): void;
}

/**
 * Brings a service's state up after its server listens: each step is retried with backoff
 * until it succeeds (a dependency that starts late, crypto say, is waited for, not fatal), and
 * the service reports NOT_SERVING until then. One log line when a step first has to wait, one
 * when the service is ready, with the time it took.
 */
export function untilReady(options: ReadinessOptions): Readiness {
  const min = options.minBackoffMs ?? DEFAULT_READINESS_MIN_BACKOFF_MS;
  const max = options.maxBackoffMs ?? DEFAULT_READINESS_MAX_BACKOFF_MS;
  const started = Date.now();
  let stopped = false;
  let ready = false;
  let wake: (() => void) | undefined;
  const pause = (ms: number) =>
    new Promise<void>(resolve => {
      const timer = setTimeout(resolve, ms);
      timer.unref();
      wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  const whenReady = (async () => {
    for (const step of options.steps) {
      let backoff = min;
      let waiting = false;
      for (;;) {
        if (stopped) return new Promise<void>(() => undefined);
        try {
          await step.run();
          break;
        } catch (err) {
          if (stopped) return new Promise<void>(() => undefined);
          if (!waiting) options.logger.warn({ err, step: step.what }, `not serving yet: waiting for ${step.what}`);
          else options.logger.debug({ err, step: step.what }, `still waiting for ${step.what}`);
          waiting = true;
          await pause(backoff);
          backoff = Math.min(max, backoff * 2);
        }
      }
    }
    if (stopped) return new Promise<void>(() => undefined);
    ready = true;
    options.logger.info({ readyAfterMs: Date.now() - started }, 'state loaded; serving');
    options.onReady();
  })();
  return {
    get ready() {
      return ready;
    },
    whenReady,
    stop: () => {
      stopped = true;
      wake?.();
    },
  };
}
