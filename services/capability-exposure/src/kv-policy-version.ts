import { Freshness } from '@aese/events';
import type { Logger } from '@aese/logger';
import { KV_BUCKETS } from '@aese/nats';
import type { KV, NatsConnection } from '@aese/nats';
import type { PolicyVersionSource } from './domain/decision-cache.js';

/** The authorization service's policy bucket and key (read here, never written). */
export const POLICY_BUCKET = KV_BUCKETS.policies;
export const POLICY_KEY = 'current';
/** Wait before binding or watching again after the bucket was missing or the watch ended. */
const REWATCH_MS = 1_000;

const decoder = new TextDecoder();

/** The `version` of a stored policy value; undefined for anything else (a delete, a bad value). */
function versionOf(operation: string, value: Uint8Array): number | undefined {
  if (operation !== 'PUT') return undefined;
  try {
    const v = (JSON.parse(decoder.decode(value)) as { version?: unknown } | null)?.version;
    return typeof v === 'number' && Number.isSafeInteger(v) && v >= 1 ? v : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Follows the policy version in force through a read-only watch of the authorization service's
 * KV key. Only the version number is taken: the value's signature is the authorization
 * service's business, and a forged or refused value here can only make the decision cache miss
 * (an entry is served only under the version the decision point itself answered with). Every
 * change is reported, so the cache is emptied on it. While NATS is unreachable beyond the
 * staleness bound, or before the first value was read, the version is unknown: no cache hits.
 */
export class KvPolicyVersion implements PolicyVersionSource {
  private version: number | undefined;
  private kv: KV | undefined;
  private stopWatch: (() => void) | undefined;
  private stopped = false;
  private readonly freshness: Freshness;

  private constructor(
    private readonly nc: NatsConnection,
    private readonly onChange: () => void,
    private readonly logger: Logger,
    stalenessBoundMs: number,
  ) {
    this.freshness = new Freshness(nc, [this], stalenessBoundMs);
    // Whether the version may be trusted changed: reported like a change of the version itself.
    this.freshness.onChange(() => this.onChange());
  }

  /** Starts following; resolves once the first value was read or the first attempt failed. */
  static async start(nc: NatsConnection, onChange: () => void, logger: Logger, stalenessBoundMs: number): Promise<KvPolicyVersion> {
    const source = new KvPolicyVersion(nc, onChange, logger, stalenessBoundMs);
    await source.watch();
    return source;
  }

  current(): number | undefined {
    return this.stopWatch !== undefined && this.freshness.isFresh() ? this.version : undefined;
  }

  /** Re-reads the key after a reconnect (called by {@link Freshness} before it trusts us again). */
  async resync(): Promise<void> {
    const kv = this.kv ?? (await this.bind());
    const entry = await kv.get(POLICY_KEY);
    this.take(entry ? versionOf(entry.operation, entry.value) : undefined);
  }

  stop(): void {
    this.stopped = true;
    this.stopWatch?.();
    this.stopWatch = undefined;
  }

  private async bind(): Promise<KV> {
    // Bind only: the bucket is the authorization service's; this service never creates it.
    this.kv = await this.nc.jetstream().views.kv(POLICY_BUCKET, { bindOnly: true });
    return this.kv;
  }

  private take(version: number | undefined): void {
    if (version === this.version) return;
    this.version = version;
    this.logger.info({ policyVersion: version ?? null }, 'policy version seen; decision cache emptied');
    this.onChange();
  }

  private async watch(): Promise<void> {
    if (this.stopped) return;
    try {
      const kv = this.kv ?? (await this.bind());
      let initialized!: () => void;
      const ready = new Promise<void>(resolve => (initialized = resolve));
      const iter = await kv.watch({ key: POLICY_KEY, initializedFn: () => initialized() });
      this.stopWatch = () => iter.stop();
      void (async () => {
        for await (const e of iter) {
          // Every revision empties the cache, even one with the same version number.
          this.onChange();
          this.take(versionOf(e.operation, e.value));
        }
      })()
        .catch((err: unknown) => this.logger.warn({ err }, 'policy version watch failed'))
        .finally(() => this.lost());
      await ready;
    } catch (err: unknown) {
      this.logger.warn({ err }, 'policy version watch unavailable; decisions are not cached until it is back');
      this.lost();
    }
  }

  private lost(): void {
    this.stopWatch = undefined;
    this.version = undefined;
    this.onChange();
    if (this.stopped) return;
    setTimeout(() => void this.watch(), REWATCH_MS).unref();
  }
}
