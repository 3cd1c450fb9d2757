import { DeliverPolicy, DiscardPolicy, Events, RetentionPolicy, StorageType } from 'nats';
import type { JetStreamClient, JetStreamManager, MsgRequest, NatsConnection, StoredMsg, StreamConfig, StreamInfo } from 'nats';
import { AeseError } from '@aese/errors';
import type { Logger } from '@aese/logger';
import { JS_ERRORS, jsErrorCode } from '@aese/nats';
import type { NonceStore } from './replay-guard.js';

/** The stream of recorded nonces; its name and subjects are part of the contract with operators. */
export const REPLAY_WINDOW_STREAM = 'AESE_REPLAY_WINDOW';
/** One subject per AS: `aese.replay.window.<AS token>` (the token of {@link nonceKey}). */
export const REPLAY_WINDOW_SUBJECT_PREFIX = 'aese.replay.window';

/** nats.js error code of a request nobody subscribes to (no stream stores the subject). */
const NO_RESPONDERS = '503';
/** Pause between two attempts to re-inspect the stream after a reconnection. */
const REVERIFY_DELAY_MS = 250;
/** Appends of one batch tried against other writers' appends before the batch is undecided. */
const MAX_APPEND_ATTEMPTS = 32;
/** Messages a catch-up reads one by one before it sets up a consumer instead. */
const SHORT_CATCH_UP = 16;
/** Most nonces in one append (32 bytes each): bounds a message well under NATS's 1 MB default. */
const MAX_BATCH = 4096;
/** Bytes of one recorded nonce: the SHA-256 digest of {@link nonceKey}'s second part. */
const DIGEST_BYTES = 32;
/** An AS token ({@link asTokenOf}): one plain subject token, never a wildcard. */
const AS_TOKEN = /^[A-Za-z0-9_=-]{1,64}$/;
/**
 * {@link nonceKey}: an AS token and the canonical unpadded base64url of 32 bytes (its last
 * character carries 2 zero bits). Any other spelling of the same digest would be another nonce in
 * memory but the same one in the stream.
 */
const NONCE_KEY = /^([A-Za-z0-9_=-]{1,64})\.([A-Za-z0-9_-]{42}[AEIMQUYcgkosw048])$/;
/** Default of {@link StreamNonceStoreOptions.lingerMs}. */
export const DEFAULT_LINGER_MS = 2;
/** Default of {@link StreamNonceStoreOptions.quietMs}, in lingers. */
const QUIET_LINGERS = 10;
/** How often expired nonces leave memory. */
const SWEEP_EVERY_MS = 5_000;

export interface StreamNonceStoreOptions {
  /** How long a nonce must be remembered (the stream's max age is at least this). */
  readonly ttlMs: number;
  /** Longest wait for one append or catch-up; past it the answer is UNAVAILABLE. */
  readonly timeoutMs: number;
  /** Stream replicas (3 on a NATS cluster). */
  readonly replicas?: number;
  readonly logger: Logger;
  /** The clock used to date a loss of history and expire nonces in memory; tests freeze it. */
  readonly now?: () => number;
  /**
   * How long the first nonce of a batch waits for others before the batch is appended, on a busy
   * lane (while an append is in flight, nonces wait for it anyway). Fewer, larger appends under
   * load for a little latency.
   */
  readonly lingerMs?: number;
  /**
   * A lane that saw no new nonce for this long (replays and refused calls do not count) is quiet:
   * its next nonce is appended at the end of the current turn, since no other is likely to join
   * it within a linger. Default: ten lingers.
   */
  readonly quietMs?: number;
  /** Told of every append (its nonce count), for metrics and tests. */
  readonly onAppend?: (nonces: number) => void;
}

/** One waiting request's nonce inside a batch. */
interface Waiter {
  resolve(fresh: boolean): void;
  reject(err: unknown): void;
}

/**
 * One AS's window in memory: every nonce the stream holds for it up to `lastSeq`, and the batch
 * being filled while an append is in flight (group commit).
 */
