/** How loaded the simulated network is in an hour of the day (UTC); background transfers get what is left. */
export type LoadLevel = 'low' | 'medium' | 'busy';

/** A time span in ms since the epoch: start inclusive, stop exclusive. */
export interface Span {
  readonly startMs: number;
  readonly stopMs: number;
}

/** What one BDT agreement moves in its span, all its UEs together. */
export interface Transfer extends Span {
  readonly bits: number;
}

/** A transfer policy as the PCRF offers it: a time window, its charging and the bitrate it allows. */
export interface OfferedPolicy extends Span {
  readonly level: Exclude<LoadLevel, 'busy'>;
  readonly ratingGroup: number;
  /** Aggregate bitrate (bit/s) the transfer may use: the capacity left in the window's fullest moment. */
  readonly maxBitrate: number;
}

/**
 * The PCRF's background data transfer policy control (TS 29.154 Nt, TS 29.554 in 5GS), as the
 * SCEF uses it: offer time windows for a transfer, and tell where the agreed transfers no longer
 * fit the network. Agreements are passed in (they are the SCEF's stored resources, the same on
 * every replica), so the capability keeps no state of its own.
 */
export interface BdtPolicyControl {
  /** The policies the network offers for a transfer in its desired span, best first; none when nothing fits. */
  offer(request: Transfer, committed: readonly Transfer[], nowMs: number): OfferedPolicy[];
  /** The spans, from now on, where the committed transfers need more than the network can carry. */
  congested(committed: readonly Transfer[], nowMs: number): Span[];
}

export interface SimulatedPcrfOptions {
  /** Capacity left for background transfers (bit/s) by load level; nothing in busy hours. */
  readonly capacityBps?: Readonly<Record<Exclude<LoadLevel, 'busy'>, number>>;
  /** Rating group (charging) of a window by load level: off-peak is the cheaper one. */
  readonly ratingGroups?: Readonly<Record<Exclude<LoadLevel, 'busy'>, number>>;
  readonly maxOffers?: number;
}

export const DEFAULT_BDT_CAPACITY_BPS = { low: 2_000_000_000, medium: 400_000_000 } as const;
export const DEFAULT_BDT_RATING_GROUPS = { low: 101, medium: 102 } as const;
export const DEFAULT_BDT_MAX_OFFERS = 3;

const HOUR_MS = 3_600_000;

/** Load by hour of the day (UTC): busy 08:00-22:00, low 01:00-06:00, medium around them. */
export function loadLevelAt(ms: number): LoadLevel {
  const hour = new Date(ms).getUTCHours();
  if (hour >= 8 && hour < 22) return 'busy';
  return hour >= 1 && hour < 6 ? 'low' : 'medium';
}

/** A piece of time in which the load level and the committed transfers do not change. */
interface Piece extends Span {
  readonly level: LoadLevel;
  /** Bitrate the committed transfers use in it. */
  readonly committedBps: number;
}

const bitrateOf = (t: Transfer): number => t.bits / ((t.stopMs - t.startMs) / 1000);

/** A span cut at every hour boundary and at every start and stop of a committed transfer. */
function pieces(span: Span, committed: readonly Transfer[]): Piece[] {
  const cuts = new Set<number>([span.startMs, span.stopMs]);
  for (let h = Math.ceil(span.startMs / HOUR_MS) * HOUR_MS; h < span.stopMs; h += HOUR_MS) cuts.add(h);
  for (const t of committed) for (const at of [t.startMs, t.stopMs]) if (at > span.startMs && at < span.stopMs) cuts.add(at);
  const sorted = [...cuts].sort((a, b) => a - b);
  const out: Piece[] = [];
  for (let i = 0; i + 1 < sorted.length; i++) {
    const [startMs, stopMs] = [sorted[i], sorted[i + 1]];
    const committedBps = committed.filter(t => t.startMs <= startMs && t.stopMs >= stopMs).reduce((sum, t) => sum + bitrateOf(t), 0);
    out.push({ startMs, stopMs, level: loadLevelAt(startMs), committedBps });
  }
  return out;
}

/**
 * A PCRF over a daily load profile: background transfers are offered the off-peak and shoulder
 * windows inside the desired span where the capacity left (after the transfers already agreed)
 * carries the whole volume at an even rate, off-peak first. A window is offered whole or not at
 * all, so its rating group is one price. Deterministic: the same agreements and time give the
 * same offers.
 */
export class SimulatedPcrf implements BdtPolicyControl {
  private readonly capacityBps: Readonly<Record<LoadLevel, number>>;
  private readonly ratingGroups: Readonly<Record<Exclude<LoadLevel, 'busy'>, number>>;
  private readonly maxOffers: number;

  constructor(options: SimulatedPcrfOptions = {}) {
    this.capacityBps = { ...(options.capacityBps ?? DEFAULT_BDT_CAPACITY_BPS), busy: 0 };
    this.ratingGroups = options.ratingGroups ?? DEFAULT_BDT_RATING_GROUPS;
    this.maxOffers = options.maxOffers ?? DEFAULT_BDT_MAX_OFFERS;
  }

  offer(request: Transfer, committed: readonly Transfer[], nowMs: number): OfferedPolicy[] {
    const span = { startMs: Math.max(request.startMs, nowMs), stopMs: request.stopMs };
    if (span.stopMs <= span.startMs || request.bits <= 0) return [];
    // Runs of one load level: the candidate windows.
    const runs: Piece[][] = [];
    for (const p of pieces(span, committed)) {
      const run = runs.at(-1);
      if (run && run[0].level === p.level) run.push(p);
      else runs.push([p]);
    }
    const offers: OfferedPolicy[] = [];
    for (const run of runs) {
      const level = run[0].level;
      if (level === 'busy') continue;
      const window = { startMs: run[0].startMs, stopMs: run[run.length - 1].stopMs };
      const neededBps = bitrateOf({ ...window, bits: request.bits });
      const freeBps = Math.min(...run.map(p => this.capacityBps[level] - p.committedBps));
      if (neededBps <= freeBps) offers.push({ ...window, level, ratingGroup: this.ratingGroups[level], maxBitrate: Math.floor(freeBps) });
    }
    const rank = (o: OfferedPolicy): number => (o.level === 'low' ? 0 : 1);
    return offers.sort((a, b) => rank(a) - rank(b) || a.startMs - b.startMs).slice(0, this.maxOffers);
  }

  congested(committed: readonly Transfer[], nowMs: number): Span[] {
    const live = committed.filter(t => t.stopMs > nowMs && t.stopMs > t.startMs);
    if (live.length === 0) return [];
    const span = { startMs: Math.max(nowMs, Math.min(...live.map(t => t.startMs))), stopMs: Math.max(...live.map(t => t.stopMs)) };
    const out: Span[] = [];
    for (const p of pieces(span, live)) {
      // A rounding error is no congestion.
      if (p.committedBps <= this.capacityBps[p.level] * (1 + 1e-9)) continue;
      const last = out.at(-1);
      if (last && last.stopMs === p.startMs) out[out.length - 1] = { startMs: last.startMs, stopMs: p.stopMs };
      else out.push({ startMs: p.startMs, stopMs: p.stopMs });
    }
    return out;
  }
}
