import type { NatsConnection } from 'nats';
import type { Obligation } from '@aese/protos/common/v1';
import { NotificationOutcome, NotificationRequested, SignedEvent } from '@aese/protos/events/v1';
import { signedBytes } from './signing.js';
import type { EventSigner, EventVerifier } from './signing.js';
import { ensureStream } from './streams.js';
import { NOTIFICATION_OUTCOMES_STREAM, NOTIFICATION_OUTCOMES_SUBJECT_PREFIX, NOTIFICATIONS_STREAM, NOTIFICATIONS_SUBJECT_PREFIX } from './subjects.js';

/** How long an undelivered notification is kept. */
export const NOTIFICATIONS_MAX_AGE_MS = 24 * 3600 * 1000;
/** Window in which a republished notification id is dropped by JetStream. */
export const NOTIFICATIONS_DUPLICATE_WINDOW_MS = 2 * 60 * 1000;
/**
 * How long delivery outcomes are kept: a notification can be delivered until it is
 * {@link NOTIFICATIONS_MAX_AGE_MS} old, and its outcome must outlive a capability exposure that
 * was down meanwhile.
 */
export const NOTIFICATION_OUTCOMES_MAX_AGE_MS = 2 * NOTIFICATIONS_MAX_AGE_MS;

const nanos = (ms: number): number => ms * 1_000_000;

/** The subject of one AS's notifications. */
export function notificationSubject(scsAsId: string): string {
  return `${NOTIFICATIONS_SUBJECT_PREFIX}.${scsAsId}`;
}

/** The subject of the delivery outcomes of one AS's notifications. */
export function notificationOutcomeSubject(scsAsId: string): string {
  return `${NOTIFICATION_OUTCOMES_SUBJECT_PREFIX}.${scsAsId}`;
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

/** Creates the delivery-outcome stream if nobody has. */
export async function ensureNotificationOutcomeStream(nc: NatsConnection): Promise<void> {
  await ensureStream(nc, {
    name: NOTIFICATION_OUTCOMES_STREAM,
    subjects: [`${NOTIFICATION_OUTCOMES_SUBJECT_PREFIX}.>`],
    max_age: nanos(NOTIFICATION_OUTCOMES_MAX_AGE_MS),
    duplicate_window: nanos(NOTIFICATIONS_DUPLICATE_WINDOW_MS),
  });
}

/** Type name in the signed envelope of a notification request. */
export const NOTIFICATION_EVENT_TYPE = 'aese.events.v1.NotificationRequested';
/** Type name in the signed envelope of a delivery outcome. */
export const NOTIFICATION_OUTCOME_EVENT_TYPE = 'aese.events.v1.NotificationOutcome';

/**
 * A signed envelope bound to its subject (so to the AS) and to a time as version: the signature
 * covers both, so the payload can be neither changed nor moved to another AS.
 */
export async function signBound(signer: EventSigner, subject: string, type: string, payload: Uint8Array, atMs: number): Promise<Uint8Array> {
  const { kid, signature } = await signer.sign(signedBytes(subject, type, atMs, payload));
  return SignedEvent.encode({ payload: Buffer.from(payload), type, version: atMs, kid, signature: Buffer.from(signature), traceparent: '', prevPublishedAtMs: 0 }).finish();
}

/** Opens a {@link signBound} envelope of one type; throws the verifier's UNAVAILABLE (retry later). */
export async function openBound(
  verifier: EventVerifier,
  subject: string,
  type: string,
  data: Uint8Array,
): Promise<{ ok: true; event: SignedEvent } | { ok: false; reason: 'MALFORMED' | 'BAD_SIGNATURE' }> {
  let event: SignedEvent;
  try {
    event = SignedEvent.decode(data);
  } catch {
    return { ok: false, reason: 'MALFORMED' };
  }
  if (event.type !== type || event.kid === '' || event.signature.length === 0) return { ok: false, reason: 'BAD_SIGNATURE' };
  if (!(await verifier.verify(event.kid, signedBytes(subject, event.type, event.version, event.payload), event.signature))) {
    return { ok: false, reason: 'BAD_SIGNATURE' };
  }
  return { ok: true, event };
}

/** The AS a subject under `prefix` names, for refusals ('unknown' when it names none). */
function claimedAs(subject: string, prefix: string): string {
  return subject.startsWith(`${prefix}.`) ? subject.slice(prefix.length + 1) : 'unknown';
}

/**
 * Wraps a serialized `NotificationRequested` in a signed envelope bound to its subject (so to
 * the AS) and to its creation time as version; the payload carries the notification id and the
 * destination, so none of them can be changed or moved to another AS without the signature failing.
 */
export async function signNotification(signer: EventSigner, subject: string, payload: Uint8Array, createdAtMs: number): Promise<Uint8Array> {
  return signBound(signer, subject, NOTIFICATION_EVENT_TYPE, payload, createdAtMs);
}

/** Why a notification request (or a delivery outcome) was refused. */
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
  const claimed = claimedAs(subject, NOTIFICATIONS_SUBJECT_PREFIX);
  const opened = await openBound(verifier, subject, NOTIFICATION_EVENT_TYPE, data);
  if (!opened.ok) return { ...opened, scsAsId: claimed };
  let notification: NotificationRequested;
  try {
    notification = NotificationRequested.decode(opened.event.payload);
  } catch {
    return { ok: false, reason: 'MALFORMED', scsAsId: claimed };
  }
  if (subject !== notificationSubject(notification.scsAsId) || notification.createdAtMs !== opened.event.version) {
    return { ok: false, reason: 'WRONG_SUBJECT', scsAsId: claimed };
  }
  if (notification.createdAtMs + NOTIFICATIONS_MAX_AGE_MS < nowMs) return { ok: false, reason: 'EXPIRED', scsAsId: claimed };
  return { ok: true, notification };
}

