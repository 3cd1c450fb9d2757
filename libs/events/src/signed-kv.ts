import { createHash } from 'node:crypto';
import { headers } from 'nats';
import type { JetStreamManager, KV, KvEntry, NatsConnection } from 'nats';
import { AeseError } from '@aese/errors';
import type { Logger } from '@aese/logger';
import { JS_ERRORS, jsErrorCode, retryJetStream } from '@aese/nats';
import { isKeysUnavailable, signedBytes, untilKeysAnswer } from './signing.js';
import type { EventSigner, EventVerifier } from './signing.js';

/**
 * A KV value as stored in a signed bucket. `version` is the JetStream sequence the record was
 * written to land at (its KV revision); `payloadJson` is the exact signed text of
 * {@link SignedPayload}.
 */
export interface SignedRecord {
  readonly payloadJson: string;
  readonly version: number;
  readonly kid: string;
  readonly signature: string;
}

/** What a signed record's payload holds: the value (null for a signed deletion) and the bucket head. */
interface SignedPayload {
  readonly value: unknown;
  /** SHA-256 of every key's newest (key, revision) in the bucket once this record is in. */
  readonly head: string;
}

/** Where a signed bucket's copy stands; only READY answers reads. */
export const SIGNED_KV_STATES = {
  loading: 'LOADING',
  ready: 'READY',
  tampered: 'TAMPERED',
} as const;
export type SignedKvState = (typeof SIGNED_KV_STATES)[keyof typeof SIGNED_KV_STATES];

/** Why a bucket was found tampered with; stable codes for the audit trail. */
export const KV_TAMPER_REASONS = {
  /** A value that is not a signed record, or whose signature does not verify. */
  unsigned: 'UNSIGNED',
  /** A validly signed record at another revision than the one it was signed for (re-published). */
  replayed: 'ROLLED_BACK',
  /** A record the newest one vouches for is gone, or the newest record itself was deleted. */
  missing: 'MISSING',
  /** A raw KV delete or purge, where only signed deletions are written. */
  rawDelete: 'UNSIGNED_DELETE',
} as const;
export type KvTamperReason = (typeof KV_TAMPER_REASONS)[keyof typeof KV_TAMPER_REASONS];

/** One integrity violation: the bucket, the key when one is to blame, and what is wrong. */
export interface KvTamperFinding {
  readonly bucket: string;
  readonly key: string | undefined;
  readonly reason: KvTamperReason;
  readonly detail: string;
}

export interface SignedKvOptions {
  readonly nc: NatsConnection;
  readonly kv: KV;
  /** The bucket's name; signatures cover it, so a record cannot be moved between buckets. */
  readonly bucket: string;
  /** Present on the owner of the bucket, the only one that writes it. */
  readonly signer?: EventSigner;
  readonly verifier: EventVerifier;
  readonly logger: Logger;
  /** Told once when the bucket is found tampered with (the service audits it). */
  readonly onTampered?: (finding: KvTamperFinding) => void;
  readonly minBackoffMs?: number;
  readonly maxBackoffMs?: number;
}

/** Returned by an update function to leave a key as it is. */
export const UNCHANGED: unique symbol = Symbol('unchanged');

/** How often a write is retried after another writer got in first. */
const MAX_WRITE_ATTEMPTS = 10;
/** How long a write waits for the copy to catch up with another writer before checking the tail. */
const CATCH_UP_WAIT_MS = 2_000;
/** While loading, how often the stream's tail is checked again (a tail deleted mid-load never arrives). */
const LOAD_RECHECK_MS = 3_000;
/** How long {@link SignedKvStore.resync} waits for the copy to catch up before it gives up. */
const DEFAULT_KV_RESYNC_WAIT_MS = 5_000;

type Held = { readonly revision: number; readonly value: unknown };

/** The bucket head: a digest of every key's newest revision, tombstones included. */
function headOf(held: ReadonlyMap<string, Held>): string {
  const hash = createHash('sha256');
  for (const key of [...held.keys()].sort()) hash.update(`${key}\u0000${held.get(key)!.revision}\n`);
  return hash.digest('base64url');
}

