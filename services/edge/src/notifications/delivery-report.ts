import { metrics } from '@opentelemetry/api';
import type { Counter, Meter } from '@opentelemetry/api';
import type { AuditLog, EventSigner } from '@aese/events';
import { NOTIFICATION_OUTCOMES, signNotificationOutcome } from '@aese/events';
import type { Logger } from '@aese/logger';
import { METRIC_NAMES } from '@aese/telemetry';
import type { NotificationOutcome } from '@aese/protos/events/v1';

/** The OpenTelemetry counter of delivery attempts, by outcome, reason and api. */
export const DELIVERIES_METRIC = METRIC_NAMES.notificationDeliveries;
/** Values of the counter's `outcome` attribute. */
export const DELIVERY_METRIC_OUTCOMES = { delivered: 'delivered', retry: 'retry', dropped: 'dropped', refused: 'refused' } as const;
/** Attempts to report an outcome to capability exposure, and the first back-off between them. */
const OUTCOME_PUBLISH_ATTEMPTS = 4;
const OUTCOME_PUBLISH_BACKOFF_MS = 250;

/** The fields of a notification request a report names (never its destination or body). */
export interface ReportedNotification {
  readonly notificationId: string;
  readonly scsAsId: string;
  readonly api: string;
  readonly subscriptionId: string;
}

export interface DeliveryReporterOptions {
  readonly logger: Logger;
  readonly audit: AuditLog;
  /** Signs outcomes with the edge's event-signing rights (its own outcome subjects only). */
  readonly signer: EventSigner;
  /** Publishes a signed outcome (JetStream, deduplicated by the notification id). */
  readonly publish: (subject: string, data: Uint8Array, msgId: string) => Promise<void>;
  readonly meter?: Meter;
  readonly now?: () => number;
}

/**
 * Makes every fate of a notification visible: a counter for each attempt; for one that is given
 * up, a log line and an audit event (ids, reason and attempts only: no UE identifier, no body,
 * no destination); and for each final fate a signed outcome to capability exposure, which counts
 * a report only when it was delivered and frees its reservation otherwise.
 *
 * An outcome that cannot be published after a few attempts is logged; capability exposure then
 * keeps the report reserved until the notification could no longer be delivered, and counts it
 * as sent (the fail-safe side: never more reports than the subscription allows).
 */
export class DeliveryReporter {
  private readonly counter: Counter;
  private readonly now: () => number;
  private readonly pending = new Set<Promise<void>>();

  constructor(private readonly options: DeliveryReporterOptions) {
    // The meter is taken when the edge starts, after any SDK registered its provider.
    this.counter = (options.meter ?? metrics.getMeter('aese-edge')).createCounter(DELIVERIES_METRIC, {
      description: 'Notification delivery attempts by outcome (delivered, retry, dropped, refused) and reason',
    });
    this.now = options.now ?? Date.now;
  }

  delivered(n: ReportedNotification, attempts: number, status: number): void {
    this.count(DELIVERY_METRIC_OUTCOMES.delivered, `HTTP_${status}`, n.api);
    this.options.logger.debug({ notificationId: n.notificationId, status, attempts }, 'notification delivered');
    this.report(n, NOTIFICATION_OUTCOMES.delivered, '', attempts);
  }

  /** An attempt failed in a way worth another one later. */
  retrying(n: ReportedNotification, attempts: number, reason: string): void {
    this.count(DELIVERY_METRIC_OUTCOMES.retry, reason, n.api);
    this.options.logger.debug({ notificationId: n.notificationId, reason, attempts }, 'notification delivery will be retried');
  }

  /** Given up for good. */
  dropped(n: ReportedNotification, attempts: number, reason: string): void {
    this.count(DELIVERY_METRIC_OUTCOMES.dropped, reason, n.api);
    this.options.logger.warn(
      { notificationId: n.notificationId, scsAsId: n.scsAsId, api: n.api, subscriptionId: n.subscriptionId, reason, attempts },
      'notification not delivered',
    );
    this.options.audit.record({
      actor: n.scsAsId,
      action: 'notification.deliver',
      decision: 'deny',
      reason,
      detail: { notificationId: n.notificationId, api: n.api, attempts },
    });
    this.report(n, NOTIFICATION_OUTCOMES.dropped, reason, attempts);
  }

  /** A request that is not capability exposure's (unsigned, moved, expired): nothing in it is trusted. */
  refused(reason: string, claimedScsAsId: string, seq: number): void {
    this.count(DELIVERY_METRIC_OUTCOMES.refused, reason, 'unknown');
    this.options.logger.warn({ reason, scsAsId: claimedScsAsId, seq }, 'notification request refused: not signed by capability exposure for this AS');
    this.options.audit.record({ actor: 'unknown', action: 'notification.request', decision: 'deny', reason, detail: { scsAsId: claimedScsAsId, seq } });
  }

  /** Resolves once every outcome started so far is published or given up. */
  async flush(): Promise<void> {
    while (this.pending.size > 0) await Promise.all([...this.pending]);
  }

  private count(outcome: string, reason: string, api: string): void {
    this.counter.add(1, { outcome, reason, api });
  }

  private report(n: ReportedNotification, outcome: string, reason: string, attempts: number): void {
    const message: NotificationOutcome = { ...pick(n), outcome, reason, attempts, decidedAtMs: this.now() };
    const task = this.publishWithRetry(message).finally(() => this.pending.delete(task));
    this.pending.add(task);
  }

  private async publishWithRetry(outcome: NotificationOutcome): Promise<void> {
    for (let attempt = 1, delay = OUTCOME_PUBLISH_BACKOFF_MS; ; attempt++, delay *= 2) {
      try {
        const { subject, data } = await signNotificationOutcome(this.options.signer, outcome);
        await this.options.publish(subject, data, outcome.notificationId);
        return;
      } catch (err) {
        if (attempt >= OUTCOME_PUBLISH_ATTEMPTS) {
          this.options.logger.error(
            { err, notificationId: outcome.notificationId, outcome: outcome.outcome },
            'notification outcome not reported: its report stays reserved until the notification expires',
          );
          return;
        }
        await new Promise(resolve => setTimeout(resolve, delay));
      }
    }
  }
}

function pick(n: ReportedNotification): ReportedNotification {
  return { notificationId: n.notificationId, scsAsId: n.scsAsId, api: n.api, subscriptionId: n.subscriptionId };
}