/**
 * The obligations of a notification request with their parameters. A name without a detailed
 * entry (a request from a publisher that sends names only) is an obligation without parameters,
 * so an obligation that needs one fails closed at the receiver rather than being skipped.
 */
export function notificationObligations(n: NotificationRequested): Obligation[] {
  const out: Obligation[] = n.obligationDetails.map(o => ({ type: o.type, parameters: { ...o.parameters } }));
  for (const name of n.obligations) if (!out.some(o => o.type === name)) out.push({ type: name, parameters: {} });
  return out;
}

/** The two final outcomes of a notification the edge reports. */
export const NOTIFICATION_OUTCOMES = { delivered: 'delivered', dropped: 'dropped' } as const;

/** Signs a delivery outcome (the edge, through crypto) bound to the AS's outcome subject and its time. */
export async function signNotificationOutcome(signer: EventSigner, outcome: NotificationOutcome): Promise<{ subject: string; data: Uint8Array }> {
  const subject = notificationOutcomeSubject(outcome.scsAsId);
  return { subject, data: await signBound(signer, subject, NOTIFICATION_OUTCOME_EVENT_TYPE, NotificationOutcome.encode(outcome).finish(), outcome.decidedAtMs) };
}

/**
 * Opens a signed delivery outcome received on `subject`: signed with an event-signing key for
 * this subject, for the AS the subject names, at its own time, with a known outcome, and younger
 * than the stream's retention. Throws the verifier's UNAVAILABLE (retry later).
 */
export async function openNotificationOutcome(
  verifier: EventVerifier,
  subject: string,
  data: Uint8Array,
  nowMs: number,
): Promise<{ ok: true; outcome: NotificationOutcome } | { ok: false; reason: NotificationRefusal; scsAsId: string }> {
  const claimed = claimedAs(subject, NOTIFICATION_OUTCOMES_SUBJECT_PREFIX);
  const opened = await openBound(verifier, subject, NOTIFICATION_OUTCOME_EVENT_TYPE, data);
  if (!opened.ok) return { ...opened, scsAsId: claimed };
  let outcome: NotificationOutcome;
  try {
    outcome = NotificationOutcome.decode(opened.event.payload);
  } catch {
    return { ok: false, reason: 'MALFORMED', scsAsId: claimed };
  }
  if (!Object.values(NOTIFICATION_OUTCOMES).includes(outcome.outcome as never)) return { ok: false, reason: 'MALFORMED', scsAsId: claimed };
  if (subject !== notificationOutcomeSubject(outcome.scsAsId) || outcome.decidedAtMs !== opened.event.version) {
    return { ok: false, reason: 'WRONG_SUBJECT', scsAsId: claimed };
  }
  if (outcome.decidedAtMs + NOTIFICATION_OUTCOMES_MAX_AGE_MS < nowMs) return { ok: false, reason: 'EXPIRED', scsAsId: claimed };
  return { ok: true, outcome };
}