interface Lane {
  readonly subject: string;
  /** The stream sequence of the last message on `subject` this process has read or written. */
  lastSeq: number;
  /** Recorded digests (base64url) -> when they may be forgotten (ms). Insertion order ~ expiry order. */
  readonly seen: Map<string, number>;
  /** The next batch, filled while `flushing`. */
  pending: Map<string, Waiter[]>;
  /** Digests of the batch in flight: a second request with one of them is a replay. */
  inFlight: ReadonlySet<string>;
  flushing: boolean;
  /** The linger timer of the batch being filled, if one is set. */
  timer?: NodeJS.Timeout;
  /** Set instead of `timer` on a quiet lane: the batch goes at the end of the current turn. */
  turnEnd?: NodeJS.Immediate;
  /** When the lane's last new nonce came (performance.now()): one after a quiet spell does not wait. */
  arrivedAt: number;
  /** Set once the lane read the stream's history for its subject; until then nothing is decided. */
  loaded?: Promise<void>;
  /** Set once `loaded` has resolved: later checks go straight to the window. */
  ready?: boolean;
}

/**
 * Seen nonces as an append-only log in one JetStream stream (file storage, max age >= the nonce
 * TTL), one subject per AS, shared by every process that decides replays (each replay-guard
 * replica, and an edge for the ASes whose replay window it holds the lease of).
 *
 * Each process keeps the nonces of the ASes it decides in memory and appends new ones in batches:
 * while one append of an AS is in flight, the nonces that arrive meanwhile wait and go together in
 * the next (group commit), so a nonce costs a map lookup and a share of one append. A nonce is
 * called fresh only once its append is acknowledged (durable), and only if that append was made
 * with "expected last subject sequence" = the last message of the subject this process has read:
 * JetStream refuses it atomically if anyone else appended for that AS in between. The process then
 * reads what it missed and decides again; a nonce it finds there is a replay. So two processes can
 * never both call the same nonce fresh, whatever their clocks or leases say: the stream is the
 * arbiter, and a process's memory only ever answers "replayed" for a nonce the stream holds (or a
 * twin of a nonce whose append is in flight, which refuses a request that might otherwise race it).
 *
 * Failing closed, as the KV store before it: while the NATS connection is down and until the
 * stream was inspected again after a reconnection, every call is UNAVAILABLE; an append whose
 * connection changed while in flight is UNAVAILABLE (it may have landed). The history barrier
 * ({@link historySinceMs}) is raised when the stream cannot prove its history: memory storage, a
 * stream that vanished or was recreated, or a last sequence that went backwards.
 */
export class StreamNonceStore implements NonceStore {
  private available = true;
  /** Bumped on every disconnection and reconnection; an append that spans a change is undecided. */
  private epoch = 0;
  private lostHistoryAtMs: number | undefined;
  private streamCreated = '';
  private lastStreamSeq = 0;
  private closed = false;
  private readonly lanes = new Map<string, Lane>();
  private readonly listeners = new Set<(available: boolean) => void>();
  private readonly now: () => number;
  private readonly sweeper: NodeJS.Timeout;

  private constructor(
    private readonly nc: NatsConnection,
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    private readonly options: StreamNonceStoreOptions,
  ) {
    this.now = options.now ?? Date.now;
    this.sweeper = setInterval(() => this.sweep(), SWEEP_EVERY_MS).unref();
  }

  /**
   * Opens (creating if needed) the stream, checks that its limits cannot expire or evict a nonce
   * early, and starts following the connection state. Fails with UNAVAILABLE when NATS or
   * JetStream does not answer, FAILED_PRECONDITION when the stream would drop nonces early.
   */
  static async open(nc: NatsConnection, options: StreamNonceStoreOptions): Promise<StreamNonceStore> {
    for (const [name, ms] of [
      ['lingerMs', options.lingerMs],
      ['quietMs', options.quietMs],
    ] as const) {
      if (ms !== undefined && !(Number.isFinite(ms) && ms >= 0)) throw new TypeError(`${name} must be a finite number of ms, 0 or more`);
    }
    let store: StreamNonceStore;
    try {
      const js = nc.jetstream({ timeout: options.timeoutMs });
      const jsm = await nc.jetstreamManager({ timeout: options.timeoutMs });
      store = new StreamNonceStore(nc, js, jsm, options);
    } catch (err) {
      throw new AeseError('UNAVAILABLE', `cannot reach JetStream for stream ${REPLAY_WINDOW_STREAM}`, { cause: err });
    }
    try {
      await store.inspect();
    } catch (err) {
      store.close();
      throw err;
    }
    store.follow();
    return store;
  }

  /** Whether calls can be decided now (the connection is up and the stream was inspected). */
  get isAvailable(): boolean {
    return this.available && !this.closed;
  }

