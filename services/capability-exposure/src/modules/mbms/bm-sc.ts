import { randomInt } from 'node:crypto';
import type { NetworkAdapter, Plmn } from '../../network/network-adapter.js';

/** The PLMN of the simulated BM-SC's TMGIs: the test network of TS 23.003 (MCC 001, MNC 01). */
export const BM_SC_PLMN: Plmn = { mcc: '001', mnc: '01' };
/** How long an allocated (or renewed) TMGI lasts. */
export const TMGI_ALLOCATION_MS = 60 * 60 * 1000;
/** From a delivery request (or its start time) to the broadcast: the MBMS session start. */
export const MBMS_SESSION_START_MS = 200;
/** The furthest ahead a broadcast may be scheduled (and within what one timer can wait). */
export const MAX_SCHEDULE_AHEAD_MS = 7 * 24 * 60 * 60 * 1000;
/** A broadcast that failed for want of the store or the network is tried again this much later, a few times. */
const RETRY_MS = 1000;
const MAX_TRIES = 3;
/** MBMS Service IDs are 24 bits (TS 23.003 clause 15.2). */
const SERVICE_ID_SPACE = 0x1000000;
/** Random draws for a free TMGI before the BM-SC gives up: a full (or nearly full) range is refused, not searched forever. */
export const MAX_TMGI_DRAWS = 64;

export interface BmScOptions {
  readonly plmn?: Plmn;
  readonly tmgiAllocationMs?: number;
  readonly sessionStartMs?: number;
  /** The MBMS Service IDs this BM-SC allocates from (operators give each BM-SC a range); all of them unless told. */
  readonly serviceIds?: { readonly first: number; readonly count: number };
}

/**
 * A TMGI (TS 23.003 clause 15.2) as a string of 12 lowercase hex digits: the MBMS Service ID (6),
 * then MCC and MNC, a 2-digit MNC padded with "f" as in the TMGI's BCD encoding.
 */
export function tmgiString(serviceId: number, plmn: Plmn): string {
  return `${serviceId.toString(16).padStart(6, '0')}${plmn.mcc}${plmn.mnc.padEnd(3, 'f')}`;
}

export const TMGI_PATTERN = /^[0-9a-f]{6}[0-9]{3}[0-9]{2}[0-9f]$/;

/**
 * The broadcast multicast service centre of the simulated network: it allocates TMGIs with an
 * expiry (an expired TMGI is free again), and broadcasts group messages at their time. A broadcast is delivered when its window
 * is still open (TMGI not expired, stop time not passed) and at least one member of the external
 * group is reachable; nobody reachable, an expired window or an unknown group is a failed one.
 * Timers are this replica's; the caller makes a broadcast happen once (see deliveries.ts).
 */
export class SimulatedBmSc {
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly plmn: Plmn;
  private readonly allocationMs: number;
  private readonly sessionStartMs: number;
  private readonly serviceIds: { readonly first: number; readonly count: number };

  constructor(
    private readonly network: NetworkAdapter,
    private readonly now: () => number,
    options: BmScOptions = {},
  ) {
    this.plmn = options.plmn ?? BM_SC_PLMN;
    this.allocationMs = options.tmgiAllocationMs ?? TMGI_ALLOCATION_MS;
    this.sessionStartMs = options.sessionStartMs ?? MBMS_SESSION_START_MS;
    this.serviceIds = options.serviceIds ?? { first: 0, count: SERVICE_ID_SPACE };
    const { first, count } = this.serviceIds;
    if (!Number.isSafeInteger(first) || !Number.isSafeInteger(count) || first < 0 || count < 1 || first + count > SERVICE_ID_SPACE) {
      throw new RangeError('serviceIds must be a non-empty range of 24-bit MBMS Service IDs');
    }
  }

  /**
   * A TMGI no allocation holds: a random MBMS Service ID of this BM-SC's range and PLMN, or
   * undefined when {@link MAX_TMGI_DRAWS} draws found none free (the range is full, or nearly).
   */
  allocateTmgi(inUse: (tmgi: string) => boolean): string | undefined {
    const { first, count } = this.serviceIds;
    for (let draw = 0; draw < MAX_TMGI_DRAWS; draw++) {
      const tmgi = tmgiString(first + randomInt(0, count), this.plmn);
      if (!inUse(tmgi)) return tmgi;
    }
    return undefined;
  }

  /** When a TMGI allocated or renewed now expires. */
  tmgiExpiry(): number {
    return this.now() + this.allocationMs;
  }

  /** When a broadcast asked for now, to start at `startMs` (or at once), goes out. */
  broadcastTime(startMs: number | undefined): number {
    return Math.max(this.now() + this.sessionStartMs, startMs ?? 0);
  }

  /** Broadcasts to a group now; true when it reached someone. */
  async broadcast(externalGroupId: string, notAfterMs: number | undefined): Promise<boolean> {
    if (notAfterMs !== undefined && this.now() > notAfterMs) return false;
    const members = (await this.network.groupMembers(externalGroupId)) ?? [];
    for (const ue of members) if ((await this.network.reachability(ue)).reachable) return true;
    return false;
  }

  /** Runs `run` at `atMs` (replacing what `key` had scheduled), again a few times while it fails. */
  schedule(key: string, atMs: number, run: () => Promise<void>, tries = MAX_TRIES): void {
    this.cancel(key);
    const timer = setTimeout(
      () => {
        this.timers.delete(key);
        run().catch(() => {
          if (tries > 1) this.schedule(key, this.now() + RETRY_MS, run, tries - 1);
        });
      },
      Math.max(0, atMs - this.now()),
    );
    timer.unref();
    this.timers.set(key, timer);
  }

  cancel(key: string): void {
    clearTimeout(this.timers.get(key));
    this.timers.delete(key);
  }

  stop(): void {
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
  }
}
