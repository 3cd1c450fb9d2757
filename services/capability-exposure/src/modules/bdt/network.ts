import { bitrateOf } from './load-profile.js';
import type { LoadProfile, Span, Transfer } from './load-profile.js';

export type { Span, Transfer } from './load-profile.js';

/** How loaded the simulated network is in an hour of the day (UTC); background transfers get what is left. */
export type LoadLevel = 'low' | 'medium' | 'busy';

/** A transfer policy as the PCRF offers it: a time window, its charging and the bitrate it allows. */
export interface OfferedPolicy extends Span {
  readonly level: Exclude<LoadLevel, 'busy'>;
  readonly ratingGroup: number;
  /**
   * Aggregate bitrate (bit/s) the transfer may use: what it needs to move its volume evenly over
   * the window. Never the capacity left, which would tell one AS how much the others agreed.
   */
  readonly maxBitrate: number;
}

/** What an offer weighs the request against besides the committed load. */
export interface OfferOptions {
  /** The request's own agreement, among the committed transfers: left out of the load (a renegotiation, a warning's candidates). */
  readonly own?: Transfer;
  /** A window not to offer (the agreement a warning is about). */
  readonly avoid?: Span;
}

/**
 * The PCRF's background data transfer policy control (TS 29.154 Nt, TS 29.554 in 5GS), as the
 * SCEF uses it: offer time windows for a transfer, tell whether an agreement still fits, and tell
 * where the network's performance for the agreed transfers degrades. The committed load is passed
 * in (built from the SCEF's stored agreements, the same on every replica), so the capability keeps
 * no state of its own.
 */
export interface BdtPolicyControl {
  /** The policies the network offers for a transfer in its desired span, best first; none when nothing fits. */
  offer(request: Transfer, load: LoadProfile, nowMs: number, options?: OfferOptions): OfferedPolicy[];
  /** Whether the network still carries a transfer over what remains of its span, next to the load (`own` left out of it). */
  fits(transfer: Transfer, load: LoadProfile, nowMs: number, own?: Transfer): boolean;
  /** The spans within `within`, from now on, where the committed load degrades the network's performance past the operator's criterion. */
  degraded(load: LoadProfile, nowMs: number, within: Span): Span[];
}

export interface SimulatedPcrfOptions {
  /** Capacity left for background transfers (bit/s) by load level; nothing in busy hours. */
  readonly capacityBps?: Readonly<Record<Exclude<LoadLevel, 'busy'>, number>>;
  /** Rating group (charging) of a window by load level: off-peak is the cheaper one. */
  readonly ratingGroups?: Readonly<Record<Exclude<LoadLevel, 'busy'>, number>>;
  readonly maxOffers?: number;
  /** Share of the capacity above which the agreed transfers there are warned of: the operator's performance criterion. */
  readonly warningShare?: number;
}

export const DEFAULT_BDT_CAPACITY_BPS = { low: 2_000_000_000, medium: 400_000_000 } as const;
export const DEFAULT_BDT_RATING_GROUPS = { low: 101, medium: 102 } as const;
export const DEFAULT_BDT_MAX_OFFERS = 3;
export const DEFAULT_BDT_WARNING_SHARE = 0.8;

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;
/** Hours of the day (UTC) at which the load level changes, and the level from each on. */
const LOAD_PROFILE: readonly (readonly [number, LoadLevel])[] = [
  [1, 'low'],
  [6, 'medium'],
  [8, 'busy'],
  [22, 'medium'],
];

/** Load by hour of the day (UTC): busy 08:00-22:00, low 01:00-06:00, medium around them. */
export function loadLevelAt(ms: number): LoadLevel {
  const hour = new Date(ms).getUTCHours();
  return [...LOAD_PROFILE].reverse().find(([from]) => hour >= from)?.[1] ?? LOAD_PROFILE[LOAD_PROFILE.length - 1][1];
}

/** The first moment after `ms` at which the load level changes. */
function nextLevelChange(ms: number): number {
  const day = Math.floor(ms / DAY_MS) * DAY_MS;
  const next = LOAD_PROFILE.map(([hour]) => day + hour * HOUR_MS).find(at => at > ms);
  return next ?? day + DAY_MS + LOAD_PROFILE[0][0] * HOUR_MS;
}

