import { AckPolicy, DeliverPolicy } from 'nats';
import type { JsMsg, NatsConnection } from 'nats';
import type { AuditLog, EventVerifier } from '@aese/events';
import { ensureNotificationStream, NOTIFICATIONS_STREAM, NOTIFICATIONS_SUBJECT_PREFIX, openNotification, untilKeysAnswer } from '@aese/events';
import type { Logger } from '@aese/logger';
import { retryJetStream } from '@aese/nats';
import type { NotificationRequested } from '@aese/protos/events/v1';
import { deliverNotification } from './delivery.js';
import type { DeliveryDeps } from './delivery.js';

/** The durable consumer every edge replica shares: each notification goes to one replica. */
export const NOTIFIER_CONSUMER = 'edge-notifier';
/** Attempts per notification before it is dropped (and audited). */
export const MAX_DELIVERY_ATTEMPTS = 8;
/** Back-off between attempts, by attempt number (the last value repeats). */
export const RETRY_DELAYS_MS: readonly number[] = [500, 2_000, 5_000, 15_000, 30_000, 60_000];
const ACK_WAIT_MS = 30_000;

/** Delays scaled for tests; production uses {@link RETRY_DELAYS_MS}. */
export interface NotifierOptions {
  readonly nc: NatsConnection;
  readonly deps: DeliveryDeps;
  readonly logger: Logger;
  readonly audit: AuditLog;
  /** Verifies that capability exposure signed each request (event-signing keys from crypto). */
  readonly verifier: EventVerifier;
  readonly retryDelaysMs?: readonly number[];
}

/**
 * Consumes the notification stream and delivers each message, with explicit acks: delivered or
 * dropped → ack (a drop is audited); retry → nak with back-off; a replica that dies mid-delivery
 * leaves the message to be redelivered to another after the ack wait.
 */
export async function startNotifier(options: NotifierOptions): Promise<{ stop(): Promise<void> }> {
  const { nc, logger, audit } = options;
  const delays = options.retryDelaysMs ?? RETRY_DELAYS_MS;
  await ensureNotificationStream(nc);
  const jsm = await retryJetStream(() => nc.jetstreamManager());
  await retryJetStream(() =>
    jsm.consumers.add(NOTIFICATIONS_STREAM, {
      durable_name: NOTIFIER_CONSUMER,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      filter_subject: `${NOTIFICATIONS_SUBJECT_PREFIX}.>`,
      max_deliver: MAX_DELIVERY_ATTEMPTS,
      ack_wait: ACK_WAIT_MS * 1_000_000,
    }),
  );
  const consumer = await retryJetStream(() => nc.jetstream().consumers.get(NOTIFICATIONS_STREAM, NOTIFIER_CONSUMER));
  const messages = await consumer.consume({ max_messages: 64 });
  let stopping = false;
  const handle = async (m: JsMsg): Promise<void> => {
    // Nothing unsigned or misbound goes further: no DNS lookup, no connection, no signing.
    // Keys unavailable (crypto not up): no verdict and no alarm; hold the message (a nak would
    // spend its delivery attempts) and look again.
    const opened = await untilKeysAnswer(() => openNotification(options.verifier, m.subject, m.data, Date.now()), {
      stopped: () => stopping,
      onWait: (err, waits) => {
        if (waits === 1) logger.warn({ err }, 'notification request waits for event-signing keys');
        m.working();
      },
    });
    if (!opened) return;
    if (!opened.ok) {
      m.term();
      logger.warn({ reason: opened.reason, subject: m.subject, seq: m.seq }, 'notification request refused: not signed by capability exposure for this AS');
      audit.record({ actor: 'unknown', action: 'notification.request', decision: 'deny', reason: opened.reason, detail: { scsAsId: opened.scsAsId, seq: m.seq } });
      return;
    }
    const n: NotificationRequested = opened.notification;
    const attempt = m.info.redeliveryCount;
    const outcome = await deliverNotification(
      { notificationId: n.notificationId, scsAsId: n.scsAsId, destination: n.destination, body: n.body, obligations: n.obligations, attempt },
      options.deps,
    ).catch((err: unknown) => {
      logger.warn({ err }, 'notification delivery failed');
      return { kind: 'retry' as const, reason: 'INTERNAL' };
    });
    if (outcome.kind === 'delivered') {
      m.ack();
      logger.debug({ notificationId: n.notificationId, status: outcome.status }, 'notification delivered');
    } else if (outcome.kind === 'retry' && attempt < MAX_DELIVERY_ATTEMPTS) {
      m.nak(delays[Math.min(attempt - 1, delays.length - 1)]);
    } else {
      m.term();
      audit.record({
        actor: n.scsAsId,
        action: 'notification.deliver',
        decision: 'deny',
        reason: outcome.reason,
        detail: { notificationId: n.notificationId, attempts: attempt },
      });
    }
  };
  const done = (async () => {
    for await (const m of messages) await handle(m);
  })().catch((err: unknown) => logger.error({ err }, 'notification consumer stopped'));
  return {
    stop: async () => {
      stopping = true;
      await messages.close();
      await done;
    },
  };
}