/**
 * A JetStream KV bucket whose every record is signed by its owner and bound to its bucket, key
 * and revision, with an in-memory copy checked as a whole.
 *
 * A writer signs the revision its record will land at (the stream's last sequence + 1) and
 * publishes with JetStream's expected-last-sequence check, so concurrent writers are serialised
 * and a record always sits at the revision it was signed for. Each record also signs the bucket
 * head after it (a digest of every key's newest revision); deletion is a signed tombstone.
 *
 * The copy checks, at load and on every change: each record verifies and sits at its signed
 * revision; the newest record is the stream's last message (its sequence never goes down, so a
 * deleted newest record shows as a gap); the keys and revisions held match the newest record's
 * head. Any violation turns the copy TAMPERED for good: reads fail with UNAVAILABLE, one error
 * line names the bucket, key and problem, and the owner is told (to audit it and report
 * NOT_SERVING). While the event-signing keys cannot be fetched the copy stays LOADING and retries
 * quietly. Nothing here blocks start-up: {@link start} returns at once.
 */
export class SignedKvStore<T> {
  private held = new Map<string, Held>();
  /** The highest revision in `held`: a write expects the stream to end there. */
  private newest = 0;
  private current: SignedKvState = SIGNED_KV_STATES.loading;
  private stopped = false;
  private stopWatch: (() => void) | undefined;
  private jsm: JetStreamManager | undefined;
  private readonly stateListeners: ((state: SignedKvState) => void)[] = [];
  private readonly changeListeners: ((key: string, value: T | undefined) => void)[] = [];
  /** Woken whenever the copy moves or changes state. */
  private progress: (() => void)[] = [];
  /** Entries the watch has delivered: tells a watch that is slow from one that stalled. */
  private delivered = 0;
  private readonly minBackoffMs: number;
  private readonly maxBackoffMs: number;

  constructor(private readonly options: SignedKvOptions) {
    this.minBackoffMs = options.minBackoffMs ?? 250;
    this.maxBackoffMs = options.maxBackoffMs ?? 2_000;
  }

  get bucket(): string {
    return this.options.bucket;
  }

  get state(): SignedKvState {
    return this.current;
  }

  get ready(): boolean {
    return this.current === SIGNED_KV_STATES.ready;
  }

  /** Starts loading and following the bucket in the background. */
  start(): void {
    void this.follow();
  }

  /** Resolves once the copy is READY or TAMPERED (never while it waits for keys). */
  settled(): Promise<SignedKvState> {
    return new Promise(resolve => {
      const check = (): void => {
        if (this.current !== SIGNED_KV_STATES.loading || this.stopped) resolve(this.current);
        else this.progress.push(check);
      };
      check();
    });
  }

  stop(): void {
    this.stopped = true;
    this.stopWatch?.();
    this.wake();
  }