/** A span cut where the load level changes: the runs of one level, in order (a few a day). */
export function levelRuns(span: Span): (Span & { readonly level: LoadLevel })[] {
  const out: (Span & { readonly level: LoadLevel })[] = [];
  for (let at = span.startMs; at < span.stopMs;) {
    const stopMs = Math.min(span.stopMs, nextLevelChange(at));
    out.push({ startMs: at, stopMs, level: loadLevelAt(at) });
    at = stopMs;
  }
  return out;
}

const overlaps = (a: Span, b: Span): boolean => a.startMs < b.stopMs && b.startMs < a.stopMs;

/**
 * A PCRF over a daily load profile: background transfers are offered the off-peak and shoulder
 * windows inside the desired span where the capacity left (after the transfers already agreed)
 * carries the whole volume at an even rate, off-peak first. A window is offered whole or not at
 * all, so its rating group is one price. Where the agreed transfers take more than the warning
 * share of a window's capacity, the network's performance for them is degraded. Deterministic:
 * the same agreements and time give the same answers.
 */
export class SimulatedPcrf implements BdtPolicyControl {
  private readonly capacityBps: Readonly<Record<LoadLevel, number>>;
  private readonly ratingGroups: Readonly<Record<Exclude<LoadLevel, 'busy'>, number>>;
  private readonly maxOffers: number;
  private readonly warningShare: number;

  constructor(options: SimulatedPcrfOptions = {}) {
    this.capacityBps = { ...(options.capacityBps ?? DEFAULT_BDT_CAPACITY_BPS), busy: 0 };
    this.ratingGroups = options.ratingGroups ?? DEFAULT_BDT_RATING_GROUPS;
    this.maxOffers = options.maxOffers ?? DEFAULT_BDT_MAX_OFFERS;
    this.warningShare = options.warningShare ?? DEFAULT_BDT_WARNING_SHARE;
  }

  /** Whether `bps` more fits under `limitBps` beside `usedBps`; a rounding error of the sums is no shortfall. */
  private static within(bps: number, usedBps: number, limitBps: number): boolean {
    return bps + usedBps <= limitBps * (1 + 1e-9);
  }

  offer(request: Transfer, load: LoadProfile, nowMs: number, options: OfferOptions = {}): OfferedPolicy[] {
    const span = { startMs: Math.max(request.startMs, nowMs), stopMs: request.stopMs };
    if (span.stopMs <= span.startMs || !(request.bits > 0)) return [];
    const offers: OfferedPolicy[] = [];
    for (const run of levelRuns(span)) {
      const level = run.level;
      if (level === 'busy' || (options.avoid && overlaps(run, options.avoid))) continue;
      const window = { startMs: run.startMs, stopMs: run.stopMs };
      const neededBps = bitrateOf({ ...window, bits: request.bits });
      if (SimulatedPcrf.within(neededBps, load.peakOver(window, options.own), this.capacityBps[level])) {
        offers.push({ ...window, level, ratingGroup: this.ratingGroups[level], maxBitrate: Math.ceil(neededBps) });
      }
    }
    const rank = (o: OfferedPolicy): number => (o.level === 'low' ? 0 : 1);
    return offers.sort((a, b) => rank(a) - rank(b) || a.startMs - b.startMs).slice(0, this.maxOffers);
  }

  fits(transfer: Transfer, load: LoadProfile, nowMs: number, own?: Transfer): boolean {
    const span = { startMs: Math.max(transfer.startMs, nowMs), stopMs: transfer.stopMs };
    if (span.stopMs <= span.startMs || !(transfer.bits > 0)) return false;
    const bps = bitrateOf(transfer);
    return levelRuns(span).every(run => SimulatedPcrf.within(bps, load.peakOver(run, own), this.capacityBps[run.level]));
  }

  degraded(load: LoadProfile, nowMs: number, within: Span): Span[] {
    const out: Span[] = [];
    for (const piece of load.busyPieces({ startMs: Math.max(nowMs, within.startMs), stopMs: within.stopMs })) {
      for (const run of levelRuns(piece)) {
        if (SimulatedPcrf.within(piece.bps, 0, this.capacityBps[run.level] * this.warningShare)) continue;
        const last = out.at(-1);
        if (last && last.stopMs === run.startMs) out[out.length - 1] = { startMs: last.startMs, stopMs: run.stopMs };
        else out.push({ startMs: run.startMs, stopMs: run.stopMs });
      }
    }
    return out;
  }
}
