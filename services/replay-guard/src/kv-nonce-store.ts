import { DiscardPolicy, Events, StorageType } from 'nats';
import type { JetStreamClient, JetStreamManager, KV, KvOptions, NatsConnection, StreamInfo } from 'nats';
import { AeseError } from '@aese/errors';
import { KV_BUCKETS } from '@aese/nats';
import type { Logger } from '@aese/logger';
import type { NonceStore } from './domain/replay-guard.js';

/** The KV bucket of seen nonces; its name is part of the contract with operators. */
export const REPLAY_NONCES_BUCKET = KV_BUCKETS.replayNonces;
/** JetStream names the stream behind a KV bucket `KV_<bucket>`. */
const STREAM = `KV_${REPLAY_NONCES_BUCKET}`;
/** JetStream error codes (nats-server `errors.json`). */
const WRONG_LAST_SEQUENCE = 10071;
const STREAM_NOT_FOUND = 10059;
/** nats.js error code of a request nobody subscribes to (no stream stores the subject). */
const NO_RESPONDERS = '503';
/** Pause between two attempts to re-inspect the bucket after a reconnection. */
const REVERIFY_DELAY_MS = 250;
const EMPTY = new Uint8Array(0);

export interface KvNonceStoreOptions {
  /** Bucket-level max age: nats-server 2.9 expires KV entries per bucket only. */
  readonly ttlMs: number;
  /** Longest wait for one store operation; past it the answer is UNAVAILABLE. */
  readonly timeoutMs: number;
  /** Bucket replicas (3 on a NATS cluster). */
  readonly replicas?: number;
  readonly logger: Logger;
  /** The clock used to date a loss of history; the guard's clock, so tests can freeze both. */
  readonly now?: () => number;
}

/**
 * Seen nonces in a JetStream KV bucket (file storage, history 1, max age = the nonce TTL), shared
 * by every replica. A nonce is recorded with an "expected last subject sequence 0" write, which
 * JetStream refuses atomically when the key exists: that refusal, and only it, means "replayed".
 *
 * It fails closed: while the NATS connection is down, and until the bucket was inspected again
 * after a reconnection, every call is UNAVAILABLE without touching NATS; a write whose connection
 * dropped while it was in flight is UNAVAILABLE too (it may have landed on a store that lost its
 * history).
 *
 * Restarts: the bucket is file-backed, so it keeps every nonce across restarts of this service and
 * of NATS, and no start-up barrier is raised. A barrier (reject everything created before the
 * store's history starts) would cost every AS `skew` seconds of 503 after each deploy and buy
 * nothing while the store is durable. It is raised only when the store cannot prove its history:
 * the bucket uses memory storage (at start and after each reconnection, since the server may have
 * restarted), the bucket had vanished or was recreated (its creation time changed), or its last
 * sequence went backwards (entries lost, a restore from an older copy). A purge by an operator
 * keeps both and is not detected: purging this bucket re-opens the window for replays.
 */
export class KvNonceStore implements NonceStore {
  private available = true;
  /** Bumped on every disconnection and reconnection; a write that spans a change is undecided. */
  private epoch = 0;
  private lostHistoryAtMs: number | undefined;
  private streamCreated = '';
  private lastSeq = 0;
  private closed = false;
  private readonly listeners = new Set<(available: boolean) => void>();
  private readonly now: () => number;

  private constructor(
    private readonly nc: NatsConnection,
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    private readonly kv: KV,
    private readonly options: KvNonceStoreOptions,
  ) {
    this.now = options.now ?? Date.now;
  }

  /**
   * Opens (creating if needed) the bucket, checks that its limits cannot expire or evict a nonce
   * early, and starts following the connection state. Fails with UNAVAILABLE when NATS or
   * JetStream does not answer, FAILED_PRECONDITION when the bucket would evict nonces.
   */
  static async open(nc: NatsConnection, options: KvNonceStoreOptions): Promise<KvNonceStore> {
    let store: KvNonceStore;
    try {
      const js = nc.jetstream({ timeout: options.timeoutMs });
      const jsm = await nc.jetstreamManager({ timeout: options.timeoutMs });
      const kv = await js.views.kv(REPLAY_NONCES_BUCKET, bucketOptions(options));
      store = new KvNonceStore(nc, js, jsm, kv, options);
    } catch (err) {
      throw new AeseError('UNAVAILABLE', `cannot open KV bucket ${REPLAY_NONCES_BUCKET}`, { cause: err });
    }
    await store.inspect();
    store.follow();
    return store;
  }

  /** Whether calls can be decided now (the connection is up and the bucket was inspected). */
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

  async recordOnce(key: string, ttlMs: number, signal?: AbortSignal): Promise<boolean> {
    if (ttlMs > this.options.ttlMs) throw new TypeError(`ttlMs ${ttlMs} exceeds the bucket max age ${this.options.ttlMs}`);
    if (!this.isAvailable) throw new AeseError('UNAVAILABLE', 'the replay store is unreachable; the request cannot be decided');
    const epoch = this.epoch;
    let seq: number;
    try {
      // kv.create() minus its second round trip: create() re-reads a refused key to overwrite a
      // delete marker, but here a deleted nonce was still seen, so the refusal alone is the answer.
      seq = await bounded(this.kv.put(key, EMPTY, { previousSeq: 0 }), this.options.timeoutMs, signal);
    } catch (err) {
      // "Wrong last sequence" proves the key exists in the store that answered: a replay.
      if (jsErrCode(err) === WRONG_LAST_SEQUENCE) return false;
      if (err instanceof AeseError) throw err;
      if ((err as { code?: unknown } | null)?.code === NO_RESPONDERS || jsErrCode(err) === STREAM_NOT_FOUND) {
        // Connected, but nothing stores the bucket's subjects: the bucket was deleted under us.
        // Stop deciding and inspect it again, which recreates it behind a barrier.
        this.restartVerification();
      } else if ((err as { code?: unknown } | null)?.code === 'TIMEOUT') {
        throw new AeseError('UNAVAILABLE', `the replay store did not answer within ${this.options.timeoutMs} ms`, { cause: err });
      }
      throw new AeseError('UNAVAILABLE', 'the replay store did not record the nonce; the request cannot be decided', { cause: err });
    }
    if (epoch !== this.epoch) {
      throw new AeseError('UNAVAILABLE', 'the connection to the replay store changed during the check; the request cannot be decided');
    }
    if (seq > this.lastSeq) this.lastSeq = seq;
    return true;
  }

