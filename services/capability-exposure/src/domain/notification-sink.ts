/** A notification ready for the edge to sign and deliver to the AS. */
export interface OutboundNotification {
  readonly notificationId: string;
  readonly scsAsId: string;
  readonly api: string;
  readonly subscriptionId: string;
  readonly destination: string;
  /** The T8 notification body (already validated against its schema). */
  readonly body: unknown;
  /** Obligation types the edge must still apply (for example encrypt-response). */
  readonly obligations: readonly string[];
  readonly createdAtMs: number;
}

/** Where notifications go: NATS JetStream in the service, a list in unit tests. */
export interface NotificationSink {
  publish(notification: OutboundNotification): Promise<void>;
}
