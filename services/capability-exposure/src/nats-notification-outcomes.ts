import { AckPolicy, DeliverPolicy } from 'nats';
import type { JsMsg, NatsConnection } from 'nats';
import type { AuditLog, EventVerifier } from '@aese/events';
import {
  ensureNotificationOutcomeStream,
  NOTIFICATION_OUTCOMES,
  NOTIFICATION_OUTCOMES_STREAM,
  NOTIFICATION_OUTCOMES_SUBJECT_PREFIX,
  openNotificationOutcome,
  untilKeysAnswer,
} from '@aese/events';
import type { Logger } from '@aese/logger';
import { retryJetStream } from '@aese/nats';
import type { NotificationOutcomeReport } from './domain/notifications.js';
import type { Settlement } from './domain/report-ledger.js';

/** The durable consumer every capability-exposure replica shares. */
export const OUTCOME_CONSUMER = 'capability-exposure-outcomes';
/** An outcome that could not be applied (the subscriptions bucket not ready) is tried again after this. */
const RETRY_MS = 1_000;
const ACK_WAIT_MS = 30_000;

export interface OutcomeFollowerOptions {
  readonly nc: NatsConnection;
  /** Verifies that the edge signed each outcome (event-signing keys from crypto). */
  readonly verifier: EventVerifier;
  readonly logger: Logger;
  readonly audit: AuditLog;
  readonly settle: (outcome: NotificationOutcomeReport) => Promise<Settlement>;
}

/**
 * Follows the edge's signed delivery outcomes and applies each to its subscription's report
 * count. An outcome that is not the edge's (unsigned, moved to another AS, expired) changes
 * nothing and is logged and audited (`notification.outcome`); one that names no reservation (a
 * copy of one already applied, a test notification) changes nothing.
 */
export async function followNotificationOutcomes(options: OutcomeFollowerOptions): Promise<{ stop(): Promise<void> }> {
  const { nc, logger, audit } = options;
  await ensureNotificationOutcomeStream(nc);
  const jsm = await retryJetStream(() => nc.jetstreamManager());
  await retryJetStream(() =>
    jsm.consumers.add(NOTIFICATION_OUTCOMES_STREAM, {
      durable_name: OUTCOME_CONSUMER,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      filter_subject: `${NOTIFICATION_OUTCOMES_SUBJECT_PREFIX}.>`,
      ack_wait: ACK_WAIT_MS * 1_000_000,
    }),
  );
  const consumer = await retryJetStream(() => nc.jetstream().consumers.get(NOTIFICATION_OUTCOMES_STREAM, OUTCOME_CONSUMER));
  const messages = await consumer.consume({ max_messages: 64 });
  let stopping = false;
  const handle = async (m: JsMsg): Promise<void> => {
    const opened = await untilKeysAnswer(() => openNotificationOutcome(options.verifier, m.subject, m.data, Date.now()), {
      stopped: () => stopping,
      onWait: (err, waits) => {
        if (waits === 1) logger.warn({ err }, 'notification outcome waits for event-signing keys');
        m.working();
      },
    });
    if (!opened) return;
    if (!opened.ok) {
      m.term();
      logger.warn({ reason: opened.reason, scsAsId: opened.scsAsId, seq: m.seq }, 'notification outcome refused: not signed by the edge for this AS');
      audit.record({ actor: 'unknown', action: 'notification.outcome', decision: 'deny', reason: opened.reason, detail: { scsAsId: opened.scsAsId, seq: m.seq } });
      return;
    }
    const o = opened.outcome;
    try {
      const settled = await options.settle({
        notificationId: o.notificationId,
        scsAsId: o.scsAsId,
        api: o.api,
        subscriptionId: o.subscriptionId,
        delivered: o.outcome === NOTIFICATION_OUTCOMES.delivered,
      });
      m.ack();
      logger.debug({ notificationId: o.notificationId, outcome: o.outcome, settled }, 'notification outcome applied');
    } catch (err) {
      logger.warn({ err, notificationId: o.notificationId }, 'notification outcome not applied yet');
      m.nak(RETRY_MS);
    }
  };
  const done = (async () => {
    for await (const m of messages) await handle(m);
  })().catch((err: unknown) => logger.error({ err }, 'notification outcome consumer stopped'));
  return {
    stop: async () => {
      stopping = true;
      await messages.close();
      await done;
    },
  };
}
