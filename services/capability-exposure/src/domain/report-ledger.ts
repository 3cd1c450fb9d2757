import type { ResourceStore, StoredResource } from './resource-store.js';

/**
 * How long a report stays reserved without an outcome: a notification can be delivered until
 * the edge refuses it as expired (24 h after it was requested, `NOTIFICATIONS_MAX_AGE_MS` in
 * libs/events), plus an hour for its outcome to arrive.
 */
export const DEFAULT_RESERVATION_LIFETIME_MS = 25 * 3600 * 1000;

/** State members the ledger keeps beside a module's own (module state is a flat object). */
const SENT = 'reportsSent';
const RESERVED = 'reportsReserved';

/** What a delivery outcome did to the subscription's count. */
export type Settlement = 'counted' | 'released' | 'unknown';

export interface ReportLedgerDeps {
  readonly store: ResourceStore;
  /** The resource's report limit (its module's `reportLimit`); undefined: not counted. */
  readonly limitOf: (record: StoredResource) => number | undefined;
  readonly now: () => number;
  readonly reservationLifetimeMs?: number;
}

type Reserved = Readonly<Record<string, number>>;

function sentOf(record: StoredResource): number {
  const n = record.state[SENT];
  return typeof n === 'number' ? n : 0;
}

function reservedOf(record: StoredResource): Reserved {
  const r = record.state[RESERVED];
  return typeof r === 'object' && r !== null && !Array.isArray(r) ? (r as Reserved) : {};
}

/**
 * Counts reports toward a subscription's maximumNumberOfReports only once they were delivered.
 * Before a notification is published its report is reserved (sent + reserved never exceeds the
 * limit, so the limit is never exceeded); the edge's signed outcome then counts it (delivered;
 * the subscription ends at the limit) or frees it (dropped: another report may take its place).
 *
 * A lost outcome must not let the limit be exceeded: a reservation older than the lifetime, by
 * which the notification can no longer be delivered, is counted as sent. The AS may then get
 * fewer reports than asked, never more.
 */
export class ReportLedger {
  private readonly lifetimeMs: number;

  constructor(private readonly deps: ReportLedgerDeps) {
    this.lifetimeMs = deps.reservationLifetimeMs ?? DEFAULT_RESERVATION_LIFETIME_MS;
  }

  /** True when the resource's reports are counted (it has a limit). */
  counts(record: StoredResource): boolean {
    return this.deps.limitOf(record) !== undefined;
  }

  /**
   * Reserves a report for a notification about to be published. False when the subscription is
   * gone or every report left is sent or in flight: then nothing may be published.
   */
  async reserve(record: StoredResource, notificationId: string): Promise<boolean> {
    let reserved = false;
    await this.deps.store.update(record.api, record.scsAsId, record.id, current => {
      reserved = false;
      if (!current) return undefined;
      const limit = this.deps.limitOf(current);
      if (limit === undefined) return undefined;
      const { sent, inFlight } = this.expire(current);
      if (sent >= limit) return null;
      if (sent + Object.keys(inFlight).length >= limit) return undefined;
      reserved = true;
      return this.with(current, sent, { ...inFlight, [notificationId]: this.deps.now() });
    });
    return reserved;
  }

  /** The edge's outcome for a notification: counts or frees its reservation; unknown ids change nothing. */
  async settle(api: string, scsAsId: string, subscriptionId: string, notificationId: string, delivered: boolean): Promise<Settlement> {
    let result: Settlement = 'unknown';
    await this.deps.store.update(api, scsAsId, subscriptionId, current => {
      result = 'unknown';
      if (!current || !Object.prototype.hasOwnProperty.call(reservedOf(current), notificationId)) return undefined;
      const { [notificationId]: _settled, ...rest } = reservedOf(current);
      const sent = sentOf(current) + (delivered ? 1 : 0);
      result = delivered ? 'counted' : 'released';
      const limit = this.deps.limitOf(current);
      if (limit !== undefined && sent >= limit) return null;
      return this.with(current, sent, rest);
    });
    return result;
  }

  /** Frees a reservation whose notification was never published. */
  async release(record: StoredResource, notificationId: string): Promise<void> {
    await this.settle(record.api, record.scsAsId, record.id, notificationId, false);
  }

  /** Reservations past their lifetime count as sent (their outcome was lost). */
  private expire(record: StoredResource): { sent: number; inFlight: Reserved } {
    const cutoff = this.deps.now() - this.lifetimeMs;
    let sent = sentOf(record);
    const inFlight: Record<string, number> = {};
    for (const [id, at] of Object.entries(reservedOf(record))) {
      if (at <= cutoff) sent++;
      else inFlight[id] = at;
    }
    return { sent, inFlight };
  }

  private with(record: StoredResource, sent: number, inFlight: Reserved): StoredResource {
    return { ...record, state: { ...record.state, [SENT]: sent, [RESERVED]: inFlight } };
  }
}
