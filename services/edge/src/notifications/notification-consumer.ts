import { AckPolicy, DeliverPolicy } from 'nats';
import { SpanKind } from '@opentelemetry/api';
import type { Meter } from '@opentelemetry/api';
import type { JsMsg, NatsConnection } from 'nats';
import type { AuditLog, EventSigner, EventVerifier } from '@aese/events';
import {
  ensureNotificationOutcomeStream,
  ensureNotificationStream,
  NOTIFICATIONS_STREAM,
  NOTIFICATIONS_SUBJECT_PREFIX,
  notificationObligations,
  openNotification,
  untilKeysAnswer,
} from '@aese/events';
import type { Logger } from '@aese/logger';
import { retryJetStream } from '@aese/nats';
import { contextFromTraceparent, inSpan } from '@aese/telemetry';
import type { NotificationRequested } from '@aese/protos/events/v1';
import { deliverNotification, planObligations } from './delivery.js';
import type { DeliveryDeps, DeliveryOutcome } from './delivery.js';
import { DeliveryReporter } from './delivery-report.js';
import { LANES_CLOSED, NotificationLanes } from './pacing.js';

/** The durable consumer every edge replica shares: each notification goes to one replica. */
export const NOTIFIER_CONSUMER = 'edge-notifier';
/** Attempts per notification before it is dropped (and audited). */
export const MAX_DELIVERY_ATTEMPTS = 8;
/** Back-off between attempts, by attempt number (the last value repeats). */
export const RETRY_DELAYS_MS: readonly number[] = [500, 2_000, 5_000, 15_000, 30_000, 60_000];
const ACK_WAIT_MS = 30_000;
/** Notifications this edge holds at once (waiting in their AS's lane or being delivered). */
const MAX_IN_FLIGHT = 512;

/** Delays scaled for tests; production uses {@link RETRY_DELAYS_MS}. */
export interface NotifierOptions {
  readonly nc: NatsConnection;
  readonly deps: DeliveryDeps;
  readonly logger: Logger;
  readonly audit: AuditLog;
  /** Verifies that capability exposure signed each request (event-signing keys from crypto). */
  readonly verifier: EventVerifier;
  /** Signs the delivery outcomes reported back to capability exposure. */
  readonly outcomeSigner: EventSigner;
  readonly retryDelaysMs?: readonly number[];
  /** Attempts before a notification is dropped (at most {@link MAX_DELIVERY_ATTEMPTS}). */
  readonly maxAttempts?: number;
  /** Notifications one AS may have waiting here (see {@link NotificationLanes}). */
  readonly maxHeldPerAs?: number;
  readonly meter?: Meter;
}

/**
 * Consumes the notification stream and delivers each message in its AS's lane (in order, paced
 * to a `rate-limit` obligation), with explicit acks: delivered or dropped → ack (a drop is logged,
 * audited and counted); retry → nak with back-off; a replica that dies mid-delivery leaves the
 * message to be redelivered to another after the ack wait (a message waiting in a lane tells
 * JetStream it is still being worked on). Every final fate is reported, signed, to capability
 * exposure, so a report counts toward its subscription only once it was delivered.
 */
export async function startNotifier(options: NotifierOptions): Promise<{ stop(): Promise<void> }> {
  const { nc, logger, audit } = options;
  const delays = options.retryDelaysMs ?? RETRY_DELAYS_MS;
  const maxAttempts = Math.min(options.maxAttempts ?? MAX_DELIVERY_ATTEMPTS, MAX_DELIVERY_ATTEMPTS);
  await ensureNotificationStream(nc);
  await ensureNotificationOutcomeStream(nc);
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
  const js = nc.jetstream();
  const reporter = new DeliveryReporter({
    logger,
    audit,
    signer: options.outcomeSigner,
    publish: async (subject, data, msgID) => void (await js.publish(subject, data, { msgID })),
    ...(options.meter ? { meter: options.meter } : {}),
  });
  const lanes = new NotificationLanes(options.maxHeldPerAs === undefined ? {} : { maxHeldPerAs: options.maxHeldPerAs });
  const consumer = await retryJetStream(() => js.consumers.get(NOTIFICATIONS_STREAM, NOTIFIER_CONSUMER));
  const messages = await consumer.consume({ max_messages: 64 });
  let stopping = false;

  const settle = (m: JsMsg, n: NotificationRequested, attempt: number, outcome: DeliveryOutcome): void => {
    if (outcome.kind === 'delivered') {
      m.ack();
      reporter.delivered(n, attempt, outcome.status);
    } else if (outcome.kind === 'retry' && attempt < maxAttempts) {
      m.nak(delays[Math.min(attempt - 1, delays.length - 1)]);
      reporter.retrying(n, attempt, outcome.reason);
    } else {
      m.term();
      reporter.dropped(n, attempt, outcome.reason);
    }
  };

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
      reporter.refused(opened.reason, opened.scsAsId, m.seq);
      return;
    }
    const n = opened.notification;
    const attempt = m.info.redeliveryCount;
    const plan = planObligations(notificationObligations(n));
    // An obligation that cannot be met: nothing is sent (fail closed), and the drop is reported.
    if (!plan.ok) return settle(m, n, attempt, { kind: 'drop', reason: plan.reason });
    // Held in the AS's lane: JetStream must not hand the message to another replica meanwhile.
    const keepAlive = setInterval(() => m.working(), ACK_WAIT_MS / 3);
    try {
      const run = lanes.run(n.scsAsId, plan.perSecond, () =>
        // The delivery continues the trace capability-exposure signed into the request.
        inSpan(
          'deliver notification',
          () =>
            deliverNotification({ notificationId: n.notificationId, scsAsId: n.scsAsId, destination: n.destination, body: n.body, encrypt: plan.encrypt, attempt }, options.deps),
          { kind: SpanKind.CLIENT, attributes: { 'aese.api': n.api, 'aese.attempt': attempt } },
          contextFromTraceparent(n.traceparent),
        ).catch((err: unknown): DeliveryOutcome => {
          logger.warn({ err }, 'notification delivery failed');
          return { kind: 'retry', reason: 'INTERNAL' };
        }),
      );
      if (run === undefined) return settle(m, n, attempt, { kind: 'drop', reason: 'QUEUE_FULL' });
      const outcome = await run;
      // Stopping before its turn: another replica (or this one, restarted) takes it at once.
      if (outcome === LANES_CLOSED) return m.nak();
      settle(m, n, attempt, outcome);
    } finally {
      clearInterval(keepAlive);
    }
  };

  const inFlight = new Set<Promise<void>>();
  const done = (async () => {
    for await (const m of messages) {
      const task = handle(m)
        .catch((err: unknown) => logger.error({ err }, 'notification handling failed'))
        .finally(() => inFlight.delete(task));
      inFlight.add(task);
      if (inFlight.size >= MAX_IN_FLIGHT) await Promise.race(inFlight);
    }
  })().catch((err: unknown) => logger.error({ err }, 'notification consumer stopped'));
  return {
    stop: async () => {
      stopping = true;
      lanes.close();
      await messages.close();
      await done;
      await Promise.all(inFlight);
      await reporter.flush();
    },
  };
}
