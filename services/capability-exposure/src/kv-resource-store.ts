import { Freshness, SIGNED_KV_STATES, SignedKvStore, UNCHANGED } from '@aese/events';
import type { EventSigner, EventVerifier, KvTamperFinding, SignedKvState } from '@aese/events';
import type { Logger } from '@aese/logger';
import { KV_BUCKETS, openKv } from '@aese/nats';
import type { NatsConnection } from '@aese/nats';
import { ResourcesUnavailable } from './domain/resource-store.js';
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
 *
 * Another replica may change or delete a subscription while this one cannot hear of it: once NATS
 * has been unreachable for longer than the staleness bound, every read and write is refused
 * ({@link ResourcesUnavailable}), notification matching included (the event is matched again
 * later), until the connection is back and the copy has caught up with everything written meanwhile.
 */
export class KvResourceStore implements ResourceStore {
  private readonly freshness: Freshness;
  private wasFresh = true;

  private constructor(
    private readonly signed: SignedKvStore<StoredResource>,
    nc: NatsConnection,
    stalenessBoundMs: number,
    logger: Logger,
  ) {
    this.freshness = new Freshness(nc, [signed], stalenessBoundMs);
    this.freshness.onChange(fresh => {
      if (fresh === this.wasFresh) return;
      this.wasFresh = fresh;
      if (fresh) logger.info({ bucket: SUBSCRIPTIONS_BUCKET }, 'subscriptions caught up with the bucket again; T8 requests and notifications served');
      else {
        logger.warn(
          { bucket: SUBSCRIPTIONS_BUCKET, stalenessBoundMs },
          'subscriptions unconfirmed beyond the staleness bound (NATS unreachable): T8 requests refused with 503, network events handed back until the copy has caught up',
        );
      }
    });
  }

  /**
   * Opens the bucket and starts loading it; reads wait for the load (bounded). The copy keeps
   * answering for `stalenessBoundMs` once NATS is unreachable, then refuses until it caught up.
   */
  static async open(nc: NatsConnection, signing: ResourceSigning, stalenessBoundMs: number): Promise<KvResourceStore> {
    const signed = new SignedKvStore<StoredResource>({
      nc,
      kv: await openKv(nc, SUBSCRIPTIONS_BUCKET, { history: 1 }),
      bucket: SUBSCRIPTIONS_BUCKET,
      ...signing,
    });
    signed.start();
    return new KvResourceStore(signed, nc, stalenessBoundMs, signing.logger);
  }

  private static key(api: string, scsAsId: string, id: string): string {
    return `${api}.${scsAsId}.${id}`;
  }

  /** Loaded and intact (READY); says nothing about freshness. */
  get ready(): boolean {
    return this.signed.ready;
  }

  /** True while the copy may be relied on: connected, or unreachable for less than the staleness bound. */
  get fresh(): boolean {
    return this.freshness.isFresh();
  }

  /** Resolves once the bucket is READY or TAMPERED. */
  settled(): Promise<SignedKvState> {
    return this.signed.settled();
  }

  /**
   * Called for every change the copy takes, with the owning SCS/AS of the changed record; with
   * undefined for a deletion (its owner is no longer at hand).
   */
  onChange(listener: (scsAsId: string | undefined) => void): void {
    this.signed.onChange((_key, record) => listener(record?.scsAsId));
  }

  /** Called whenever {@link ready} or {@link fresh} may have changed (health follows both). */
  onState(listener: () => void): void {
    this.signed.onState(() => listener());
    this.freshness.onChange(() => listener());
  }

  /** Nothing is answered or decided on a copy that may be stale: refused before and after a load wait. */
  private async usable(): Promise<void> {
    this.assertFresh();
    await this.loaded();
    this.assertFresh();
  }

  private assertFresh(): void {
    if (!this.freshness.isFresh()) throw new ResourcesUnavailable(`the ${SUBSCRIPTIONS_BUCKET} copy is older than the staleness bound`);
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
    await this.usable();
    const record = this.signed.get(KvResourceStore.key(api, scsAsId, id));
    return KvResourceStore.owned(record, api, scsAsId, id) ? record : undefined;
  }

  async put(record: StoredResource): Promise<void> {
    await this.usable();
    await this.signed.put(KvResourceStore.key(record.api, record.scsAsId, record.id), record);
  }

  async delete(api: string, scsAsId: string, id: string): Promise<void> {
    await this.usable();
    await this.signed.delete(KvResourceStore.key(api, scsAsId, id));
  }

  async update(api: string, scsAsId: string, id: string, next: (current: StoredResource | undefined) => StoredResource | null | undefined): Promise<void> {
    await this.usable();
    await this.signed.update(KvResourceStore.key(api, scsAsId, id), current => {
      const owned = KvResourceStore.owned(current, api, scsAsId, id) ? current : undefined;
      const out = next(owned);
      if (out === undefined || (out === null && current === undefined)) return UNCHANGED;
      return out === null ? undefined : out;
    });
  }

  async list(api: string, scsAsId: string): Promise<StoredResource[]> {
    await this.usable();
    return this.signed
      .entries()
      .filter(([key, r]) => KvResourceStore.owned(r, api, scsAsId) && key === KvResourceStore.key(api, scsAsId, r.id))
      .map(([, r]) => r)
      .sort((a, b) => a.createdAtMs - b.createdAtMs);
  }

  /**
   * Every resource of one API (notification matching); none while the bucket is not READY. A stale
   * copy throws {@link ResourcesUnavailable}: the network event being matched is then handed back
   * (nak'ed on the shared feed) and matched again once the copy has caught up, not dropped.
   */
  all(api: string): readonly StoredResource[] {
    this.assertFresh();
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
