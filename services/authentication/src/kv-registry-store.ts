import { AeseError } from '@aese/errors';
import { KV_BUCKETS, kvGetJson, kvPutJson, kvValuesJson, openKv } from '@aese/nats';
import type { KV, NatsConnection } from '@aese/nats';
import type { ApplicationServer, ApplicationServerStore } from './domain/registry.js';

/** The AS registry in JetStream KV, with a thumbprint -> scsAsId index bucket. */
export class KvRegistryStore implements ApplicationServerStore {
  private constructor(
    private readonly servers: KV,
    private readonly index: KV,
  ) {}

  static async open(nc: NatsConnection): Promise<KvRegistryStore> {
    return new KvRegistryStore(
      await openKv(nc, KV_BUCKETS.applicationServers, { history: 5 }),
      await openKv(nc, KV_BUCKETS.certificateIndex),
    );
  }

  get(scsAsId: string): Promise<ApplicationServer | undefined> {
    return kvGetJson<ApplicationServer>(this.servers, scsAsId);
  }

  list(): Promise<ApplicationServer[]> {
    return kvValuesJson<ApplicationServer>(this.servers);
  }

  put(as: ApplicationServer): Promise<void> {
    return kvPutJson(this.servers, as.scsAsId, as);
  }

  async findByThumbprint(thumbprint: string): Promise<string | undefined> {
    return kvGetJson<string>(this.index, thumbprint);
  }

  async bindThumbprint(thumbprint: string, scsAsId: string): Promise<void> {
    const owner = await this.findByThumbprint(thumbprint);
    if (owner === scsAsId) return;
    if (owner !== undefined) throw new AeseError('ALREADY_EXISTS', 'certificate is registered to another SCS/AS');
    try {
      await this.index.create(thumbprint, new TextEncoder().encode(JSON.stringify(scsAsId)));
    } catch (err) {
      throw new AeseError('ALREADY_EXISTS', 'certificate is registered to another SCS/AS', { cause: err });
    }
  }
}
