import { AeseError } from '@aese/errors';
import type { Logger } from '@aese/logger';
import { KV_BUCKETS, openKv } from '@aese/nats';
import type { KV, NatsConnection } from '@aese/nats';
import type { PolicyStore, StoredEntry } from './domain/policy-administration.js';

/** JetStream KV bucket of the policy versions; its name is a contract with operators. */
export const POLICY_BUCKET = KV_BUCKETS.policies;
/** The key holding the current version. */
export const POLICY_KEY = 'current';
/** Versions kept in the bucket's history, for audit and manual rollback. */
export const POLICY_HISTORY = 16;

/** JetStream API error: the expected last sequence of the subject did not match. */
const WRONG_LAST_SEQUENCE = 10071;

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
  return (err as { api_error?: { err_code?: number } } | null)?.api_error?.err_code === WRONG_LAST_SEQUENCE;
}

/** Policy versions in JetStream KV, written with compare-and-set on the key's revision. */
export class KvPolicyStore implements PolicyStore {
  private constructor(
    private readonly kv: KV,
    private readonly logger: Logger,
  ) {}

  static async open(nc: NatsConnection, logger: Logger): Promise<KvPolicyStore> {
    return new KvPolicyStore(await openKv(nc, POLICY_BUCKET, { history: POLICY_HISTORY }), logger);
  }

  async read(): Promise<StoredEntry | undefined> {
    let entry;
    try {
      entry = await this.kv.get(POLICY_KEY);
    } catch (err: unknown) {
      throw new AeseError('UNAVAILABLE', 'cannot read the policy store', { cause: err });
    }
    if (!entry || entry.operation !== 'PUT') return undefined;
    return { value: parse(entry.value), revision: entry.revision };
  }

  async history(): Promise<StoredEntry[]> {
    const out: StoredEntry[] = [];
    try {
      for await (const entry of await this.kv.history({ key: POLICY_KEY })) {
        if (entry.operation === 'PUT') out.push({ value: parse(entry.value), revision: entry.revision });
      }
    } catch (err: unknown) {
      throw new AeseError('UNAVAILABLE', 'cannot read the policy history', { cause: err });
    }
    return out.reverse();
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
