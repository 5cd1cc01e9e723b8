// Trend statistics robust to the saw-teeth of garbage collection: a series is cut into time
// buckets, each bucket keeps its minimum (what survives collection) or median, and the trend of
// those is judged with a Theil–Sen slope (median of pairwise slopes, indifferent to outliers)
// and a Mann–Kendall test (does the series rise more often than chance would say?).

export interface Point {
  t: number;
  v: number;
}

/** Points of a series that are known (drops nulls and non-finite values), in time order. */
export function known<T>(items: readonly T[], time: (x: T) => number, value: (x: T) => number | null | undefined): Point[] {
  const out: Point[] = [];
  for (const x of items) {
    const v = value(x);
    const t = time(x);
    if (typeof v === 'number' && Number.isFinite(v) && Number.isFinite(t)) out.push({ t, v });
  }
  return out.sort((a, b) => a.t - b.t);
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export function mean(values: readonly number[]): number {
  return values.length ? values.reduce((a, b) => a + b, 0) / values.length : NaN;
}

export type BucketStat = 'min' | 'median' | 'max';

/**
 * Cuts the time span into `count` equal buckets and keeps one point per non-empty bucket:
 * the minimum, median or maximum value, at the bucket's median time (whole milliseconds).
 */
export function buckets(points: readonly Point[], count: number, stat: BucketStat): Point[] {
  if (points.length === 0 || count < 1) return [];
  const start = points[0].t;
  const span = points[points.length - 1].t - start;
  if (span <= 0) return [{ t: start, v: pick(points.map((p) => p.v), stat) }];
  const groups: Point[][] = Array.from({ length: count }, () => []);
  for (const p of points) groups[Math.min(count - 1, Math.floor(((p.t - start) / span) * count))].push(p);
  return groups.filter((g) => g.length > 0).map((g) => ({ t: Math.round(median(g.map((p) => p.t))), v: pick(g.map((p) => p.v), stat) }));
}

function pick(values: number[], stat: BucketStat): number {
  if (stat === 'min') return Math.min(...values);
  if (stat === 'max') return Math.max(...values);
  return median(values);
}

/** Theil–Sen slope: the median of the slopes between every pair of points (value per ms). */
export function theilSen(points: readonly Point[]): number {
  const slopes: number[] = [];
  for (let i = 0; i < points.length; i++) {
    for (let j = i + 1; j < points.length; j++) {
      const dt = points[j].t - points[i].t;
      if (dt > 0) slopes.push((points[j].v - points[i].v) / dt);
    }
  }
  return slopes.length ? median(slopes) : NaN;
}

/** Standard normal upper tail, P(Z > z) (Abramowitz–Stegun 7.1.26, error below 1.5e-7). */
export function normalUpperTail(z: number): number {
  const x = Math.abs(z) / Math.SQRT2;
  const t = 1 / (1 + 0.3275911 * x);
  const erfc = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429)))) * Math.exp(-x * x);
  return z >= 0 ? erfc / 2 : 1 - erfc / 2;
}

export interface MannKendall {
  /** Concordant minus discordant pairs. */
  s: number;
  z: number;
  /** One-sided p-values: that the series rises / falls no more than chance would. */
  pRising: number;
  pFalling: number;
}

/** The Mann–Kendall trend test with the tie correction, normal approximation with continuity correction. */
export function mannKendall(values: readonly number[]): MannKendall {
  const n = values.length;
  let s = 0;
  for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) s += Math.sign(values[j] - values[i]);
  const ties = new Map<number, number>();
  for (const v of values) ties.set(v, (ties.get(v) ?? 0) + 1);
  let tie = 0;
  for (const c of ties.values()) if (c > 1) tie += c * (c - 1) * (2 * c + 5);
  const variance = (n * (n - 1) * (2 * n + 5) - tie) / 18;
  const z = variance > 0 ? (s > 0 ? (s - 1) / Math.sqrt(variance) : s < 0 ? (s + 1) / Math.sqrt(variance) : 0) : 0;
  return { s, z, pRising: normalUpperTail(z), pFalling: normalUpperTail(-z) };
}

/** Spearman rank correlation of two equally long series (−1..1), NaN when undefined. */
export function spearman(a: readonly number[], b: readonly number[]): number {
  if (a.length !== b.length || a.length < 3) return NaN;
  const ra = ranks(a);
  const rb = ranks(b);
  const ma = mean(ra);
  const mb = mean(rb);
  let num = 0;
  let da = 0;
  let db = 0;
  for (let i = 0; i < ra.length; i++) {
    num += (ra[i] - ma) * (rb[i] - mb);
    da += (ra[i] - ma) ** 2;
    db += (rb[i] - mb) ** 2;
  }
  return da > 0 && db > 0 ? num / Math.sqrt(da * db) : NaN;
}

function ranks(values: readonly number[]): number[] {
  const order = values.map((v, i) => ({ v, i })).sort((x, y) => x.v - y.v);
  const r = new Array<number>(values.length);
  for (let k = 0; k < order.length; ) {
    let e = k;
    while (e + 1 < order.length && order[e + 1].v === order[k].v) e++;
    for (let m = k; m <= e; m++) r[order[m].i] = (k + e) / 2 + 1;
    k = e + 1;
  }
  return r;
}

/** Default number of buckets a window is cut into (enough for Mann–Kendall to reach p < 0.001 on 8 rising points). */
export const TREND_BUCKETS = 8;

export interface Trend {
  /** Bucket minima (or medians) the trend was judged on. */
  points: Point[];
  /** Theil–Sen slope of the bucket points, value per millisecond. */
  slope: number;
  /** slope × the window's span: how much the part rose over the window at that slope. */
  rise: number;
  /** First, highest and last bucket value. */
  start: number;
  peak: number;
  peakTime: number;
  end: number;
  /** Mann–Kendall one-sided p-values on the bucket points. */
  pRising: number;
  pFalling: number;
  spanMs: number;
}

/** The trend of a series, or null when it has fewer than 3 buckets with data. */
export function trend(points: readonly Point[], stat: BucketStat = 'min', count = TREND_BUCKETS): Trend | null {
  const b = buckets(points, count, stat);
  if (b.length < 3) return null;
  const slope = theilSen(b);
  const spanMs = points[points.length - 1].t - points[0].t;
  const mk = mannKendall(b.map((p) => p.v));
  let peak = b[0];
  for (const p of b) if (p.v > peak.v) peak = p;
  return {
    points: b,
    slope,
    rise: slope * spanMs,
    start: b[0].v,
    peak: peak.v,
    peakTime: peak.t,
    end: b[b.length - 1].v,
    pRising: mk.pRising,
    pFalling: mk.pFalling,
    spanMs,
  };
}
