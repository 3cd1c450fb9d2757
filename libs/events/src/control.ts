import { consumerOpts } from 'nats';
import type { JetStreamManager, JsMsg, MsgHdrs, NatsConnection } from 'nats';
import { retryJetStream } from '@aese/nats';
import { AeseError } from '@aese/errors';
import type { Logger } from '@aese/logger';
import { SignedEvent } from '@aese/protos/events/v1';
import type { AuditLog } from './audit.js';
import { signedBytes, untilKeysAnswer } from './signing.js';
import { ensureStream } from './streams.js';
import { consumeTraced, publishTraced } from './trace-headers.js';
import type { EventSigner, EventVerifier } from './signing.js';
import { CONTROL_STREAM, CONTROL_SUBJECTS, controlStreamOf, TOKEN_REVOCATIONS_STREAM, TOKEN_REVOCATIONS_SUBJECT } from './subjects.js';
import type { ControlSubject } from './subjects.js';

/** Idle heartbeat of control consumers; two missed ones make the consumer re-create itself. */
const CONSUMER_HEARTBEAT_MS = 1_000;
/** How often a publisher retries when another publisher took the next version first. */
const MAX_PUBLISH_ATTEMPTS = 32;
/** Clock difference between a consumer and the NATS server that a retention judgement tolerates. */
export const CONTROL_CLOCK_SKEW_MS = 5_000;
/** How often a starting consumer re-reads the stream state in case everything expired meanwhile. */
const WATCHDOG_MS = 1_000;
const MAX_CONTROL_EVENT_BYTES = 64 * 1024;
/** Token-revocation snapshots can be large; NATS's default maximum payload. */
export const MAX_TOKEN_STREAM_MESSAGE_BYTES = 1024 * 1024;

const nanos = (ms: number): number => ms * 1_000_000;

/** Creates the permanent control stream if it is missing (idempotent; every service may call it). */
export async function ensureControlStream(nc: NatsConnection): Promise<void> {
  await ensureStream(nc, { name: CONTROL_STREAM, subjects: [controlStreamOf(CONTROL_SUBJECTS.revocations).filter], max_msg_size: MAX_CONTROL_EVENT_BYTES });
}

/**
 * Creates the token-revocation stream with `retentionMs` as its max age, and refuses an existing
 * one that keeps messages for less: its consumers would take every expiry for tampering, or
 * worse, a shortened retention would drop revocations of tokens still alive.
 */
export async function ensureTokenRevocationStream(nc: NatsConnection, retentionMs: number): Promise<void> {
  if (!Number.isInteger(retentionMs) || retentionMs < 1_000) throw new TypeError('token revocation retention must be at least 1 s');
  const { stream, filter } = controlStreamOf(TOKEN_REVOCATIONS_SUBJECT);
  await ensureStream(nc, { name: stream, subjects: [filter], max_age: nanos(retentionMs), max_msg_size: MAX_TOKEN_STREAM_MESSAGE_BYTES });
  const jsm = await retryJetStream(() => nc.jetstreamManager());
  const maxAge = (await retryJetStream(() => jsm.streams.info(stream))).config.max_age;
  if (maxAge !== 0 && maxAge < nanos(retentionMs)) {
    throw new AeseError(
      'FAILED_PRECONDITION',
      `stream ${TOKEN_REVOCATIONS_STREAM} keeps messages ${Math.round(maxAge / 1e9)} s, less than the configured token revocation retention (${retentionMs / 1000} s): set TOKEN_REVOCATION_RETENTION_S consistently or recreate the stream`,
    );
  }
}

/** Milliseconds since the epoch of a JetStream timestamp (RFC 3339 with nanoseconds); 0 for none. */
function streamTimeMs(ts: string | undefined): number {
  if (!ts) return 0;
  const ms = Date.parse(ts.replace(/(\.\d{3})\d*Z$/, '$1Z'));
  return Number.isFinite(ms) && ms > 0 ? ms : 0;
}

/**
 * The exact bytes a control event's signature covers: subject, type, version (its stream
 * sequence), the server time of its predecessor in the stream, and the payload.
 */
export function controlSignedBytes(subject: string, type: string, version: number, prevPublishedAtMs: number, payload: Uint8Array): Uint8Array {
  return signedBytes(subject, type, version, Buffer.concat([Buffer.from(`prev-published-at-ms:${prevPublishedAtMs}\n`, 'utf8'), payload]));
}