  /** Calls back on every change of {@link isAvailable}; returns the unsubscribe function. */
  onAvailabilityChange(listener: (available: boolean) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  historySinceMs(): number | undefined {
    return this.lostHistoryAtMs;
  }

  /**
   * Reads an AS's history into memory before anything is decided for it: what a new owner of the
   * AS's window does before it takes over (the takeover barrier). Resolves once loaded.
   */
  async prepare(asToken: string): Promise<void> {
    if (!AS_TOKEN.test(asToken)) throw new TypeError('not an AS token');
    if (!this.isAvailable) throw new AeseError('UNAVAILABLE', 'the replay store is unreachable');
    await this.loadedLane(asToken);
  }

  /** `key` is {@link nonceKey}'s `<AS token>.<digest>`. */
  async recordOnce(key: string, ttlMs: number, signal?: AbortSignal): Promise<boolean> {
    if (ttlMs > this.options.ttlMs) throw new TypeError(`ttlMs ${ttlMs} exceeds the stream max age ${this.options.ttlMs}`);
    if (!this.isAvailable) throw new AeseError('UNAVAILABLE', 'the replay store is unreachable; the request cannot be decided');
    const match = NONCE_KEY.exec(key);
    if (!match) throw new TypeError('not a nonce key');
    const [, asToken, digest] = match;
    const known = this.lanes.get(asToken);
    const lane = known?.ready ? known : await this.loadedLane(asToken);
    if (signal?.aborted) throw new AeseError('UNAVAILABLE', 'the call ended before the replay store answered');
    if (lane.seen.has(digest) || lane.inFlight.has(digest)) return false;
    return new Promise<boolean>((resolve, reject) => {
      const waiting = lane.pending.get(digest);
      // A twin in the same batch: the first is recorded, the second is its replay.
      if (waiting) {
        resolve(false);
        return;
      }
      if (lane.pending.size >= MAX_BATCH && lane.flushing) {
        reject(new AeseError('UNAVAILABLE', 'too many replay checks waiting for this AS; the request cannot be decided'));
        return;
      }
      lane.pending.set(digest, [{ resolve, reject }]);
      const linger = this.options.lingerMs ?? DEFAULT_LINGER_MS;
      const now = performance.now();
      // A lone request gains nothing from waiting. Under load a lane is never quiet this long: a
      // burst of answers can keep the event loop from new nonces for a few ms, not for ten lingers.
      const quiet = now - lane.arrivedAt >= (this.options.quietMs ?? QUIET_LINGERS * linger);
      lane.arrivedAt = now;
      if (lane.flushing) return;
      if (linger === 0 || lane.pending.size >= MAX_BATCH) {
        this.flushNow(lane);
      } else if (quiet || lane.turnEnd) {
        // At the end of this turn, so that the nonces read in it (several requests, a batched
        // stream message) still go together.
        clearTimeout(lane.timer);
        lane.timer = undefined;
        lane.turnEnd ??= setImmediate(() => this.flushNow(lane));
      } else {
        lane.timer ??= setTimeout(() => this.flushNow(lane), linger);
      }
    });
  }

  /** Starts an append of the lane's waiting nonces now, unless one is in flight (it takes them next). */
  private flushNow(lane: Lane): void {
    clearTimeout(lane.timer);
    lane.timer = undefined;
    clearImmediate(lane.turnEnd);
    lane.turnEnd = undefined;
    if (!lane.flushing) void this.flush(lane);
  }

  /** Stops following the connection; calls fail with UNAVAILABLE afterwards. The caller drains NATS. */
  close(): void {
    this.closed = true;
    clearInterval(this.sweeper);
    this.setAvailable(false);
  }

  private lane(asToken: string): Lane {
    let lane = this.lanes.get(asToken);
    if (!lane) {
      lane = { subject: `${REPLAY_WINDOW_SUBJECT_PREFIX}.${asToken}`, lastSeq: 0, seen: new Map(), pending: new Map(), inFlight: new Set(), flushing: false, arrivedAt: -Infinity };
      this.lanes.set(asToken, lane);
    }
    return lane;
  }

  private async loadedLane(asToken: string): Promise<Lane> {
    const lane = this.lane(asToken);
    lane.loaded ??= this.catchUp(lane).then(
      () => {
        lane.ready = true;
      },
      (err: unknown) => {
        // The next call tries again.
        lane.loaded = undefined;
        throw err;
      },
    );
    await lane.loaded;
    return lane;
  }

  /** Appends batches until none is waiting; one append per lane at a time. */
  private async flush(lane: Lane): Promise<void> {
    lane.flushing = true;
    try {
      while (lane.pending.size > 0) {
        const batch = lane.pending;
        lane.pending = new Map();
        lane.inFlight = new Set(batch.keys());
        await this.appendBatch(lane, batch);
      }
    } finally {
      lane.flushing = false;
      lane.inFlight = new Set();
    }
  }

  /** Settles every waiter of `batch`: fresh once durably appended, replayed if found in the stream, or UNAVAILABLE. */
  private async appendBatch(lane: Lane, batch: Map<string, Waiter[]>): Promise<void> {
    const settle = (digest: string, fresh: boolean): void => {
      for (const w of batch.get(digest) ?? []) w.resolve(fresh);
      batch.delete(digest);
    };
    const fail = (err: AeseError): void => {
      for (const ws of batch.values()) for (const w of ws) w.reject(err);
      batch.clear();
    };
    for (let attempt = 0; attempt < MAX_APPEND_ATTEMPTS && batch.size > 0; attempt++) {
      if (!this.isAvailable) return fail(new AeseError('UNAVAILABLE', 'the replay store is unreachable; the request cannot be decided'));
      // A catch-up since these nonces were queued may have brought any of them in: those are replays.
      for (const d of [...batch.keys()]) if (lane.seen.has(d)) settle(d, false);
      if (batch.size === 0) return;
      const epoch = this.epoch;
      const digests = [...batch.keys()];
      let seq: number;
      try {
        const ack = await this.js.publish(lane.subject, encodeBatch(digests), { expect: { lastSubjectSequence: lane.lastSeq }, timeout: this.options.timeoutMs });
        seq = ack.seq;
      } catch (err) {
        if (jsErrorCode(err) === JS_ERRORS.wrongLastSequence) {
          // Someone else appended for this AS: read it, answer what it settles, try the rest again.
          try {
            await this.catchUp(lane);
          } catch (catchUpErr) {
            return fail(asUnavailable(catchUpErr, 'the replay store could not be read after a concurrent append'));
          }
          continue;
        }
        if ((err as { code?: unknown } | null)?.code === NO_RESPONDERS || jsErrorCode(err) === JS_ERRORS.streamNotFound) this.restartVerification();
        if ((err as { code?: unknown } | null)?.code === 'TIMEOUT') {
          return fail(new AeseError('UNAVAILABLE', `the replay store did not answer within ${this.options.timeoutMs} ms`, { cause: err }));
        }
        return fail(asUnavailable(err, 'the replay store did not record the nonces; the requests cannot be decided'));
      }
      if (epoch !== this.epoch) return fail(new AeseError('UNAVAILABLE', 'the connection to the replay store changed during the check; the request cannot be decided'));
      lane.lastSeq = seq;
      if (seq > this.lastStreamSeq) this.lastStreamSeq = seq;
      const until = this.now() + this.options.ttlMs;
      for (const d of digests) lane.seen.set(d, until);
      this.options.onAppend?.(digests.length);
      for (const d of digests) settle(d, true);
    }
    if (batch.size > 0) fail(new AeseError('UNAVAILABLE', 'other writers kept appending for this AS; the request cannot be decided'));
  }

  /**
   * Reads every message of the lane's subject after `lastSeq` (all of them for a new lane) into
   * memory. A subject whose last message is older than what this lane last saw had its messages
   * expire (or an operator purged them): the lane starts again from the stream's view.
   */
  private async catchUp(lane: Lane): Promise<void> {
    const last = await this.lastSeqOf(lane.subject);
    if (last < lane.lastSeq) {
      lane.lastSeq = last;
      return;
    }
    if (last === lane.lastSeq) return;
    // Behind by a few messages (a concurrent append): read them one by one, a round trip each,
    // which beats setting up a consumer and lets a contended lane win its next append.
    for (let read = 0; read < SHORT_CATCH_UP && lane.lastSeq < last; read++) {
      let m: StoredMsg;
      try {
        m = await this.jsm.streams.getMessage(REPLAY_WINDOW_STREAM, { seq: lane.lastSeq + 1, next_by_subj: lane.subject } as unknown as MsgRequest);
      } catch (err) {
        throw asUnavailable(err, 'the replay store could not be read');
      }
      this.remember(lane, m.data, m.time.getTime());
      lane.lastSeq = m.seq;
    }
    if (lane.lastSeq >= last) return;
    const deadline = this.now() + this.options.timeoutMs;
    const consumer = await this.js.consumers.get(REPLAY_WINDOW_STREAM, {
      // A string, not a list: nats-server before 2.10 knows only the single filter.
      filterSubjects: lane.subject,
      deliver_policy: DeliverPolicy.StartSequence,
      opt_start_seq: lane.lastSeq + 1,
    });
    let seq = lane.lastSeq;
    try {
      while (seq < last) {
        if (this.now() > deadline) throw new AeseError('UNAVAILABLE', `reading the replay history took longer than ${this.options.timeoutMs} ms`);
        const messages = await consumer.fetch({ max_messages: 1024, expires: Math.max(1_000, deadline - this.now()) });
        let got = 0;
        for await (const m of messages) {
          got++;
          this.remember(lane, m.data, m.info.timestampNanos / 1e6);
          seq = m.seq;
          if (seq >= last) break;
        }
        // Nothing more arrived: the rest expired while being read.
        if (got === 0) break;
      }
    } finally {
      await consumer.delete().catch(() => undefined);
    }
    lane.lastSeq = Math.max(seq, last);
  }

  /** Takes in one stored batch, each nonce kept one TTL from when the stream stored it. */
  private remember(lane: Lane, batch: Uint8Array, storedAtMs: number): void {
    const until = Math.floor(storedAtMs) + this.options.ttlMs;
    for (const d of decodeBatch(batch)) lane.seen.set(d, until);
  }

  /** The stream sequence of the subject's last message, 0 when it has none. */
  private async lastSeqOf(subject: string): Promise<number> {
    try {
      return (await this.jsm.streams.getMessage(REPLAY_WINDOW_STREAM, { last_by_subj: subject })).seq;
    } catch (err) {
      if (jsErrorCode(err) === JS_ERRORS.noMessageFound || /no message found/i.test(String((err as Error).message))) return 0;
      throw asUnavailable(err, 'the replay store could not be read');
    }
  }

  /** Forgets nonces past their TTL (they would be refused as stale by the window check anyway). */
  private sweep(): void {
    const now = this.now();
    for (const lane of this.lanes.values()) {
      for (const [d, until] of lane.seen) {
        if (until > now) break;
        lane.seen.delete(d);
      }
    }
  }

  private follow(): void {
    void (async () => {
      for await (const s of this.nc.status()) {
        if (this.closed) return;
        if (s.type === Events.Disconnect) {
          this.epoch++;
          this.setAvailable(false);
        } else if (s.type === Events.Reconnect) {
          this.restartVerification();
        }
      }
      this.setAvailable(false);
    })().catch((err: unknown) => {
      this.options.logger.error({ err }, 'replay store stopped following the NATS connection');
      this.setAvailable(false);
    });
  }

  /** Stops deciding until the stream was inspected again (after a reconnection, or a vanished stream). */
  private restartVerification(): void {
    if (this.closed) return;
    this.epoch++;
    this.setAvailable(false);
    void this.reverify(this.epoch);
  }

  private async reverify(epoch: number): Promise<void> {
    for (let attempt = 0; !this.closed && epoch === this.epoch; attempt++) {
      try {
        await this.inspect();
        if (epoch === this.epoch && !this.closed) {
          this.setAvailable(true);
          this.options.logger.info('replay store reachable again; deciding requests');
        }
        return;
      } catch (err) {
        if (attempt % 40 === 0) this.options.logger.warn({ err, attempt }, 'replay store not ready after reconnection; retrying');
        await new Promise(r => setTimeout(r, REVERIFY_DELAY_MS));
      }
    }
  }

  /** Reads the stream and decides whether its history is intact; recreates it when it vanished. */
  private async inspect(): Promise<void> {
    let info: StreamInfo;
    try {
      info = await this.jsm.streams.info(REPLAY_WINDOW_STREAM);
    } catch (err) {
      if (jsErrorCode(err) !== JS_ERRORS.streamNotFound) throw asUnavailable(err, `stream ${REPLAY_WINDOW_STREAM} is not reachable`);
      if (this.streamCreated !== '') this.loseHistory('the nonce stream vanished; recreated empty');
      try {
        info = await this.jsm.streams.add(streamConfig(this.options));
      } catch (again) {
        // Another process created it at the same moment.
        try {
          info = await this.jsm.streams.info(REPLAY_WINDOW_STREAM);
        } catch {
          throw asUnavailable(again, `stream ${REPLAY_WINDOW_STREAM} could not be created`);
        }
      }
    }
    this.checkLimits(info);
    if (info.config.storage !== StorageType.File) this.loseHistory('the nonce stream uses memory storage, which a NATS restart empties');
    if (this.streamCreated !== '' && info.created !== this.streamCreated) this.loseHistory('the nonce stream was recreated');
    if (info.state.last_seq < this.lastStreamSeq) this.loseHistory('the nonce stream lost entries');
    if (this.lostHistoryAtMs !== undefined) {
      // What this process remembers may be ahead of the store now: every lane reads it again.
      for (const lane of this.lanes.values()) lane.lastSeq = 0;
    }
    this.streamCreated = info.created;
    this.lastStreamSeq = Math.max(this.lastStreamSeq, info.state.last_seq);
  }

  /**
   * Refuses limits that evict nonces and a max age shorter than the nonce TTL. Neither is changed
   * here: stream settings belong to the JetStream administrator.
   */
  private checkLimits(info: StreamInfo): void {
    const c = info.config;
    if (c.discard === DiscardPolicy.Old && (c.max_msgs > 0 || c.max_bytes > 0 || (c.max_msgs_per_subject ?? -1) > 0)) {
      throw new AeseError('FAILED_PRECONDITION', `stream ${REPLAY_WINDOW_STREAM} has size limits with discard=old: it would evict nonces and let replays through`);
    }
    const wantNs = this.options.ttlMs * 1_000_000;
    if (c.max_age === 0) {
      this.options.logger.warn('the nonce stream has no max age: nonces are never dropped and the stream only grows');
      return;
    }
    if (c.max_age >= wantNs) return;
    throw new AeseError(
      'FAILED_PRECONDITION',
      `stream ${REPLAY_WINDOW_STREAM} keeps nonces ${Math.floor(c.max_age / 1e9)} s, less than the replay window needs (${Math.ceil(wantNs / 1e9)} s): ` +
        `as the JetStream administrator, raise its max age (nats stream edit ${REPLAY_WINDOW_STREAM} --max-age ${Math.ceil(wantNs / 1e9)}s)`,
    );
  }

  private loseHistory(reason: string): void {
    this.lostHistoryAtMs = this.now();
    this.options.logger.warn({ reason, sinceMs: this.lostHistoryAtMs }, 'replay store cannot vouch for earlier nonces; barrier raised');
  }

  private setAvailable(available: boolean): void {
    const next = available && !this.closed;
    if (next === this.available) return;
    this.available = next;
    if (!next) this.options.logger.warn('replay store unavailable; every check fails closed');
    for (const l of this.listeners) l(next);
  }
}

/** The stream as its first user creates it. */
export function streamConfig(options: Pick<StreamNonceStoreOptions, 'ttlMs' | 'replicas'>): Partial<StreamConfig> & { name: string } {
  const maxAgeNs = options.ttlMs * 1_000_000;
  return {
    name: REPLAY_WINDOW_STREAM,
    subjects: [`${REPLAY_WINDOW_SUBJECT_PREFIX}.*`],
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    discard: DiscardPolicy.Old,
    max_age: maxAgeNs,
    // No message ids are used; the duplicate window may not exceed the max age.
    duplicate_window: Math.min(maxAgeNs, 2 * 60 * 1e9),
    num_replicas: options.replicas ?? 1,
  };
}

function encodeBatch(digests: readonly string[]): Uint8Array {
  const out = Buffer.allocUnsafe(digests.length * DIGEST_BYTES);
  digests.forEach((d, i) => out.write(d, i * DIGEST_BYTES, DIGEST_BYTES, 'base64url'));
  return out;
}

function decodeBatch(data: Uint8Array): string[] {
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const out: string[] = [];
  for (let i = 0; i + DIGEST_BYTES <= buf.length; i += DIGEST_BYTES) out.push(buf.toString('base64url', i, i + DIGEST_BYTES));
  return out;
}

function asUnavailable(err: unknown, message: string): AeseError {
  if (err instanceof AeseError) return err;
  if ((err as { code?: unknown } | null)?.code === 'TIMEOUT') return new AeseError('UNAVAILABLE', `${message} (timeout)`, { cause: err });
  return new AeseError('UNAVAILABLE', message, { cause: err });
}
