import { KV_BUCKETS, kvKeys, kvPutJson, openKv } from '@aese/nats';
import type { KV, NatsConnection } from '@aese/nats';
import type { KeyRecord, KeyRecordStore } from './domain/keys.js';

const decoder = new TextDecoder();

/** A stored value as JSON, or a stand-in naming its key when it is not JSON (refused later). */
function parse(key: string, value: Uint8Array): unknown {
  try {
    return JSON.parse(decoder.decode(value)) as unknown;
  } catch {
    return { kid: key, unparsable: true };
  }
}

/**
 * Key records in JetStream KV, one entry per kid; private keys are stored sealed only. Values
 * are handed over unchecked: anyone with write access to the bucket could have put them there,
 * and the custody decides what to apply.
 */
export class KvKeyStore implements KeyRecordStore {
  private constructor(private readonly kv: KV) {}

  static async open(nc: NatsConnection): Promise<KvKeyStore> {
    return new KvKeyStore(await openKv(nc, KV_BUCKETS.signingKeys, { history: 5 }));
  }

  /**
   * Every kept revision of every record, oldest first per kid: when the newest value of a kid
   * is refused (written by someone without the KEK), the last good one before it stays in force.
   */
  async list(): Promise<unknown[]> {
    const out: unknown[] = [];
    // Collect the keys first: a read while the keys() iterator runs ends the iteration early.
    for (const key of await kvKeys(this.kv)) {
      for await (const e of await this.kv.history({ key })) {
        if (e.operation === 'PUT' && e.value.length > 0) out.push(parse(key, e.value));
      }
    }
    return out;
  }

  put(record: KeyRecord): Promise<void> {
    return kvPutJson(this.kv, record.kid, record);
  }

  /** Calls back with every value written after the watch starts (other replicas' rotations, or forgeries). */
  async watch(onRecord: (record: unknown) => void): Promise<() => void> {
    const iter = await this.kv.watch({ include: 'updates' as never });
    void (async () => {
      for await (const e of iter) {
        if (e.operation === 'PUT') onRecord(parse(e.key, e.value));
      }
    })();
    return () => iter.stop();
  }
}
