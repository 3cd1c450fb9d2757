import type { NatsConnection } from 'nats';
import { ensureStream } from './streams.js';
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

/** Creates the notification stream if nobody has. */
export async function ensureNotificationStream(nc: NatsConnection): Promise<void> {
  await ensureStream(nc, {
    name: NOTIFICATIONS_STREAM,
    subjects: [`${NOTIFICATIONS_SUBJECT_PREFIX}.>`],
    max_age: nanos(NOTIFICATIONS_MAX_AGE_MS),
    duplicate_window: nanos(NOTIFICATIONS_DUPLICATE_WINDOW_MS),
  });
}
