import { KV_BUCKETS, kvGetJson, kvKeys, kvPutJson, openKv, retryJetStream } from '@aese/nats';
import type { KV, NatsConnection } from '@aese/nats';
import type { ResourceStore, StoredResource } from './domain/resource-store.js';

/** KV bucket of T8 subscriptions; keys are `<api>.<scsAsId>.<id>`. */
export const SUBSCRIPTIONS_BUCKET = KV_BUCKETS.subscriptions;

/**
 * T8 resources in JetStream KV, so they survive restarts of the service. A key names the API,
 * the owning scsAsId and the id, so a lookup for one AS can never find another's resource. A
 * full copy is cached in memory (notification matching reads it on every network event) and
 * kept current by this replica's writes and by a watch on the bucket for other replicas'.
 */
export class KvResourceStore implements ResourceStore {
  private readonly cache = new Map<string, StoredResource>();
  private stopWatch: (() => void) | undefined;

  private constructor(private readonly kv: KV) {}

  static async open(nc: NatsConnection): Promise<KvResourceStore> {
    const store = new KvResourceStore(await openKv(nc, SUBSCRIPTIONS_BUCKET, { history: 1 }));
    await store.load();
    return store;
  }

  private static key(api: string, scsAsId: string, id: string): string {
    return `${api}.${scsAsId}.${id}`;
  }

  private async load(): Promise<void> {
    // Keys first: a get() while the keys() iterator runs ends the iteration early.
    for (const key of await kvKeys(this.kv)) {
      const v = await kvGetJson<StoredResource>(this.kv, key);
      if (v) this.cache.set(key, v);
    }
    const iter = await retryJetStream(() => this.kv.watch({ include: 'updates' as never }));
    this.stopWatch = () => iter.stop();
    void (async () => {
      for await (const e of iter) {
        if (e.operation === 'PUT' && e.value.length > 0) this.cache.set(e.key, JSON.parse(new TextDecoder().decode(e.value)) as StoredResource);
        else this.cache.delete(e.key);
      }
    })().catch(() => undefined);
  }

  async get(api: string, scsAsId: string, id: string): Promise<StoredResource | undefined> {
    const record = await kvGetJson<StoredResource>(this.kv, KvResourceStore.key(api, scsAsId, id));
    // The key already scopes the lookup; the owner field is checked as well, in depth.
    return record && record.scsAsId === scsAsId && record.api === api ? record : undefined;
  }

  async put(record: StoredResource): Promise<void> {
    const key = KvResourceStore.key(record.api, record.scsAsId, record.id);
    await kvPutJson(this.kv, key, record);
    this.cache.set(key, record);
  }

  async delete(api: string, scsAsId: string, id: string): Promise<void> {
    const key = KvResourceStore.key(api, scsAsId, id);
    await this.kv.delete(key);
    this.cache.delete(key);
  }

  async list(api: string, scsAsId: string): Promise<StoredResource[]> {
    const keys: string[] = [];
    // `*` is one token: "<api>.<scsAsId>.*" never reaches "<api>.<scsAsId>.<more>.<id>".
    for await (const k of await this.kv.keys(`${api}.${scsAsId}.*`)) keys.push(k);
    const out: StoredResource[] = [];
    for (const k of keys) {
      const v = await kvGetJson<StoredResource>(this.kv, k);
      if (v && v.scsAsId === scsAsId && v.api === api) out.push(v);
    }
    return out.sort((a, b) => a.createdAtMs - b.createdAtMs);
  }

  all(api: string): readonly StoredResource[] {
    return [...this.cache.values()].filter(r => r.api === api);
  }

  close(): void {
    this.stopWatch?.();
  }
}
