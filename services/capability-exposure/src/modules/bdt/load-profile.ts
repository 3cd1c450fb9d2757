/** A time span in ms since the epoch: start inclusive, stop exclusive. */
export interface Span {
  readonly startMs: number;
  readonly stopMs: number;
}

/** What one BDT agreement moves in its span, all its UEs together, at an even rate. */
export interface Transfer extends Span {
  readonly bits: number;
}

/** A stretch of time in which the committed bitrate does not change. */
export interface LoadPiece extends Span {
  readonly bps: number;
}

/** Bit/s of a transfer moving its volume evenly over its span. */
export const bitrateOf = (t: Transfer): number => t.bits / ((t.stopMs - t.startMs) / 1000);

const counts = (t: Transfer): boolean => t.stopMs > t.startMs && t.bits > 0 && Number.isFinite(bitrateOf(t));

/**
 * The bitrate committed transfers use over time, as a step function: built once by a sweep over
 * their starts and stops sorted together (O(N log N)), then asked about any span in O(log N)
 * through a sparse table of maxima. Every question of one negotiation or one warning round is
 * answered from the same profile instead of filtering every agreement again.
 */
export class LoadProfile {
  /** Breakpoints, ascending: `bps[i]` holds from `times[i]` to `times[i + 1]` (none before the first, none after the last). */
  private readonly times: readonly number[];
  private readonly bps: readonly number[];
  /** `maxima[k][i]`: the largest of `bps[i .. i + 2^k - 1]`. */
  private readonly maxima: readonly Float64Array[];

  private constructor(times: number[], bps: number[]) {
    this.times = times;
    this.bps = bps;
    const levels: Float64Array[] = [Float64Array.from(bps)];
    for (let width = 2; width <= bps.length; width *= 2) {
      const below = levels[levels.length - 1];
      const level = new Float64Array(bps.length - width + 1);
      for (let i = 0; i < level.length; i++) level[i] = Math.max(below[i], below[i + width / 2]);
      levels.push(level);
    }
    this.maxima = levels;
  }

  static of(transfers: readonly Transfer[]): LoadProfile {
    const edges: { at: number; bps: number; active: number }[] = [];
    for (const t of transfers) {
      if (!counts(t)) continue;
      const bps = bitrateOf(t);
      edges.push({ at: t.startMs, bps, active: 1 }, { at: t.stopMs, bps: -bps, active: -1 });
    }
    edges.sort((a, b) => a.at - b.at);
    const times: number[] = [];
    const bps: number[] = [];
    let load = 0;
    let active = 0;
    for (let i = 0; i < edges.length;) {
      const at = edges[i].at;
      for (; i < edges.length && edges[i].at === at; i++) {
        load += edges[i].bps;
        active += edges[i].active;
      }
      // Sums of floats drift: where nothing runs, nothing is used.
      times.push(at);
      bps.push(active === 0 ? 0 : Math.max(0, load));
      if (active === 0) load = 0;
    }
    return new LoadProfile(times, bps);
  }

  /** Index of the last breakpoint at or before `ms` (before it, when `strictly`), -1 when there is none. */
  private indexAt(ms: number, strictly = false): number {
    let lo = 0;
    let hi = this.times.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.times[mid] < ms || (!strictly && this.times[mid] === ms)) lo = mid + 1;
      else hi = mid;
    }
    return lo - 1;
  }

  private rangeMax(first: number, last: number): number {
    const k = Math.floor(Math.log2(last - first + 1));
    return Math.max(this.maxima[k][first], this.maxima[k][last - (1 << k) + 1]);
  }

  /** The highest committed bitrate in [startMs, stopMs); 0 for an empty span. */
  private peak(startMs: number, stopMs: number): number {
    if (stopMs <= startMs) return 0;
    const last = this.indexAt(stopMs, true);
    if (last < 0) return 0;
    return Math.max(0, this.rangeMax(Math.max(0, this.indexAt(startMs)), last));
  }

  /**
   * The highest bitrate committed in a span, leaving out one of the committed transfers (the
   * agreement being weighed against all the others).
   */
  peakOver(span: Span, without?: Transfer): number {
    if (!without || !counts(without) || without.stopMs <= span.startMs || without.startMs >= span.stopMs) return this.peak(span.startMs, span.stopMs);
    const from = Math.max(span.startMs, without.startMs);
    const to = Math.min(span.stopMs, without.stopMs);
    return Math.max(this.peak(span.startMs, from), this.peak(from, to) - bitrateOf(without), this.peak(to, span.stopMs), 0);
  }

  /** The pieces with a committed bitrate above 0 that overlap a span, clipped to it, in order. */
  *busyPieces(span: Span): Generator<LoadPiece> {
    for (let i = Math.max(0, this.indexAt(span.startMs)); i < this.times.length - 1 && this.times[i] < span.stopMs; i++) {
      const piece = { startMs: Math.max(span.startMs, this.times[i]), stopMs: Math.min(span.stopMs, this.times[i + 1]), bps: this.bps[i] };
      if (piece.bps > 0 && piece.stopMs > piece.startMs) yield piece;
    }
  }
}
