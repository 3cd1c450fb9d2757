import type { NatsConnection } from 'nats';
import { NotificationRequested, SignedEvent } from '@aese/protos/events/v1';
import { signedBytes } from './signing.js';
import type { EventSigner, EventVerifier } from './signing.js';
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

/** Type name in the signed envelope of a notification request. */
export const NOTIFICATION_EVENT_TYPE = 'aese.events.v1.NotificationRequested';

/**
 * Wraps a serialized `NotificationRequested` in a signed envelope bound to its subject (so to
 * the AS) and to its creation time as version; the payload carries the notification id and the
 * destination, so none of them can be changed or moved to another AS without the signature failing.
 */
export async function signNotification(signer: EventSigner, subject: string, payload: Uint8Array, createdAtMs: number): Promise<Uint8Array> {
  const { kid, signature } = await signer.sign(signedBytes(subject, NOTIFICATION_EVENT_TYPE, createdAtMs, payload));
  return SignedEvent.encode({ payload: Buffer.from(payload), type: NOTIFICATION_EVENT_TYPE, version: createdAtMs, kid, signature: Buffer.from(signature), traceparent: '', prevPublishedAtMs: 0 }).finish();
}

/** Why a notification request was refused before any delivery attempt. */
export type NotificationRefusal = 'MALFORMED' | 'BAD_SIGNATURE' | 'WRONG_SUBJECT' | 'EXPIRED';

/**
 * Opens a signed notification request received on `subject`: the signature must verify with an
 * event-signing key, the AS in the payload must be the one of the subject, and the request must
 * be younger than the stream's retention (an older copy is a replay). Throws the verifier's
 * `UNAVAILABLE` when keys cannot be fetched: retry later, not a forgery.
 */
export async function openNotification(
  verifier: EventVerifier,
  subject: string,
  data: Uint8Array,
  nowMs: number,
): Promise<{ ok: true; notification: NotificationRequested } | { ok: false; reason: NotificationRefusal; scsAsId: string }> {
  const claimed = subject.startsWith(`${NOTIFICATIONS_SUBJECT_PREFIX}.`) ? subject.slice(NOTIFICATIONS_SUBJECT_PREFIX.length + 1) : 'unknown';
  let event: SignedEvent;
  try {
    event = SignedEvent.decode(data);
  } catch {
    return { ok: false, reason: 'MALFORMED', scsAsId: claimed };
  }
  if (event.type !== NOTIFICATION_EVENT_TYPE || event.kid === '' || event.signature.length === 0) return { ok: false, reason: 'BAD_SIGNATURE', scsAsId: claimed };
  if (!(await verifier.verify(event.kid, signedBytes(subject, event.type, event.version, event.payload), event.signature))) {
    return { ok: false, reason: 'BAD_SIGNATURE', scsAsId: claimed };
  }
  let notification: NotificationRequested;
  try {
    notification = NotificationRequested.decode(event.payload);
  } catch {
    return { ok: false, reason: 'MALFORMED', scsAsId: claimed };
  }
  if (subject !== notificationSubject(notification.scsAsId) || notification.createdAtMs !== event.version) {
    return { ok: false, reason: 'WRONG_SUBJECT', scsAsId: claimed };
  }
  if (notification.createdAtMs + NOTIFICATIONS_MAX_AGE_MS < nowMs) return { ok: false, reason: 'EXPIRED', scsAsId: claimed };
  return { ok: true, notification };
}
