/** How long a connection's resolved identity is reused before the registry is asked again. */
export const DEFAULT_IDENTITY_TTL_MS = 60_000;

interface Entry<T> {
  readonly found: Promise<T>;
  /** Set once `found` resolves: later requests on the connection get it without a promise. */
  value?: T;
  readonly atMs: number;
  readonly epoch: number;
}

/**
 * The SCS/AS behind each TLS connection, resolved once per connection (a client certificate
 * cannot change within a TLS 1.3 connection) and reused for its requests, for at most a TTL.
 * Connections are weak keys: a closed connection's entry goes with it.
 *
 * {@link invalidateAll} makes every connection resolve again on its next request; the edge calls
 * it when an AS or a certificate is revoked or an AS registration changes.
 */
export class ConnectionIdentities<T> {
  private readonly entries = new WeakMap<object, Entry<T>>();
  private epoch = 0;
  private readonly ttlMs: number;
  private readonly now: () => number;

  constructor(
    private readonly resolve: (certificateDer: Uint8Array) => Promise<T>,
    options: { ttlMs?: number; now?: () => number } = {},
  ) {
    this.ttlMs = options.ttlMs ?? DEFAULT_IDENTITY_TTL_MS;
    this.now = options.now ?? Date.now;
  }

  /**
   * The identity of a connection: at once when it is known, else a promise. A failure is not
   * remembered (the next request asks again).
   */
  get(connection: object, certificateDer: Uint8Array): T | Promise<T> {
    const now = this.now();
    const hit = this.entries.get(connection);
    if (hit && hit.epoch === this.epoch && now - hit.atMs < this.ttlMs) return hit.value ?? hit.found;
    const entry: Entry<T> = { found: this.resolve(certificateDer), atMs: now, epoch: this.epoch };
    this.entries.set(connection, entry);
    entry.found.then(
      value => {
        entry.value = value;
      },
      () => {
        if (this.entries.get(connection) === entry) this.entries.delete(connection);
      },
    );
    return entry.found;
  }

  /** Every connection resolves its identity again on its next request. */
  invalidateAll(): void {
    this.epoch++;
  }
}
