import type { Obligation } from './decision.js';

/** A notification ready for the edge to sign and deliver to the AS. */
export interface OutboundNotification {
  readonly notificationId: string;
  readonly scsAsId: string;
  readonly api: string;
  readonly subscriptionId: string;
  readonly destination: string;
  /** The T8 notification body (already validated against its schema). */
  readonly body: unknown;
  /** Obligations the edge must still carry out, with their parameters (encrypt-response, rate-limit). */
  readonly obligations: readonly Obligation[];
  readonly createdAtMs: number;
}

/**
 * A publish whose fate is unknown (the acknowledgement did not come): the notification may be on
 * its way, so its report stays reserved until its outcome (or its expiry) says what became of it.
 */
export class PublishUnconfirmed extends Error {
  constructor(options?: { cause?: unknown }) {
    super('the notification was sent but its storage was not confirmed', options);
    this.name = 'PublishUnconfirmed';
  }
}

/** Where notifications go: NATS JetStream in the service, a list in unit tests. */
export interface NotificationSink {
  /** Rejects with {@link PublishUnconfirmed} when it may have been published; otherwise it was not. */
  publish(notification: OutboundNotification): Promise<void>;
}
