import { AeseError } from '@aese/errors';
import type { Logger } from '@aese/logger';
import { JS_ERRORS, jsErrorCode, KV_BUCKETS, openKv } from '@aese/nats';
import type { KV, NatsConnection } from '@aese/nats';
import type { PolicyStore, StoredEntry } from './domain/policy-administration.js';

/** JetStream KV bucket of the policy versions; its name is a contract with operators. */
export const POLICY_BUCKET = KV_BUCKETS.policies;
/** The key holding the current version. */
export const POLICY_KEY = 'current';
/** Versions kept in the bucket's history, for audit and manual rollback. */
export const POLICY_HISTORY = 16;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function parse(bytes: Uint8Array): unknown {
  try {
    return JSON.parse(decoder.decode(bytes)) as unknown;
  } catch {
    return undefined;
  }
}

function isConflict(err: unknown): boolean {
  return jsErrorCode(err) === JS_ERRORS.wrongLastSequence;
}

/**
 * Policy versions in JetStream KV, written with compare-and-set on the key's revision.
 *
 * Each version signs the revision it lands at (the domain checks that); this store checks what a
 * signature cannot: the bucket holds only this key, so the revisions it keeps must run without a
 * gap up to the stream's last sequence (which never goes down). A deleted newest version, a
 * deleted one in between (which would let an older version be taken) or a raw delete or purge
 * is refused with one error line, and nothing is read: the service stays NOT_SERVING rather than
 * fall back to older policies or store the shipped defaults again over a deleted key.
 */
export class KvPolicyStore implements PolicyStore {
  private reported = false;

  private constructor(
    private readonly kv: KV,
    private readonly logger: Logger,
  ) {}

  static async open(nc: NatsConnection, logger: Logger): Promise<KvPolicyStore> {
    return new KvPolicyStore(await openKv(nc, POLICY_BUCKET, { history: POLICY_HISTORY }), logger);
  }

  async read(): Promise<StoredEntry | undefined> {
    let entry;
    let last: number;
    try {
      last = await this.lastSeq();
      entry = await this.kv.get(POLICY_KEY);
    } catch (err: unknown) {
      throw new AeseError('UNAVAILABLE', 'cannot read the policy store', { cause: err });
    }
    if (!entry && last === 0) return undefined;
    // A revision written after the read above is fine; one missing below the stream's end is not.
    if (!entry || entry.operation !== 'PUT' || entry.revision < last) {
      throw this.tampered(!entry || entry.revision < last ? `the newest policy version (stream sequence ${last}) was deleted` : `an unsigned ${entry.operation} of the key`);
    }
    return { value: parse(entry.value), revision: entry.revision };
  }

  async history(): Promise<StoredEntry[]> {
    const out: StoredEntry[] = [];
    let last: number;
    try {
      last = await this.lastSeq();
      for await (const entry of await this.kv.history({ key: POLICY_KEY })) {
        if (entry.operation !== 'PUT') throw this.tampered(`an unsigned ${entry.operation} of the key at revision ${entry.revision}`);
        out.push({ value: parse(entry.value), revision: entry.revision });
      }
    } catch (err: unknown) {
      if (err instanceof AeseError) throw err;
      throw new AeseError('UNAVAILABLE', 'cannot read the policy history', { cause: err });
    }
    // One key only: every stream sequence from the oldest kept to the last must be here.
    const revisions = out.map(e => e.revision);
    const top = revisions.length > 0 ? revisions[revisions.length - 1] : 0;
    if (top < last) throw this.tampered(`the newest policy version (stream sequence ${last}) was deleted`);
    const gap = revisions.findIndex((r, i) => i > 0 && r !== revisions[i - 1] + 1);
    if (gap > 0) throw this.tampered(`the policy version at stream sequence ${revisions[gap - 1] + 1} was deleted`);
    return out.reverse();
  }

  private async lastSeq(): Promise<number> {
    return (await this.kv.status()).streamInfo.state.last_seq;
  }

  /** Logs the one line (once per store) and returns the error that keeps the service NOT_SERVING. */
  private tampered(detail: string): AeseError {
    const message = `KV bucket ${POLICY_BUCKET} key ${POLICY_KEY} failed its integrity check (MISSING): ${detail}; not serving until it is restored (docs/security-operations.md)`;
    if (!this.reported) this.logger.error({ bucket: POLICY_BUCKET, reason: 'MISSING' }, message);
    this.reported = true;
    // Not the same text again: the readiness retries report this error, the line above says what is wrong.
    return new AeseError('FAILED_PRECONDITION', `the policy versions in ${POLICY_BUCKET} are not intact (see the integrity error logged)`);
  }

  async write(expectedRevision: number, build: (landsAt: number) => Promise<unknown>): Promise<boolean> {
    let landsAt: number;
    try {
      // The bucket holds this one key, so the next value lands right after the stream's last.
      landsAt = (await this.kv.status()).streamInfo.state.last_seq + 1;
    } catch (err: unknown) {
      throw new AeseError('UNAVAILABLE', 'cannot read the policy store', { cause: err });
    }
    const bytes = encoder.encode(JSON.stringify(await build(landsAt)));
    let revision: number;
    try {
      revision = expectedRevision === 0 ? await this.kv.create(POLICY_KEY, bytes) : await this.kv.update(POLICY_KEY, bytes, expectedRevision);
    } catch (err: unknown) {
      if (isConflict(err)) return false;
      throw new AeseError('UNAVAILABLE', 'cannot write the policy store', { cause: err });
    }
    if (revision !== landsAt) {
      // Something else wrote to the bucket in between: the value's signed revision is wrong,
      // so no replica takes it. Say so rather than report a version that never decides.
      throw new AeseError('UNAVAILABLE', 'the policy store moved during the write; apply again');
    }
    return true;
  }

  async watch(onEntry: (entry: StoredEntry) => Promise<void>): Promise<() => void> {
    const iter = await this.kv.watch({ key: POLICY_KEY, ignoreDeletes: true });
    void (async () => {
      for await (const entry of iter) {
        if (entry.operation !== 'PUT') continue;
        try {
          await onEntry({ value: parse(entry.value), revision: entry.revision });
        } catch (err: unknown) {
          // One bad version must not end the watch: later ones still have to arrive.
          this.logger.error({ err }, 'a policy version could not be taken');
        }
      }
    })().catch((err: unknown) => this.logger.error({ err }, 'policy watch ended'));
    return () => iter.stop();
  }
}