async function streamState(jsm: JetStreamManager, stream: string): Promise<{ lastSeq: number; lastAtMs: number; messages: number; maxAgeMs: number }> {
  try {
    const { state, config } = await jsm.streams.info(stream);
    return { lastSeq: state.last_seq, lastAtMs: streamTimeMs(state.last_ts), messages: state.messages, maxAgeMs: Math.floor((config.max_age ?? 0) / 1_000_000) };
  } catch (err) {
    throw new AeseError('UNAVAILABLE', `cannot read the stream ${stream}`, { cause: err });
  }
}

/**
 * Publishes signed control events. An event's version is the stream sequence it lands at: the
 * publisher signs `last sequence + 1` and the server time of the current last message, and
 * publishes with JetStream's expected-last-sequence check, so versions never repeat, a copy of
 * an old event republished later lands at a sequence that no longer matches its signed version,
 * and a consumer can tell a predecessor that expired from one that was deleted.
 */
export class ControlPublisher {
  constructor(
    private readonly nc: NatsConnection,
    private readonly signer: EventSigner,
  ) {}

  private jsm: Promise<JetStreamManager> | undefined;

  publish(subject: ControlSubject, type: string, payload: Uint8Array, traceparent = ''): Promise<number> {
    return publishTraced(subject, headers => this.publishEvent(subject, type, payload, traceparent, headers));
  }

