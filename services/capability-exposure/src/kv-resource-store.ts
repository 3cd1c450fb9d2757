import { SIGNED_KV_STATES, SignedKvStore, UNCHANGED } from '@aese/events';
import type { EventSigner, EventVerifier, KvTamperFinding, SignedKvState } from '@aese/events';
import type { Logger } from '@aese/logger';
import { KV_BUCKETS, openKv } from '@aese/nats';
import type { NatsConnection } from '@aese/nats';
import type { ResourceStore, StoredResource } from './domain/resource-store.js';

/** KV bucket of T8 subscriptions; keys are `<api>.<scsAsId>.<id>`. */
export const SUBSCRIPTIONS_BUCKET = KV_BUCKETS.subscriptions;
/** How long a request that arrives while the bucket is still loading waits for it. */
export const LOAD_WAIT_MS = 10_000;

/** What the store needs to sign, verify and report the bucket. */
export interface ResourceSigning {
  readonly signer: EventSigner;
  readonly verifier: EventVerifier;
  readonly logger: Logger;
  /** Told once if the bucket is found tampered with (the service audits it). */
  readonly onTampered: (finding: KvTamperFinding) => void;
}

/**
 * T8 resources in JetStream KV, so they survive restarts of the service. A key names the API,
 * the owning scsAsId and the id, so a lookup for one AS can never find another's resource.
 *
 * The bucket is a {@link SignedKvStore}: every record is signed by this service (through crypto)
 * and bound to its key and revision, and replicas serialise their writes on the stream's last
 * sequence. A subscription copied under another key, re-published or deleted behind the
 * service's back is found, and the store then refuses every read: a notification is never sent
 * on a record this service did not write. Reads come from the checked copy in memory
 * (notification matching reads it on every network event).
 */
export class KvResourceStore implements ResourceStore {
  private constructor(private readonly signed: SignedKvStore<StoredResource>) {}

  /** Opens the bucket and starts loading it; reads wait for the load (bounded). */
  static async open(nc: NatsConnection, signing: ResourceSigning): Promise<KvResourceStore> {
    const signed = new SignedKvStore<StoredResource>({
      nc,
      kv: await openKv(nc, SUBSCRIPTIONS_BUCKET, { history: 1 }),
      bucket: SUBSCRIPTIONS_BUCKET,
      ...signing,
    });
    signed.start();
    return new KvResourceStore(signed);
  }

  private static key(api: string, scsAsId: string, id: string): string {
    return `${api}.${scsAsId}.${id}`;
  }

  get ready(): boolean {
    return this.signed.ready;
  }

  /** Resolves once the bucket is READY or TAMPERED. */
  settled(): Promise<SignedKvState> {
    return this.signed.settled();
  }

  onState(listener: () => void): void {
    this.signed.onState(listener);
  }

  /** Waits for a load in progress (bounded); the store's own errors say why it is not ready. */
  private async loaded(): Promise<void> {
    if (this.signed.state !== SIGNED_KV_STATES.loading) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.signed.settled(), new Promise(resolve => (timer = setTimeout(resolve, LOAD_WAIT_MS)))]);
    clearTimeout(timer);
  }

  /** A record is only ever taken from under its own key, and its owner fields must agree. */
  private static owned(record: StoredResource | undefined, api: string, scsAsId: string, id?: string): record is StoredResource {
    return record !== undefined && record.api === api && record.scsAsId === scsAsId && (id === undefined || record.id === id);
  }

  async get(api: string, scsAsId: string, id: string): Promise<StoredResource | undefined> {
    await this.loaded();
    const record = this.signed.get(KvResourceStore.key(api, scsAsId, id));
    return KvResourceStore.owned(record, api, scsAsId, id) ? record : undefined;
  }

  async put(record: StoredResource): Promise<void> {
    await this.loaded();
    await this.signed.put(KvResourceStore.key(record.api, record.scsAsId, record.id), record);
  }

  async delete(api: string, scsAsId: string, id: string): Promise<void> {
    await this.loaded();
    await this.signed.delete(KvResourceStore.key(api, scsAsId, id));
  }

  async update(api: string, scsAsId: string, id: string, next: (current: StoredResource | undefined) => StoredResource | null | undefined): Promise<void> {
    await this.loaded();
    await this.signed.update(KvResourceStore.key(api, scsAsId, id), current => {
      const owned = KvResourceStore.owned(current, api, scsAsId, id) ? current : undefined;
      const out = next(owned);
      if (out === undefined || (out === null && current === undefined)) return UNCHANGED;
      return out === null ? undefined : out;
    });
  }

  async list(api: string, scsAsId: string): Promise<StoredResource[]> {
    await this.loaded();
    return this.signed
      .entries()
      .filter(([key, r]) => KvResourceStore.owned(r, api, scsAsId) && key === KvResourceStore.key(api, scsAsId, r.id))
      .map(([, r]) => r)
      .sort((a, b) => a.createdAtMs - b.createdAtMs);
  }

  /** Every resource of one API (notification matching); none while the bucket is not READY. */
  all(api: string): readonly StoredResource[] {
    if (!this.signed.ready) return [];
    return this.signed
      .entries()
      .filter(([key, r]) => r.api === api && key === KvResourceStore.key(r.api, r.scsAsId, r.id))
      .map(([, r]) => r);
  }

  close(): void {
    this.signed.stop();
  }
}
