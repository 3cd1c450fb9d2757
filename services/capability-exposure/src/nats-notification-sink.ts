import type { JetStreamClient, NatsConnection } from 'nats';
import { SpanKind } from '@opentelemetry/api';
import { ensureNotificationStream, NOTIFICATIONS_STREAM, notificationSubject, signNotification } from '@aese/events';
import type { EventSigner } from '@aese/events';
import { NotificationRequested } from '@aese/protos/events/v1';
import { activeTraceparent, inSpan } from '@aese/telemetry';
import { PublishUnconfirmed } from './domain/notification-sink.js';
import type { NotificationSink, OutboundNotification } from './domain/notification-sink.js';

/**
 * Publishes notifications to JetStream as `aese.events.v1.NotificationRequested` in an envelope
 * signed through crypto (event-signing key) and bound to the AS's subject: the edge delivers
 * only what capability exposure asked for. The obligations travel as names (what older edges
 * read) and with their parameters. The notification id is the `Nats-Msg-Id` (a retry within the
 * duplicate window is stored once).
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

  publish(n: OutboundNotification): Promise<void> {
    // A producer span whose context travels inside the signed request: the edge's delivery joins the trace.
    return inSpan(`publish ${NOTIFICATIONS_STREAM}`, () => this.publishSigned(n), {
      kind: SpanKind.PRODUCER,
      attributes: { 'messaging.system': 'nats', 'messaging.destination.name': NOTIFICATIONS_STREAM, 'aese.api': n.api },
    });
  }

  private async publishSigned(n: OutboundNotification): Promise<void> {
    const message = NotificationRequested.encode({
      notificationId: n.notificationId,
      scsAsId: n.scsAsId,
      api: n.api,
      subscriptionId: n.subscriptionId,
      destination: n.destination,
      body: Buffer.from(JSON.stringify(n.body)),
      obligations: n.obligations.map(o => o.type),
      obligationDetails: n.obligations.map(o => ({ type: o.type, parameters: { ...o.parameters } })),
      createdAtMs: n.createdAtMs,
      traceparent: activeTraceparent(),
    }).finish();
    const subject = notificationSubject(n.scsAsId);
    const signed = await signNotification(this.signer, subject, message, n.createdAtMs);
    try {
      await this.js.publish(subject, signed, { msgID: n.notificationId });
    } catch (err) {
      // No acknowledgement in time: JetStream may have stored it all the same.
      if ((err as { code?: unknown }).code === 'TIMEOUT') throw new PublishUnconfirmed({ cause: err });
      throw err;
    }
  }
}
