import { KvMirror } from '@aese/nats';
import type { KV } from '@aese/nats';
import { signedBytes } from './signing.js';
import type { EventSigner, EventVerifier } from './signing.js';

/** A KV value signed by the service that owns the bucket, with a per-key version. */
export interface SignedRecord {
  /** The value as the exact JSON text that was signed. */
  readonly payloadJson: string;
  readonly version: number;
  readonly kid: string;
  readonly signature: string;
}

/**
 * A KV bucket whose values are signed records: writes sign `version + 1`; the in-memory copy
 * takes a value only with a valid signature and a higher version than the one it holds, so a
 * forged write or a rolled-back value changes nothing and is reported.
 */
export class SignedKvMirror<T> {
  private readonly mirror: KvMirror<SignedRecord>;

  /**
   * @param bucket the bucket's name; signatures cover it, so a value cannot be moved between buckets.
   */
  constructor(
    kv: KV,
    private readonly bucket: string,
    private readonly signer: EventSigner,
    private readonly verifier: EventVerifier,
    private readonly onRejected: (key: string, reason: 'BAD_SIGNATURE' | 'STALE_VERSION') => void,
  ) {
    this.mirror = new KvMirror<SignedRecord>(kv, async (key, value, previous) => {
      const ok = await this.verifier
        .verify(value.kid, this.bytes(key, value.version, value.payloadJson), Buffer.from(value.signature, 'base64url'))
        .catch(() => false);
      if (!ok) {
        this.onRejected(key, 'BAD_SIGNATURE');
        return false;
      }
      if (previous && value.version <= previous.version) {
        // Our own write comes back on the watch with the same version: not a rollback.
        if (value.version === previous.version && value.signature === previous.signature) return true;
        this.onRejected(key, 'STALE_VERSION');
        return false;
      }
      return true;
    });
  }

  start(): Promise<void> {
    return this.mirror.start();
  }

  stop(): void {
    this.mirror.stop();
  }

  get(key: string): T | undefined {
    const r = this.mirror.get(key);
    return r ? (JSON.parse(r.payloadJson) as T) : undefined;
  }

  values(): T[] {
    return this.mirror.entries().map(([, r]) => JSON.parse(r.payloadJson) as T);
  }

  /** Signs and writes the next version of a key. */
  async put(key: string, value: T): Promise<void> {
    const version = (this.mirror.get(key)?.version ?? 0) + 1;
    const payloadJson = JSON.stringify(value);
    const { kid, signature } = await this.signer.sign(this.bytes(key, version, payloadJson));
    await this.mirror.put(key, { payloadJson, version, kid, signature: Buffer.from(signature).toString('base64url') });
  }

  private bytes(key: string, version: number, payloadJson: string): Uint8Array {
    return signedBytes(`kv.${this.bucket}`, key, version, Buffer.from(payloadJson, 'utf8'));
  }
}
