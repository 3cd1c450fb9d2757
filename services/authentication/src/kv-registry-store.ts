import { AeseError } from '@aese/errors';
import { SignedKvMirror } from '@aese/events';
import type { EventSigner, EventVerifier } from '@aese/events';
import { KV_BUCKETS, KvMirror, openKv } from '@aese/nats';
import type { NatsConnection } from '@aese/nats';
import type { ApplicationServer, ApplicationServerStore } from './domain/registry.js';

/**
 * The AS registry in JetStream KV, with a thumbprint -> scsAsId index bucket. Both are mirrored
 * in memory, so lookups on the request path cost no round trip and survive a NATS outage.
 * Registry entries are signed and versioned: a forged or rolled-back entry written straight to
 * KV is ignored. (The index needs no signature: a certificate is only accepted for an AS whose
 * signed entry lists its thumbprint and whose SPIFFE ID the certificate carries.)
 */
export class KvRegistryStore implements ApplicationServerStore {
  private constructor(
    private readonly servers: SignedKvMirror<ApplicationServer>,
    private readonly index: KvMirror<string>,
  ) {}

  static async open(
    nc: NatsConnection,
    signing: { signer: EventSigner; verifier: EventVerifier; onRejected: (key: string, reason: string) => void },
  ): Promise<KvRegistryStore> {
    const servers = new SignedKvMirror<ApplicationServer>(
      await openKv(nc, KV_BUCKETS.applicationServers, { history: 5 }),
      KV_BUCKETS.applicationServers,
      signing.signer,
      signing.verifier,
      signing.onRejected,
    );
    const index = new KvMirror<string>(await openKv(nc, KV_BUCKETS.certificateIndex));
    await Promise.all([servers.start(), index.start()]);
    return new KvRegistryStore(servers, index);
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
    const owner = this.index.get(thumbprint);
    if (owner === scsAsId) return;
    if (owner !== undefined) throw new AeseError('ALREADY_EXISTS', 'certificate is registered to another SCS/AS');
    try {
      // create() fails if another replica bound it in between: the KV decides, not the mirror.
      await this.index.kv.create(thumbprint, new TextEncoder().encode(JSON.stringify(scsAsId)));
    } catch (err) {
      throw new AeseError('ALREADY_EXISTS', 'certificate is registered to another SCS/AS', { cause: err });
    }
  }

  stop(): void {
    this.servers.stop();
    this.index.stop();
  }
}
