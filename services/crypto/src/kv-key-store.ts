import { KV_BUCKETS, kvGetJson, kvPutJson, kvValuesJson, openKv } from '@aese/nats';
import type { KV, NatsConnection } from '@aese/nats';
import type { KeyRecord, KeyRecordStore } from './domain/keys.js';

/** Key records in JetStream KV, one entry per kid; private keys are stored sealed only. */
export class KvKeyStore implements KeyRecordStore {
  private constructor(private readonly kv: KV) {}

  static async open(nc: NatsConnection): Promise<KvKeyStore> {
    return new KvKeyStore(await openKv(nc, KV_BUCKETS.signingKeys, { history: 5 }));
  }

  list(): Promise<KeyRecord[]> {
    return kvValuesJson<KeyRecord>(this.kv);
  }

  put(record: KeyRecord): Promise<void> {
    return kvPutJson(this.kv, record.kid, record);
  }

  get(kid: string): Promise<KeyRecord | undefined> {
    return kvGetJson<KeyRecord>(this.kv, kid);
  }

  /** Calls back with every record written after the watch starts (other replicas' rotations). */
  async watch(onRecord: (record: KeyRecord) => void): Promise<() => void> {
    const iter = await this.kv.watch({ include: 'updates' as never });
    void (async () => {
      for await (const e of iter) {
        if (e.operation === 'PUT') onRecord(JSON.parse(new TextDecoder().decode(e.value)) as KeyRecord);
      }
    })();
    return () => iter.stop();
  }
}
