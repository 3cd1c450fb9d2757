import { RetentionPolicy, StorageType } from 'nats';
import type { NatsConnection } from 'nats';
import { retryJetStream, streamReplicas } from '@aese/nats';
import { NOTIFICATIONS_STREAM, NOTIFICATIONS_SUBJECT_PREFIX } from './subjects.js';

/** How long an undelivered notification is kept. */
export const NOTIFICATIONS_MAX_AGE_MS = 24 * 3600 * 1000;
/** Window in which a republished notification id is dropped by JetStream. */
export const NOTIFICATIONS_DUPLICATE_WINDOW_MS = 2 * 60 * 1000;

const nanos = (ms: number): number => ms * 1_000_000;

/** The subject of one AS's notifications. */
export function notificationSubject(scsAsId: string): string {
  return `${NOTIFICATIONS_SUBJECT_PREFIX}.${scsAsId}`;
}

/** Creates the notification stream if nobody has (an existing stream's settings are left alone). */
export async function ensureNotificationStream(nc: NatsConnection): Promise<void> {
  const jsm = await retryJetStream(() => nc.jetstreamManager());
  const exists = await retryJetStream(() => jsm.streams.info(NOTIFICATIONS_STREAM)).then(
    () => true,
    () => false,
  );
  if (exists) return;
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
    // Another service may have created it in the meantime.
    await jsm.streams.info(NOTIFICATIONS_STREAM).catch(() => {
      throw err;
    });
  });
}