  /**
   * Resolves once the copy holds every record the bucket's stream holds now. After a reconnect,
   * records other writers made meanwhile may still be on their way, so the copy is not to be
   * trusted again before this resolves (a `Freshness` calls it first). A newest record that was
   * deleted never arrives: it is judged as tampering, as in the write path.
   *
   * @throws AeseError UNAVAILABLE when the stream cannot be read, the copy is not READY, or it has
   * not caught up within `timeoutMs`.
   */
  async resync(timeoutMs = DEFAULT_KV_RESYNC_WAIT_MS): Promise<void> {
    const until = Date.now() + timeoutMs;
    let tail: number;
    let timer: NodeJS.Timeout | undefined;
    try {
      const read = this.lastSeq();
      // The read may outlive the bound (NATS unreachable); its late failure is of no interest then.
      read.catch(() => undefined);
      tail = await Promise.race([read, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer in ${timeoutMs} ms`)), timeoutMs)))]);
    } catch (err) {
      throw new AeseError('UNAVAILABLE', `cannot read the ${this.options.bucket} bucket's stream to catch up with it`, { cause: err });
    } finally {
      clearTimeout(timer);
    }
    const delivered = this.delivered;
    if (await this.waitCaughtUp(tail, Math.min(CATCH_UP_WAIT_MS, until - Date.now()))) return;
    // Nothing delivered since the reconnect: the watch's consumer may have gone with the server,
    // and the client would notice only after missed heartbeats. Load again with a new watch.
    if (this.delivered === delivered && this.current === SIGNED_KV_STATES.ready && !this.stopped) this.stopWatch?.();
    if (await this.waitCaughtUp(tail, until - Date.now())) return;
    if (this.stopped) throw new AeseError('UNAVAILABLE', `the ${this.options.bucket} bucket is no longer followed`);
    this.assertReady();
    // Behind for the whole bound: a deleted newest record is tampering (found in the background, the bound is kept).
    void this.checkTail(this.newest).catch(() => undefined);
    throw new AeseError('UNAVAILABLE', `the ${this.options.bucket} bucket did not catch up with its stream within ${timeoutMs} ms`);
  }

  /** Called on every state change (LOADING -> READY, * -> TAMPERED). */
  onState(listener: (state: SignedKvState) => void): void {
    this.stateListeners.push(listener);
  }

  /** Called for every change the copy takes (a deletion passes undefined). */
  onChange(listener: (key: string, value: T | undefined) => void): void {
    this.changeListeners.push(listener);
  }

  /** @throws AeseError UNAVAILABLE unless the copy is READY. */
  get(key: string): T | undefined {
    this.assertReady();
    return this.valueOf(key);
  }

  /** Every live (not deleted) entry. @throws AeseError UNAVAILABLE unless the copy is READY. */
  entries(): [string, T][] {
    this.assertReady();
    const out: [string, T][] = [];
    for (const [key, h] of this.held) if (h.value !== null && h.value !== undefined) out.push([key, h.value as T]);
    return out;
  }

  values(): T[] {
    return this.entries().map(([, v]) => v);
  }

  /** Signs and writes a value. */
  async put(key: string, value: T): Promise<void> {
    await this.update(key, () => value);
  }

  /** Writes a signed deletion (a tombstone); a raw KV delete would be taken for tampering. */
  async delete(key: string): Promise<void> {
    await this.update(key, current => (current === undefined ? UNCHANGED : undefined));
  }

  /**
   * Reads, decides and writes one key as one step: `next` sees the current value and returns
   * the new one (undefined deletes, {@link UNCHANGED} writes nothing). Retried from a fresh
   * read when another writer got in first, so `next` may run more than once.
   *
   * @throws AeseError UNAVAILABLE when the copy is not READY, signing fails or NATS cannot be
   * reached; whatever `next` throws.
   */
  async update(key: string, next: (current: T | undefined) => T | undefined | typeof UNCHANGED): Promise<void> {
    const signer = this.options.signer;
    if (!signer) throw new TypeError(`${this.options.bucket} is read-only here`);
    for (let attempt = 1; ; attempt++) {
      this.assertReady();
      const expected = this.newest;
      const value = next(this.valueOf(key));
      if (value === UNCHANGED) return;
      const version = expected + 1;
      const after = new Map(this.held);
      after.set(key, { revision: version, value: value ?? null });
      const payloadJson = JSON.stringify({ value: value ?? null, head: headOf(after) } satisfies SignedPayload);
      let signed: { kid: string; signature: Uint8Array };
      try {
        signed = await signer.sign(this.bytes(key, version, payloadJson));
      } catch (err) {
        throw new AeseError('UNAVAILABLE', `cannot sign a record for ${this.options.bucket}`, { cause: err });
      }
      const record: SignedRecord = { payloadJson, version, kid: signed.kid, signature: Buffer.from(signed.signature).toString('base64url') };
      const h = headers();
      // Set by hand: the client leaves out an expected sequence of 0 (an empty bucket).
      h.set('Nats-Expected-Last-Sequence', String(expected));
      try {
        await this.options.nc.jetstream().publish(`$KV.${this.options.bucket}.${key}`, Buffer.from(JSON.stringify(record)), { headers: h });
      } catch (err) {
        if (jsErrorCode(err) !== JS_ERRORS.wrongLastSequence && !/wrong last sequence/i.test(String((err as Error).message))) {
          throw new AeseError('UNAVAILABLE', `cannot write to ${this.options.bucket}`, { cause: err });
        }
        if (attempt >= MAX_WRITE_ATTEMPTS) throw new AeseError('UNAVAILABLE', `${this.options.bucket} kept moving during the write; try again`);
        // Another writer got in first: wait for the copy to take its record, then decide again.
        if (!(await this.waitPast(expected, CATCH_UP_WAIT_MS))) await this.checkTail(expected);
        continue;
      }
      if (this.newest === expected) {
        this.held.set(key, { revision: version, value: value ?? null });
        this.newest = version;
        this.emit(key, value ?? null);
        this.wake();
      }
      return;
    }
  }

  /** A tombstone (null) reads as absent. */
  private valueOf(key: string): T | undefined {
    const v = this.held.get(key)?.value;
    return v === null || v === undefined ? undefined : (v as T);
  }

  private assertReady(): void {
    if (this.current === SIGNED_KV_STATES.ready) return;
    throw new AeseError(
      'UNAVAILABLE',
      this.current === SIGNED_KV_STATES.tampered
        ? `the ${this.options.bucket} bucket failed its integrity check; see docs/security-operations.md`
        : `the ${this.options.bucket} bucket is not loaded yet`,
    );
  }

  private bytes(key: string, version: number, payloadJson: string): Uint8Array {
    return signedBytes(`kv.${this.options.bucket}`, key, version, Buffer.from(payloadJson, 'utf8'));
  }

  private emit(key: string, value: unknown): void {
    for (const l of this.changeListeners) l(key, value === null ? undefined : (value as T));
  }

  private wake(): void {
    const waiting = this.progress;
    this.progress = [];
    for (const w of waiting) w();
  }

  /** Resolves true once the copy holds a revision past `revision`, false after `ms`. */
  private waitPast(revision: number, ms: number): Promise<boolean> {
    return new Promise(resolve => {
      const timer = setTimeout(() => resolve(false), ms);
      timer.unref();
      const check = (): void => {
        if (this.newest > revision || this.current !== SIGNED_KV_STATES.ready || this.stopped) {
          clearTimeout(timer);
          resolve(this.newest > revision);
        } else this.progress.push(check);
      };
      check();
    });
  }

  /** Resolves true once the copy is READY and holds `revision`, false when it is TAMPERED, stopped or after `ms`. */
  private waitCaughtUp(revision: number, ms: number): Promise<boolean> {
    return new Promise(resolve => {
      const timer = setTimeout(() => resolve(false), Math.max(0, ms));
      timer.unref();
      const check = (): void => {
        const caughtUp = this.current === SIGNED_KV_STATES.ready && this.newest >= revision;
        if (caughtUp || this.current === SIGNED_KV_STATES.tampered || this.stopped) {
          clearTimeout(timer);
          resolve(caughtUp && !this.stopped);
        } else this.progress.push(check);
      };
      check();
    });
  }

  private pause(ms: number): Promise<void> {
    return new Promise(resolve => {
      const timer = setTimeout(resolve, ms);
      timer.unref();
    });
  }

  private async manager(): Promise<JetStreamManager> {
    this.jsm ??= await retryJetStream(() => this.options.nc.jetstreamManager());
    return this.jsm;
  }

  private get stream(): string {
    return `KV_${this.options.bucket}`;
  }

  /** The stream's last sequence; it never goes down, deletions included. */
  private async lastSeq(): Promise<number> {
    const jsm = await this.manager();
    return (await retryJetStream(() => jsm.streams.info(this.stream))).state.last_seq;
  }

  /** Whether the stream still holds the message at `seq`. */
  private async holds(seq: number): Promise<boolean> {
    const jsm = await this.manager();
    try {
      await retryJetStream(() => jsm.streams.getMessage(this.stream, { seq }));
      return true;
    } catch (err) {
      if (jsErrorCode(err) === JS_ERRORS.noMessageFound || /no message found/i.test(String((err as Error).message))) return false;
      throw err;
    }
  }

  /**
   * The stream ends past what the copy holds: fine while that last message exists (it is on its
   * way); a deleted last message is tampering.
   * @returns true when the tail is behind the copy's newest (nothing missing, nothing coming).
   */
  private async checkTail(newest: number): Promise<boolean> {
    const last = await this.lastSeq();
    if (last <= newest) return true;
    if (!(await this.holds(last))) {
      this.tamper(undefined, KV_TAMPER_REASONS.missing, `the newest record (stream sequence ${last}) was deleted; the newest one left is at ${newest}`);
    }
    return false;
  }

  /** Loads, then follows; after the watch ends (NATS lost), loads again. Never throws. */
  private async follow(): Promise<void> {
    let backoff = this.minBackoffMs;
    while (!this.stopped && this.current !== SIGNED_KV_STATES.tampered) {
      try {
        await this.followOnce();
        backoff = this.minBackoffMs;
      } catch (err) {
        if (this.stopped) return;
        this.options.logger.warn({ err, bucket: this.options.bucket }, 'signed KV watch failed; loading again');
      }
      if (this.stopped || this.state === SIGNED_KV_STATES.tampered) return;
      await this.pause(backoff);
      backoff = Math.min(this.maxBackoffMs, backoff * 2);
    }
  }

  /** One watch from the stream's start (last value per key) to its end. */
  private async followOnce(): Promise<void> {
    const tail = await this.lastSeq();
    if (tail > 0 && !(await this.holds(tail))) {
      this.tamper(undefined, KV_TAMPER_REASONS.missing, `the newest record (stream sequence ${tail}) was deleted`);
      return;
    }
    const iter = await retryJetStream(() => this.options.kv.watch());
    this.stopWatch = () => iter.stop();
    // Until caught up, changes gather in a fresh copy; the last checked copy keeps answering.
    let map = new Map<string, Held>();
    let newest = 0;
    let caughtUp = false;
    const becomeCurrent = (): void => {
      caughtUp = true;
      const before = this.held;
      const reload = this.current === SIGNED_KV_STATES.ready;
      this.held = map;
      this.newest = newest;
      this.wake();
      if (this.current === SIGNED_KV_STATES.loading) this.setState(SIGNED_KV_STATES.ready);
      if (!reload) return;
      // A load again (after a lost watch) swaps the copy whole: what it changed is told like any change.
      for (const [key, held] of map) if (before.get(key)?.revision !== held.revision) this.emit(key, held.value);
      for (const [key, held] of before) if (!map.has(key) && held.value !== null) this.emit(key, null);
    };
    if (tail === 0) becomeCurrent();
    let recheck: NodeJS.Timeout | undefined;
    if (!caughtUp) {
      // A newest record deleted after the check above would never arrive: look again now and then.
      recheck = setInterval(() => {
        void this.checkTail(newest).catch(() => undefined);
      }, LOAD_RECHECK_MS);
      recheck.unref();
    }
    try {
      for await (const e of iter) {
        this.delivered++;
        if (this.stopped || this.current === SIGNED_KV_STATES.tampered) break;
        if (caughtUp) {
          map = this.held;
          newest = this.newest;
        }
        const taken = await this.take(e);
        if (taken === undefined) break;
        if (caughtUp && taken.revision <= this.newest && this.held.get(e.key)?.revision === taken.revision) {
          // Our own write, applied when it was acknowledged.
          continue;
        }
        map.set(e.key, { revision: taken.revision, value: taken.value });
        newest = Math.max(newest, taken.revision);
        if (caughtUp) {
          this.newest = newest;
          this.emit(e.key, taken.value);
          this.wake();
        }
        if (!caughtUp && e.revision < tail) continue;
        if (headOf(map) === taken.head) {
          if (!caughtUp) {
            becomeCurrent();
            clearInterval(recheck);
          }
          continue;
        }
        // The copy does not match what the newest record vouches for: more may be on the way
        // (a burst, or writes racing the load); only with nothing more to come is it a loss.
        if ((e.delta ?? 0) > 0) continue;
        if (!(await this.checkTail(newest))) continue;
        // The head is a digest: which key lost its record cannot be told, only that one did.
        this.tamper(
          undefined,
          KV_TAMPER_REASONS.missing,
          `the keys and revisions held do not match the head signed by the newest record (revision ${e.revision}, key ${e.key}): a record was deleted or rolled back`,
        );
        break;
      }
    } finally {
      clearInterval(recheck);
      iter.stop();
    }
  }

  /**
   * Checks one entry: an unsigned-delete, a bad signature or a record away from its signed
   * revision turns the copy TAMPERED (undefined is returned). Waits while the event-signing keys
   * cannot be fetched.
   */
  private async take(e: KvEntry): Promise<{ revision: number; value: unknown; head: string } | undefined> {
    if (e.operation !== 'PUT') {
      this.tamper(e.key, KV_TAMPER_REASONS.rawDelete, `an unsigned ${e.operation} at revision ${e.revision}`);
      return undefined;
    }
    let record: SignedRecord;
    let payload: SignedPayload;
    try {
      record = JSON.parse(Buffer.from(e.value).toString('utf8')) as SignedRecord;
      payload = JSON.parse(record.payloadJson) as SignedPayload;
      if (typeof record.kid !== 'string' || typeof record.signature !== 'string' || !Number.isSafeInteger(record.version) || typeof payload.head !== 'string') {
        throw new TypeError('not a signed record');
      }
    } catch {
      this.tamper(e.key, KV_TAMPER_REASONS.unsigned, `revision ${e.revision} is not a signed record`);
      return undefined;
    }
    if (!(await this.verified(e.key, record))) {
      if (!this.stopped) this.tamper(e.key, KV_TAMPER_REASONS.unsigned, `the signature of revision ${e.revision} does not verify`);
      return undefined;
    }
    if (record.version !== e.revision) {
      this.tamper(e.key, KV_TAMPER_REASONS.replayed, `a record signed for revision ${record.version} sits at revision ${e.revision} (re-published)`);
      return undefined;
    }
    return { revision: e.revision, value: payload.value, head: payload.head };
  }

  /** Verifies, retrying quietly while the keys cannot be fetched (crypto not up yet). */
  private async verified(key: string, record: SignedRecord): Promise<boolean> {
    const data = this.bytes(key, record.version, record.payloadJson);
    const ok = await untilKeysAnswer(
      () =>
        this.options.verifier.verify(record.kid, data, Buffer.from(record.signature, 'base64url')).catch((err: unknown) => {
          if (isKeysUnavailable(err)) throw err;
          return false;
        }),
      {
        stopped: () => this.stopped,
        onWait: (_err, waits) => {
          if (waits === 1) this.options.logger.info({ bucket: this.options.bucket }, `${this.options.bucket}: waiting for the event-signing keys`);
        },
      },
    );
    return ok ?? false;
  }

  private tamper(key: string | undefined, reason: KvTamperReason, detail: string): void {
    if (this.current === SIGNED_KV_STATES.tampered || this.stopped) return;
    const finding: KvTamperFinding = { bucket: this.options.bucket, key, reason, detail };
    this.options.logger.error(
      { bucket: finding.bucket, entry: key ?? null, reason },
      `KV bucket ${finding.bucket}${key === undefined ? '' : ` key ${key}`} failed its integrity check (${reason}): ${detail}; not serving until it is restored (docs/security-operations.md)`,
    );
    this.setState(SIGNED_KV_STATES.tampered);
    this.stopWatch?.();
    this.options.onTampered?.(finding);
  }

  private setState(state: SignedKvState): void {
    this.current = state;
    this.wake();
    for (const l of this.stateListeners) l(state);
  }
}

/** Audit record fields for a tamper finding (no values, only the bucket, key and reason). */
export function tamperAuditDetail(finding: KvTamperFinding): Record<string, string> {
  return { bucket: finding.bucket, ...(finding.key === undefined ? {} : { key: finding.key }) };
}
