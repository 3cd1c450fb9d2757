import type { JetStreamClient, NatsConnection } from 'nats';
import { context, propagation } from '@opentelemetry/api';
import { ensureNotificationStream, notificationSubject, signNotification } from '@aese/events';
import type { EventSigner } from '@aese/events';
import { NotificationRequested } from '@aese/protos/events/v1';
import type { NotificationSink, OutboundNotification } from './domain/notification-sink.js';

/**
 * Publishes notifications to JetStream as `aese.events.v1.NotificationRequested` in an envelope
 * signed through crypto (event-signing key) and bound to the AS's subject: the edge delivers
 * only what capability exposure asked for. The notification id is the `Nats-Msg-Id` (a retry
 * within the duplicate window is stored once).
 */
export class NatsNotificationSink implements NotificationSink {
  private constructor(
    private readonly js: JetStreamClient,
    private readonly signer: EventSigner,
  ) {}

  static async open(nc: NatsConnection, signer: EventSigner): Promise<NatsNotificationSink> {
    await ensureNotificationStream(nc);
    return new NatsNotificationSink(nc.jetstream(), signer);
  }

  async publish(n: OutboundNotification): Promise<void> {
    const carrier: Record<string, string> = {};
    propagation.inject(context.active(), carrier);
    const message = NotificationRequested.encode({
      notificationId: n.notificationId,
      scsAsId: n.scsAsId,
      api: n.api,
      subscriptionId: n.subscriptionId,
      destination: n.destination,
      body: Buffer.from(JSON.stringify(n.body)),
      obligations: [...n.obligations],
      createdAtMs: n.createdAtMs,
      traceparent: carrier['traceparent'] ?? '',
    }).finish();
    const subject = notificationSubject(n.scsAsId);
    await this.js.publish(subject, await signNotification(this.signer, subject, message, n.createdAtMs), { msgID: n.notificationId });
  }
}
