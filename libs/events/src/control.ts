import { consumerOpts } from 'nats';
import type { JetStreamManager, NatsConnection } from 'nats';
import { retryJetStream } from '@aese/nats';
import { AeseError } from '@aese/errors';
import { SignedEvent } from '@aese/protos/events/v1';
import { signedBytes } from './signing.js';
import { ensureStream } from './streams.js';
import type { EventSigner, EventVerifier } from './signing.js';
import { CONTROL_STREAM } from './subjects.js';
import type { ControlSubject } from './subjects.js';

/** Idle heartbeat of control consumers; two missed ones make the consumer re-create itself. */
const CONSUMER_HEARTBEAT_MS = 1_000;
/** How often a publisher retries when another publisher took the next version first. */
const MAX_PUBLISH_ATTEMPTS = 32;

/** Creates the control stream if it is missing (idempotent; every service may call it). */
export async function ensureControlStream(nc: NatsConnection): Promise<void> {
  await ensureStream(nc, { name: CONTROL_STREAM, subjects: ['aese.control.v1.>'], max_msg_size: 64 * 1024 });
}

async function lastSequence(jsm: JetStreamManager): Promise<number> {
  try {
    return (await jsm.streams.info(CONTROL_STREAM)).state.last_seq;
  } catch (err) {
    throw new AeseError('UNAVAILABLE', 'cannot read the control stream', { cause: err });
  }
}

async function lastSequenceOf(jsm: JetStreamManager, subject: ControlSubject): Promise<number | undefined> {
  try {
    return (await jsm.streams.getMessage(CONTROL_STREAM, { last_by_subj: subject })).seq;
  } catch (err) {
    if (String((err as Error).message).includes('no message found')) return undefined;
    throw new AeseError('UNAVAILABLE', 'cannot read the control stream', { cause: err });
  }
}

/**
 * Publishes signed control events. An event's version is the stream sequence it lands at: the
 * publisher signs `last sequence + 1` and publishes with JetStream's expected-last-sequence
 * check, so versions never repeat, and a copy of an old event republished later lands at a
 * sequence that no longer matches its signed version and is ignored.
 */
export class ControlPublisher {
  constructor(
    private readonly nc: NatsConnection,
    private readonly signer: EventSigner,
  ) {}

  private jsm: Promise<JetStreamManager> | undefined;

  async publish(subject: ControlSubject, type: string, payload: Uint8Array, traceparent = ''): Promise<number> {
    // One manager for the publisher's life: creating one costs a round trip.
    this.jsm ??= this.nc.jetstreamManager();
    const jsm = await this.jsm.catch((err: unknown) => {
      this.jsm = undefined;
      throw new AeseError('UNAVAILABLE', 'JetStream is not reachable', { cause: err });
    });
    const js = this.nc.jetstream();
    for (let attempt = 0; attempt < MAX_PUBLISH_ATTEMPTS; attempt++) {
      const last = await lastSequence(jsm);
      const version = last + 1;
      const { kid, signature } = await this.signer.sign(signedBytes(subject, type, version, payload));
      const event = SignedEvent.encode({ payload: Buffer.from(payload), type, version, kid, signature: Buffer.from(signature), traceparent }).finish();
      try {
        await js.publish(subject, event, { expect: { lastSequence: last } });
        return version;
      } catch (err) {
        if (!String((err as Error).message).includes('wrong last sequence')) {
          throw new AeseError('UNAVAILABLE', 'cannot publish a control event', { cause: err });
        }
      }
    }
    throw new AeseError('UNAVAILABLE', 'control event version contention');
  }
}

/** Why a received control event changed nothing. */
export type RejectedEventReason = 'BAD_SIGNATURE' | 'STALE_VERSION' | 'MALFORMED';

export interface ControlConsumerOptions {
  readonly subject: ControlSubject;
  readonly verifier: EventVerifier;
  /** Applies a verified event with a version above every one applied before. */
  readonly apply: (event: { type: string; payload: Uint8Array; version: number; traceparent: string }) => void | Promise<void>;
  /** Called for an event that was ignored (to audit it). */
  readonly onRejected: (reason: RejectedEventReason, event: { type: string; version: number; kid: string }) => void;
}

/**
 * Replays a control subject from its first event, then follows it. `start()` resolves once every
 * event that existed at start has been processed, so a service can report SERVING only with
 * current state. Only signed events with a version above the last applied one take effect.
 */
export class ControlConsumer {
  private appliedVersion = 0;
  private processedSeq = 0;
  private stopped = false;
  private stopFn: (() => void) | undefined;

  constructor(
    private readonly nc: NatsConnection,
    private readonly options: ControlConsumerOptions,
  ) {}

  /** The highest version applied so far. */
  get version(): number {
    return this.appliedVersion;
  }

  async start(): Promise<void> {
    const jsm = await retryJetStream(() => this.nc.jetstreamManager());
    const target = await retryJetStream(() => lastSequenceOf(jsm, this.options.subject));
    let caughtUp!: () => void;
    const ready = new Promise<void>(resolve => (caughtUp = resolve));
    if (target === undefined) caughtUp();
    // A push ordered consumer: the Debian nats-server (2.9) does not serve the newer pull-based
    // ordered consumers; this one re-creates itself after a reconnect and never skips a message.
    const opts = consumerOpts();
    opts.orderedConsumer();
    // Missed heartbeats are how a consumer notices its server died (in a cluster): check often.
    opts.idleHeartbeat(CONSUMER_HEARTBEAT_MS);
    opts.deliverAll();
    const messages = await retryJetStream(() => this.nc.jetstream().subscribe(this.options.subject, opts));
    this.stopFn = () => messages.unsubscribe();
    void (async () => {
      for await (const m of messages) {
        if (this.stopped) break;
        await this.handle(m.data, m.seq);
        this.processedSeq = m.seq;
        if (target !== undefined && m.seq >= target) caughtUp();
      }
    })();
    await ready;
  }

  stop(): void {
    this.stopped = true;
    this.stopFn?.();
  }

  /**
   * Resolves once every event on the subject at the time of the call has been processed; used
   * after a reconnect, when events published during the outage are still on their way.
   */
  async resync(timeoutMs = 5_000): Promise<void> {
    const jsm = await this.nc.jetstreamManager();
    const target = await lastSequenceOf(jsm, this.options.subject);
    const until = Date.now() + timeoutMs;
    while (target !== undefined && this.processedSeq < target) {
      if (Date.now() > until) throw new AeseError('UNAVAILABLE', 'control events did not catch up in time');
      await new Promise(r => setTimeout(r, 5));
    }
  }

  private async handle(data: Uint8Array, seq: number): Promise<void> {
    let event: SignedEvent;
    try {
      event = SignedEvent.decode(data);
    } catch {
      this.options.onRejected('MALFORMED', { type: '', version: 0, kid: '' });
      return;
    }
    const meta = { type: event.type, version: event.version, kid: event.kid };
    const ok = await this.options.verifier
      .verify(event.kid, signedBytes(this.options.subject, event.type, event.version, event.payload), event.signature)
      .catch(() => false);
    if (!ok) {
      this.options.onRejected('BAD_SIGNATURE', meta);
      return;
    }
    // A replayed copy lands at a new sequence that differs from its signed version.
    if (event.version !== seq || event.version <= this.appliedVersion) {
      this.options.onRejected('STALE_VERSION', meta);
      return;
    }
    await this.options.apply({ type: event.type, payload: event.payload, version: event.version, traceparent: event.traceparent });
    this.appliedVersion = event.version;
  }
}
