import { AeseError } from '@aese/errors';
import { SIGNED_KV_STATES, SignedKvStore, UNCHANGED } from '@aese/events';
import type { EventSigner, EventVerifier, KvTamperFinding, SignedKvState } from '@aese/events';
import type { Logger } from '@aese/logger';
import { KV_BUCKETS, openKv } from '@aese/nats';
import type { NatsConnection } from '@aese/nats';
import type { ApplicationServer, ApplicationServerStore } from './domain/registry.js';

/** What the registry needs to sign, verify and report its buckets. */
export interface RegistrySigning {
  readonly signer: EventSigner;
  readonly verifier: EventVerifier;
  readonly logger: Logger;
  /** Told once per bucket found tampered with (the service audits it). */
  readonly onTampered: (finding: KvTamperFinding) => void;
}

/**
 * The AS registry in JetStream KV, with a thumbprint -> scsAsId index bucket. Both are signed
 * buckets ({@link SignedKvStore}): every record is signed by this service and bound to its
 * bucket, key and revision, and the copies in memory are checked as a whole, so a forged,
 * re-published, deleted or rolled-back record is found and the service stops serving rather
 * than deciding on it. Lookups on the request path cost no round trip and survive a NATS outage.
 */
export class KvRegistryStore implements ApplicationServerStore {
  private constructor(
    private readonly servers: SignedKvStore<ApplicationServer>,
    private readonly index: SignedKvStore<string>,
  ) {}

  /** Opens both buckets and starts loading them; {@link ready} says when they are checked. */
  static async open(nc: NatsConnection, signing: RegistrySigning): Promise<KvRegistryStore> {
    const signed = async <T>(bucket: string, history: number): Promise<SignedKvStore<T>> =>
      new SignedKvStore<T>({ nc, kv: await openKv(nc, bucket, { history }), bucket, ...signing });
    const store = new KvRegistryStore(await signed<ApplicationServer>(KV_BUCKETS.applicationServers, 5), await signed<string>(KV_BUCKETS.certificateIndex, 1));
    store.servers.start();
    store.index.start();
    return store;
  }

  /** True once both buckets are loaded and passed every check (never after tampering). */
  get ready(): boolean {
    return this.servers.ready && this.index.ready;
  }

  /** Resolves once both buckets are READY or one of them is TAMPERED. */
  async settled(): Promise<SignedKvState> {
    const states = await Promise.all([this.servers.settled(), this.index.settled()]);
    return states.includes(SIGNED_KV_STATES.tampered) ? SIGNED_KV_STATES.tampered : SIGNED_KV_STATES.ready;
  }

  /** Called whenever either bucket changes state. */
  onState(listener: () => void): void {
    this.servers.onState(listener);
    this.index.onState(listener);
  }

  async get(scsAsId: string): Promise<ApplicationServer | undefined> {
    return this.servers.get(scsAsId);
  }

  async list(): Promise<ApplicationServer[]> {
    return this.servers.values();
  }

  async put(as: ApplicationServer): Promise<void> {
    try {
      await this.servers.put(as.scsAsId, as);
    } catch (err) {
      throw new AeseError('UNAVAILABLE', 'cannot write the AS registry', { cause: err });
    }
  }

  async findByThumbprint(thumbprint: string): Promise<string | undefined> {
    return this.index.get(thumbprint);
  }

  async bindThumbprint(thumbprint: string, scsAsId: string): Promise<void> {
    // Decided inside the write: if another replica bound it in between, the write is retried
    // from the fresh value and refused here.
    await this.index.update(thumbprint, owner => {
      if (owner === scsAsId) return UNCHANGED;
      if (owner !== undefined) throw new AeseError('ALREADY_EXISTS', 'certificate is registered to another SCS/AS');
      return scsAsId;
    });
  }

  stop(): void {
    this.servers.stop();
    this.index.stop();
  }
}
