import type { KV, NatsConnection } from 'nats';
import type { Logger } from '@aese/logger';
import { KV_BUCKETS, openKv } from '@aese/nats';

/** The one key of the owner bucket: who runs the simulated network now. */
const OWNER_KEY = 'simulated-network';

export interface NetworkOwnerLeaseOptions {
  readonly nc: NatsConnection;
  /** This replica, as the lease names it. */
  readonly replicaId: string;
  /**
   * How long a lease lasts without renewal (the bucket's TTL, set by whoever creates it). It is
   * renewed three times per period; a replica that dies is replaced within about one period.
   */
  readonly leaseMs: number;
  readonly logger: Logger;
  /** Told when this replica gains or loses the network. */
  readonly onChange?: (owner: boolean) => void;
  readonly now?: () => number;
}

/**
 * Exactly one replica runs the simulated network at a time: the one holding a key in a KV bucket
 * whose entries expire (the server's clock decides). The holder renews it with compare-and-set on
 * its revision; the others try to create it, which succeeds only once it was deleted (the holder
 * stopped) or expired (the holder died). A holder counts itself owner only until a third of a
 * lease before the server could expire its key, so two replicas never both believe they own it.
 */
export class NetworkOwnerLease {
  private revision: number | undefined;
  private ownedUntilMs = 0;
  private timer: NodeJS.Timeout | undefined;
  private renewing: Promise<void> = Promise.resolve();
  private stopped = false;
  private readonly now: () => number;

  private constructor(
    private readonly kv: KV,
    private readonly options: NetworkOwnerLeaseOptions,
  ) {
    this.now = options.now ?? Date.now;
  }

  /** Opens the bucket and makes a first attempt; renewals and takeovers then run on a timer. */
  static async open(options: NetworkOwnerLeaseOptions): Promise<NetworkOwnerLease> {
    const kv = await openKv(options.nc, KV_BUCKETS.networkOwner, { ttl: options.leaseMs });
    const lease = new NetworkOwnerLease(kv, options);
    await lease.attempt();
    lease.timer = setInterval(() => void lease.attempt(), Math.max(1, Math.floor(options.leaseMs / 3)));
    lease.timer.unref();
    return lease;
  }

  /** Whether this replica runs the network now. */
  owned(): boolean {
    return this.revision !== undefined && this.now() < this.ownedUntilMs;
  }

  /** One renewal (holder) or takeover attempt (others); attempts never overlap. */
  attempt(): Promise<void> {
    this.renewing = this.renewing.then(() => this.renewOrTake());
    return this.renewing;
  }

  private async renewOrTake(): Promise<void> {
    if (this.stopped) return;
    const was = this.owned();
    const started = this.now();
    const value = Buffer.from(this.options.replicaId, 'utf8');
    try {
      this.revision = this.revision === undefined ? await this.kv.create(OWNER_KEY, value) : await this.kv.update(OWNER_KEY, value, this.revision);
      this.ownedUntilMs = started + this.options.leaseMs - Math.floor(this.options.leaseMs / 3);
    } catch (err) {
      // Another replica holds it (or NATS is unreachable: then nobody may count on holding it).
      if (this.revision !== undefined) this.options.logger.warn({ err }, 'simulated network lease lost');
      this.revision = undefined;
      this.ownedUntilMs = 0;
    }
    const is = this.owned();
    if (is !== was) {
      this.options.logger.info(
        { replica: this.options.replicaId, owner: is },
        is ? 'this replica runs the simulated network' : 'this replica no longer runs the simulated network',
      );
      this.options.onChange?.(is);
    }
  }

  /** Stops renewing and hands the network over at once (deletes the key it holds). */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    await this.renewing;
    if (this.revision === undefined) return;
    const revision = this.revision;
    this.revision = undefined;
    await this.kv.delete(OWNER_KEY, { previousSeq: revision }).catch((err: unknown) => this.options.logger.warn({ err }, 'simulated network lease not handed over; it expires'));
  }
}
