import type { JetStreamClient, NatsConnection } from 'nats';
import { context, propagation } from '@opentelemetry/api';
import { ensureNotificationStream, notificationSubject } from '@aese/events';
import { NotificationRequested } from '@aese/protos/events/v1';
import type { NotificationSink, OutboundNotification } from './domain/notification-sink.js';

/**
 * Publishes notifications to JetStream as `aese.events.v1.NotificationRequested`, with the
 * notification id as `Nats-Msg-Id` (a retry within the duplicate window is stored once).
 */
export class NatsNotificationSink implements NotificationSink {
  private constructor(private readonly js: JetStreamClient) {}

  static async open(nc: NatsConnection): Promise<NatsNotificationSink> {
    await ensureNotificationStream(nc);
    return new NatsNotificationSink(nc.jetstream());
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
    await this.js.publish(notificationSubject(n.scsAsId), message, { msgID: n.notificationId });
  }
}