  /** Stops following the connection; calls fail with UNAVAILABLE afterwards. The caller drains NATS. */
  close(): void {
    this.closed = true;
    this.setAvailable(false);
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
      // The iterator ends when the connection is closed for good.
      this.setAvailable(false);
    })().catch((err: unknown) => {
      this.options.logger.error({ err }, 'replay store stopped following the NATS connection');
      this.setAvailable(false);
    });
  }

  /** Stops deciding until the bucket was inspected again (after a reconnection, or a vanished bucket). */
  private restartVerification(): void {
    if (this.closed) return;
    this.epoch++;
    this.setAvailable(false);
    void this.reverify(this.epoch);
  }

  /** Inspects the bucket again, retrying until done or superseded by a newer connection change. */
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

  /**
   * Reads the bucket's stream and decides whether its history is intact (see the class comment);
   * recreates the bucket when it vanished and repairs a max age shorter than the nonce TTL.
   */
  private async inspect(): Promise<void> {
    let info: StreamInfo;
    try {
      info = await this.jsm.streams.info(STREAM);
    } catch (err) {
      if (jsErrCode(err) !== STREAM_NOT_FOUND) throw asUnavailable(err);
      this.loseHistory('the nonce bucket vanished; recreated empty');
      try {
        await this.js.views.kv(REPLAY_NONCES_BUCKET, bucketOptions(this.options));
        info = await this.jsm.streams.info(STREAM);
      } catch (again) {
        throw asUnavailable(again);
      }
    }
    info = await this.ensureLimits(info);
    if (info.config.storage !== StorageType.File) {
      this.loseHistory('the nonce bucket uses memory storage, which a NATS restart empties');
    }
    if (this.streamCreated !== '' && info.created !== this.streamCreated) {
      this.loseHistory('the nonce bucket was recreated');
    }
    if (info.state.last_seq < this.lastSeq) this.loseHistory('the nonce bucket lost entries');
    this.streamCreated = info.created;
    this.lastSeq = Math.max(this.lastSeq, info.state.last_seq);
  }

  /**
   * Refuses limits that evict nonces and a max age shorter than the nonce TTL. Neither is changed
   * here: stream settings belong to the JetStream administrator (the NATS trust model gives no
   * service the right to update a stream).
   */
  private async ensureLimits(info: StreamInfo): Promise<StreamInfo> {
    const c = info.config;
    if (c.discard === DiscardPolicy.Old && (c.max_msgs > 0 || c.max_bytes > 0)) {
      throw new AeseError('FAILED_PRECONDITION', `KV bucket ${REPLAY_NONCES_BUCKET} has size limits with discard=old: it would evict nonces and let replays through`);
    }
    const wantNs = this.options.ttlMs * 1_000_000;
    if (c.max_age === 0) {
      this.options.logger.warn('the nonce bucket has no max age: nonces are never dropped and the bucket only grows');
      return info;
    }
    if (c.max_age >= wantNs) return info;
    throw new AeseError(
      'FAILED_PRECONDITION',
      `KV bucket ${REPLAY_NONCES_BUCKET} keeps nonces ${Math.floor(c.max_age / 1e9)} s, less than the replay window needs (${Math.ceil(wantNs / 1e9)} s): ` +
        `as the JetStream administrator, raise its max age (nats stream edit KV_${REPLAY_NONCES_BUCKET} --max-age ${Math.ceil(wantNs / 1e9)}s)`,
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

function bucketOptions(options: KvNonceStoreOptions): Partial<KvOptions> {
  return { history: 1, ttl: options.ttlMs, storage: StorageType.File, timeout: options.timeoutMs, replicas: options.replicas ?? 1 };
}

function jsErrCode(err: unknown): number | undefined {
  return (err as { api_error?: { err_code?: number } } | null)?.api_error?.err_code;
}

function asUnavailable(err: unknown): AeseError {
  return err instanceof AeseError ? err : new AeseError('UNAVAILABLE', `KV bucket ${REPLAY_NONCES_BUCKET} is not reachable`, { cause: err });
}

/** Settles with `work`, or rejects with UNAVAILABLE after `ms` or when `signal` aborts. */
function bounded<T>(work: Promise<T>, ms: number, signal: AbortSignal | undefined): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const fail = (message: string): void => {
      cleanup();
      reject(new AeseError('UNAVAILABLE', message));
    };
    const timer = setTimeout(() => fail(`the replay store did not answer within ${ms} ms`), ms);
    const onAbort = (): void => fail('the call ended before the replay store answered');
    const cleanup = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    };
    if (signal?.aborted) {
      onAbort();
      return;
    }
    signal?.addEventListener('abort', onAbort, { once: true });
    work.then(
      v => {
        cleanup();
        resolve(v);
      },
      (err: unknown) => {
        cleanup();
        reject(err);
      },
    );
  });
}
