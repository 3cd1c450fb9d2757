import { RetentionPolicy, StorageType } from 'nats';
import type { JetStreamClient, NatsConnection } from 'nats';
import { context, propagation } from '@opentelemetry/api';
import { NOTIFICATIONS_STREAM, NOTIFICATIONS_SUBJECT_PREFIX } from '@aese/events';
import { retryJetStream, streamReplicas } from '@aese/nats';
import { NotificationRequested } from '@aese/protos/events/v1';
import type { NotificationSink, OutboundNotification } from './domain/notification-sink.js';

/** How long an undelivered notification is kept. */
export const NOTIFICATIONS_MAX_AGE_MS = 24 * 3600 * 1000;
/** Window in which a republished notification id is dropped by JetStream. */
export const NOTIFICATIONS_DUPLICATE_WINDOW_MS = 2 * 60 * 1000;

const nanos = (ms: number): number => ms * 1_000_000;

/** The subject of one AS's notifications. */
export function notificationSubject(scsAsId: string): string {
  return `${NOTIFICATIONS_SUBJECT_PREFIX}.${scsAsId}`;
}

/**
 * Publishes notifications to JetStream as `aese.events.v1.NotificationRequested`, with the
 * notification id as `Nats-Msg-Id` (a retry within the duplicate window is stored once).
 * Creates the stream if nobody has (an existing stream's settings are left alone).
 */
export class NatsNotificationSink implements NotificationSink {
  private constructor(private readonly js: JetStreamClient) {}

  static async open(nc: NatsConnection): Promise<NatsNotificationSink> {
    const jsm = await retryJetStream(() => nc.jetstreamManager());
    const exists = await retryJetStream(() => jsm.streams.info(NOTIFICATIONS_STREAM)).then(
      () => true,
      () => false,
    );
    if (!exists) {
      await retryJetStream(() =>
        jsm.streams.add({
          name: NOTIFICATIONS_STREAM,
          subjects: [`${NOTIFICATIONS_SUBJECT_PREFIX}.>`],
          retention: RetentionPolicy.Limits,
          storage: StorageType.File,
          num_replicas: streamReplicas(nc),
          max_age: nanos(NOTIFICATIONS_MAX_AGE_MS),
          duplicate_window: nanos(NOTIFICATIONS_DUPLICATE_WINDOW_MS),
        }),
      ).catch(async err => {
        // Another replica may have created it in the meantime.
        await jsm.streams.info(NOTIFICATIONS_STREAM).catch(() => {
          throw err;
        });
      });
    }
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