  private async publishEvent(subject: ControlSubject, type: string, payload: Uint8Array, traceparent: string, headers: MsgHdrs | undefined): Promise<number> {
    const { stream } = controlStreamOf(subject);
    // One manager for the publisher's life: creating one costs a round trip.
    this.jsm ??= this.nc.jetstreamManager();
    const jsm = await this.jsm.catch((err: unknown) => {
      this.jsm = undefined;
      throw new AeseError('UNAVAILABLE', 'JetStream is not reachable', { cause: err });
    });
    const js = this.nc.jetstream();
    for (let attempt = 0; attempt < MAX_PUBLISH_ATTEMPTS; attempt++) {
      const { lastSeq, lastAtMs } = await streamState(jsm, stream);
      const version = lastSeq + 1;
      const prevPublishedAtMs = lastSeq > 0 ? lastAtMs : 0;
      const { kid, signature } = await this.signer.sign(controlSignedBytes(subject, type, version, prevPublishedAtMs, payload));
      const event = SignedEvent.encode({ payload: Buffer.from(payload), type, version, kid, signature: Buffer.from(signature), traceparent, prevPublishedAtMs }).finish();
      try {
        await js.publish(subject, event, { expect: { lastSequence: lastSeq }, ...(headers ? { headers } : {}) });
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

/**
 * Where a consumer stands: `starting` until it has processed the stream up to its last sequence,
 * `current` after, `waiting-for-keys` while event-signing keys cannot be fetched, `tampered` once
 * an event is missing that retention does not explain (for good: it applies nothing more),
 * `failed` when an event could not be applied (the consumer has stopped).
 */
export type ControlFeedStatus = 'starting' | 'current' | 'waiting-for-keys' | 'tampered' | 'failed' | 'stopped';

/** A stretch of a control stream that is missing and that no retention explains. */
export interface ControlTampering {
  readonly stream: string;
  readonly subject: ControlSubject;
  readonly firstMissing: number;
  readonly lastMissing: number;
}

/** What a service needs of a control feed: start, follow, tell its status. */
export interface ControlFeed {
  start(): Promise<void>;
  stop(): void;
  resync(timeoutMs?: number): Promise<void>;
  readonly status: ControlFeedStatus;
  onStatus(listener: (status: ControlFeedStatus) => void): void;
}

export interface ControlConsumerOptions {
  readonly subject: ControlSubject;
  readonly verifier: EventVerifier;
  /** Applies a verified event with a version above every one applied before. */
  readonly apply: (event: { type: string; payload: Uint8Array; version: number; traceparent: string }) => void | Promise<void>;
  /** Called for an event that was ignored (to audit it). */
  readonly onRejected: (reason: RejectedEventReason, event: { type: string; version: number; kid: string }) => void;
  /** Logs the tampering line and the key waits; audits tampering (once per connection and gap). */
  readonly logger: Logger;
  readonly audit: AuditLog;
  /**
   * The stream's retention (max age) for a stream whose events expire: a missing event is
   * accepted only when it is older than this. Undefined for the permanent stream: every missing
   * event is tampering.
   */
  readonly retentionMs?: number;
  /**
   * Signed snapshots of this feed's state in the same stream: start-up loads the last valid one
   * and replays only the events after the sequence it covers (`load` applies it and returns that
   * sequence, which must lie before the snapshot itself). Without one, or if it does not verify,
   * the whole stream is replayed.
   */
  readonly snapshot?: { readonly subject: ControlSubject; readonly type: string; load(payload: Uint8Array, seq: number): number };
  readonly now?: () => number;
}

/** Tampering already reported on a connection (several consumers read the same stream). */
const reported = new WeakMap<NatsConnection, Set<string>>();

/**
 * Replays a control stream from its first event, then follows it. It reads the whole stream,
 * not only its subject, so every sequence from the first to the stream's last is accounted for:
 * present, or (in a stream with retention) signed as older than the retention by its successor.
 * Anything else is tampering: the consumer reports it once, applies nothing more, and its
 * status stays `tampered`. `start()` resolves once the stream has been processed up to its last
 * sequence (or tampering was found), so a service can report SERVING only with current state.
 * Only signed events of its subject with a version above the last applied one take effect.
 */
export class ControlConsumer implements ControlFeed {
  private appliedVersion = 0;
  private processedSeq = 0;
  private stopped = false;
  private stopFn: (() => void) | undefined;
  private state: ControlFeedStatus = 'starting';
  private caughtUp = false;
  private readonly listeners: ((status: ControlFeedStatus) => void)[] = [];
  private readonly stream: string;
  private readonly now: () => number;
  /** The stream's max age as the server keeps it (0: forever); read at start. */
  private streamMaxAgeMs = 0;

  constructor(
    private readonly nc: NatsConnection,
    private readonly options: ControlConsumerOptions,
  ) {
    this.stream = controlStreamOf(options.subject).stream;
    this.now = options.now ?? Date.now;
  }

  /** The highest version applied so far. */
  get version(): number {
    return this.appliedVersion;
  }

  /** The stream sequence up to which every event has been processed (state reflects them all). */
  get processedSequence(): number {
    return this.processedSeq;
  }

  get status(): ControlFeedStatus {
    return this.state;
  }

  onStatus(listener: (status: ControlFeedStatus) => void): void {
    this.listeners.push(listener);
  }

  async start(): Promise<void> {
    const jsm = await retryJetStream(() => this.nc.jetstreamManager());
    const { lastSeq, lastAtMs, messages, maxAgeMs } = await retryJetStream(() => streamState(jsm, this.stream));
    this.streamMaxAgeMs = maxAgeMs;
    const fromSnapshot = this.options.snapshot ? await this.loadSnapshot(jsm) : 0;
    let ready!: () => void;
    const done = new Promise<void>(resolve => (ready = resolve));
    const reachedEnd = (): void => {
      this.caughtUp = true;
      if (this.state === 'starting') this.setStatus('current');
      ready();
    };
    if (messages === 0) {
      // Nothing to replay; a stream that had events and holds none must have let them expire.
      if (lastSeq > 0) this.judgeMissing(1, lastSeq, lastAtMs);
      reachedEnd();
    } else if (fromSnapshot >= lastSeq) {
      reachedEnd();
    }
    // A push ordered consumer: the Debian nats-server (2.9) does not serve the newer pull-based
    // ordered consumers; this one re-creates itself after a reconnect and never skips a message.
    const opts = consumerOpts();
    opts.orderedConsumer();
    // Missed heartbeats are how a consumer notices its server died (in a cluster): check often.
    opts.idleHeartbeat(CONSUMER_HEARTBEAT_MS);
    if (fromSnapshot > 0) opts.startSequence(fromSnapshot + 1);
    else opts.deliverAll();
    const subscription = await retryJetStream(() => this.nc.jetstream().subscribe(controlStreamOf(this.options.subject).filter, opts));
    this.stopFn = () => subscription.unsubscribe();
    void (async () => {
      for await (const m of subscription) {
        if (this.stopped) break;
        await consumeTraced(this.options.subject, m.headers, () => this.handle(m));
        if (this.stopped) break;
        if (!this.caughtUp && (m.seq >= lastSeq || m.info.pending === 0)) {
          // The last event present is older than the stream's last sequence: its tail is gone.
          if (m.seq < lastSeq) this.judgeMissing(m.seq + 1, lastSeq, lastAtMs);
          reachedEnd();
        }
      }
    })()
      .catch((err: unknown) => {
        // An event that could not be applied (or a dead subscription) leaves this replica's state
        // behind the stream: it must stop serving, not keep deciding on what it had.
        this.options.logger.error({ err, stream: this.stream, subject: this.options.subject }, 'control consumer stopped; not serving');
        this.setStatus('failed');
      })
      // A stopped consumer lets a pending start() return (its status says it is not current).
      .finally(() => ready());
    // When no message comes to say so (all expired meanwhile, or none left after a snapshot and
    // the tail gone), the consumer's own state tells that everything there was has been processed.
    const watchdog = setInterval(() => {
      void (async () => {
        if (this.caughtUp) return;
        const now = await streamState(jsm, this.stream);
        if (now.messages > 0) {
          const info = await subscription.consumerInfo();
          if (info.num_pending > 0 || info.delivered.stream_seq > this.processedSeq) return;
        }
        if (this.caughtUp) return;
        if (now.lastSeq > this.processedSeq) this.judgeMissing(this.processedSeq + 1, now.lastSeq, now.lastAtMs);
        reachedEnd();
      })().catch(() => undefined);
    }, WATCHDOG_MS);
    await done.finally(() => clearInterval(watchdog));
  }

  stop(): void {
    this.stopped = true;
    this.setStatus('stopped');
    this.stopFn?.();
  }

  /**
   * Resolves once every event in the stream at the time of the call has been processed; used
   * after a reconnect, when events published during the outage are still on their way. A tail
   * that went missing meanwhile is judged like any other gap.
   */
  async resync(timeoutMs = 5_000): Promise<void> {
    const jsm = await this.nc.jetstreamManager();
    const { lastSeq, lastAtMs } = await streamState(jsm, this.stream);
    if (this.processedSeq < lastSeq) {
      const present = await jsm.streams.getMessage(this.stream, { seq: lastSeq }).then(
        () => true,
        (err: unknown) => {
          if (String((err as Error).message).includes('no message found')) return false;
          throw new AeseError('UNAVAILABLE', `cannot read the stream ${this.stream}`, { cause: err });
        },
      );
      if (!present) {
        this.judgeMissing(this.processedSeq + 1, lastSeq, lastAtMs);
        return;
      }
    }
    const until = Date.now() + timeoutMs;
    while (this.processedSeq < lastSeq && this.state !== 'tampered') {
      if (Date.now() > until) throw new AeseError('UNAVAILABLE', 'control events did not catch up in time');
      await new Promise(r => setTimeout(r, 5));
    }
  }

  /**
   * Loads the last snapshot if it verifies and sits where it was signed to; returns the sequence
   * it covers (every event up to it is accounted for), or 0 to replay from the start.
   */
  private async loadSnapshot(jsm: JetStreamManager): Promise<number> {
    const snapshot = this.options.snapshot!;
    let seq: number;
    let data: Uint8Array;
    try {
      const sm = await retryJetStream(() => jsm.streams.getMessage(this.stream, { last_by_subj: snapshot.subject }));
      seq = sm.seq;
      data = sm.data;
    } catch {
      return 0;
    }
    let event: SignedEvent;
    try {
      event = SignedEvent.decode(data);
    } catch {
      this.options.onRejected('MALFORMED', { type: '', version: 0, kid: '' });
      return 0;
    }
    const meta = { type: event.type, version: event.version, kid: event.kid };
    const ok = event.type === snapshot.type && (await this.verify(snapshot.subject, event));
    if (ok === undefined) return 0;
    if (!ok) {
      this.options.onRejected('BAD_SIGNATURE', meta);
      return 0;
    }
    if (event.version !== seq) {
      this.options.onRejected('STALE_VERSION', meta);
      return 0;
    }
    let covered: number;
    try {
      covered = snapshot.load(event.payload, seq);
    } catch {
      covered = 0;
    }
    if (covered <= 0 || covered >= seq) {
      this.options.onRejected('MALFORMED', meta);
      return 0;
    }
    this.processedSeq = covered;
    this.appliedVersion = covered;
    return covered;
  }

  private setStatus(status: ControlFeedStatus): void {
    if (this.state === status || this.state === 'stopped' || (this.state === 'tampered' && status !== 'stopped')) return;
    this.state = status;
    for (const l of this.listeners) l(status);
  }

  /** A missing stretch whose newest event was published at `newestAtMs`: expired, or tampering. */
  private judgeMissing(firstMissing: number, lastMissing: number, newestAtMs: number): void {
    if (this.expired(newestAtMs)) return;
    this.tamper(firstMissing, lastMissing);
  }

  /**
   * True when a message published at `atMs` is one the stream's retention has removed. Only a
   * stream the consumer was told expires (`retentionMs`) may lose events, and the stream's own
   * max age, not the consumer's setting, says when they leave.
   */
  private expired(atMs: number): boolean {
    const retention = this.streamMaxAgeMs;
    if (this.options.retentionMs === undefined || retention <= 0 || atMs <= 0) return false;
    // The server judges age by its own clock; tolerate a small difference (a tenth of a short retention).
    return atMs + retention - Math.min(CONTROL_CLOCK_SKEW_MS, retention / 10) <= this.now();
  }

  private tamper(firstMissing: number, lastMissing: number): void {
    if (this.state === 'tampered') return;
    const t: ControlTampering = { stream: this.stream, subject: this.options.subject, firstMissing, lastMissing };
    const key = `${t.stream}:${firstMissing}-${lastMissing}`;
    const seen = reported.get(this.nc) ?? new Set<string>();
    reported.set(this.nc, seen);
    if (!seen.has(key)) {
      seen.add(key);
      const range = firstMissing === lastMissing ? `sequence ${firstMissing}` : `sequences ${firstMissing}..${lastMissing}`;
      this.options.logger.error(
        { stream: t.stream, subject: t.subject, firstMissing, lastMissing },
        `control stream ${t.stream} was tampered with: ${range} missing (read for ${t.subject}); not serving until the stream is restored (see docs/security-operations.md)`,
      );
      this.options.audit.record({
        actor: 'unknown',
        action: 'control.integrity',
        decision: 'deny',
        reason: 'TAMPERED',
        detail: { stream: t.stream, subject: t.subject, firstMissing, lastMissing },
      });
    }
    this.setStatus('tampered');
  }

  /**
   * Verifies an event's signature, waiting out an outage of the key custodian: `UNAVAILABLE` is
   * no verdict, so the event is neither rejected nor applied until keys can be fetched.
   */
  private async verify(subject: string, event: SignedEvent): Promise<boolean | undefined> {
    const data = controlSignedBytes(subject, event.type, event.version, event.prevPublishedAtMs, event.payload);
    const ok = await untilKeysAnswer(() => this.options.verifier.verify(event.kid, data, event.signature), {
      stopped: () => this.stopped,
      onWait: (err, waits) => {
        if (waits === 1) this.options.logger.warn({ err, stream: this.stream, subject: this.options.subject }, 'event-signing keys unavailable; control events wait');
        this.setStatus('waiting-for-keys');
      },
    });
    if (ok !== undefined && this.state === 'waiting-for-keys') this.setStatus(this.caughtUp ? 'current' : 'starting');
    return ok;
  }

  private async handle(m: JsMsg): Promise<void> {
    if (this.state === 'tampered') return;
    let event: SignedEvent | undefined;
    try {
      event = SignedEvent.decode(m.data);
    } catch {
      event = undefined;
    }
    let verified: boolean | undefined;
    const expected = this.processedSeq + 1;
    if (m.seq > expected) {
      // Only a validly signed successor can vouch, with its predecessor's time, for the gap.
      const vouched = event !== undefined && event.version === m.seq && this.expired(event.prevPublishedAtMs);
      if (vouched) verified = await this.verify(m.subject, event!);
      if (verified === undefined && this.stopped) return;
      if (!vouched || !verified) {
        this.tamper(expected, m.seq - 1);
        return;
      }
    }
    if (m.subject === this.options.subject) {
      if (!event) {
        this.options.onRejected('MALFORMED', { type: '', version: 0, kid: '' });
      } else {
        verified ??= await this.verify(m.subject, event);
        if (verified === undefined) return;
        const meta = { type: event.type, version: event.version, kid: event.kid };
        if (!verified) this.options.onRejected('BAD_SIGNATURE', meta);
        // A replayed copy lands at a new sequence that differs from its signed version.
        else if (event.version !== m.seq || event.version <= this.appliedVersion) this.options.onRejected('STALE_VERSION', meta);
        else {
          await this.options.apply({ type: event.type, payload: event.payload, version: event.version, traceparent: event.traceparent });
          this.appliedVersion = event.version;
        }
      }
    }
    this.processedSeq = m.seq;
  }
}
