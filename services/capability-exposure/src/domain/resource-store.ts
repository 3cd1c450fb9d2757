import { AeseError } from '@aese/errors';

/**
 * A T8 resource (a subscription) as stored: the T8 body the AS sees, plus what the SCEF keeps
 * beside it. Stored per API and scsAsId, so one AS's resources are never looked up under
 * another's key.
 */
export interface StoredResource {
  readonly api: string;
  readonly scsAsId: string;
  /** Random UUID: ids leak neither counts nor order. */
  readonly id: string;
  /** The T8 resource body (with `self`), as returned to the AS. */
  readonly resource: Record<string, unknown>;
  /** Authorization targets and data categories the resource touches. */
  readonly targets: readonly string[];
  readonly dataCategories: readonly string[];
  readonly createdAtMs: number;
  readonly updatedAtMs: number;
  /** Module-private state (reports sent, network session id, ...). No IMSI ever goes here. */
  readonly state: Readonly<Record<string, unknown>>;
}

/** A resource just created: what it reaches, created and updated now, with its module's state. */
export function newStoredResource(
  api: string,
  scsAsId: string,
  id: string,
  resource: Record<string, unknown>,
  reach: { readonly targets: readonly string[]; readonly dataCategories: readonly string[] },
  state: object,
  nowMs: number,
): StoredResource {
  return { api, scsAsId, id, resource, targets: reach.targets, dataCategories: reach.dataCategories, createdAtMs: nowMs, updatedAtMs: nowMs, state: { ...state } };
}

/**
 * Thrown by a store that cannot vouch for its copy of the resources now (NATS unreachable for
 * longer than the staleness bound, or not caught up since): the request is refused, never
 * answered or decided on data another replica may have changed meanwhile.
 */
export class ResourcesUnavailable extends AeseError {
  override readonly name = 'ResourcesUnavailable';
  constructor(message: string) {
    super('UNAVAILABLE', message);
  }
}

/** Where resources live; JetStream KV in the service, memory in unit tests. Every method may throw {@link ResourcesUnavailable}. */
export interface ResourceStore {
  get(api: string, scsAsId: string, id: string): Promise<StoredResource | undefined>;
  put(record: StoredResource): Promise<void>;
  delete(api: string, scsAsId: string, id: string): Promise<void>;
  /**
   * Reads, decides and writes one resource as one step, serialised with every other writer:
   * `next` sees the current record and returns the new one, null to delete it, or undefined to
   * leave it as it is. It may run more than once (a concurrent write came first).
   */
  update(api: string, scsAsId: string, id: string, next: (current: StoredResource | undefined) => StoredResource | null | undefined): Promise<void>;
  /** The resources of one AS in one API. */
  list(api: string, scsAsId: string): Promise<StoredResource[]>;
  /** Every resource of one API (notification matching), from a cache kept current; throws {@link ResourcesUnavailable} while it cannot be vouched for. */
  all(api: string): readonly StoredResource[];
}

/** An in-memory {@link ResourceStore}. */
export class MemoryResourceStore implements ResourceStore {
  private readonly items = new Map<string, StoredResource>();
  private key(api: string, scsAsId: string, id: string): string {
    return `${api}\u0000${scsAsId}\u0000${id}`;
  }
  async get(api: string, scsAsId: string, id: string): Promise<StoredResource | undefined> {
    return this.items.get(this.key(api, scsAsId, id));
  }
  async put(record: StoredResource): Promise<void> {
    this.items.set(this.key(record.api, record.scsAsId, record.id), record);
  }
  async delete(api: string, scsAsId: string, id: string): Promise<void> {
    this.items.delete(this.key(api, scsAsId, id));
  }
  async update(api: string, scsAsId: string, id: string, next: (current: StoredResource | undefined) => StoredResource | null | undefined): Promise<void> {
    const out = next(this.items.get(this.key(api, scsAsId, id)));
    if (out === null) this.items.delete(this.key(api, scsAsId, id));
    else if (out !== undefined) this.items.set(this.key(api, scsAsId, id), out);
  }
  async list(api: string, scsAsId: string): Promise<StoredResource[]> {
    return [...this.items.values()].filter(r => r.api === api && r.scsAsId === scsAsId);
  }
  all(api: string): readonly StoredResource[] {
    return [...this.items.values()].filter(r => r.api === api);
  }
}
