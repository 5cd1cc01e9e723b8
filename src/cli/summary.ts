// Peak, steady and final RSS of one run, and the statistics over several runs. Pure functions.
import type { WireSample } from './protocol';

/**
 * The plateau is read over the last third of the run: long enough to average out one GC or
 * one burst, late enough that start-up growth is over. Its median ignores a lone spike.
 */
export const STEADY_WINDOW_FRACTION = 1 / 3;

export function median(values: readonly number[]): number | null {
  if (values.length === 0) return null;
  const s = [...values].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/**
 * Peak: the larger of the kernel's VmHWM and every RSS sample (VmHWM is updated lazily; RSS
 * dropped by madvise, as a trim does, can leave it below a peak a sample saw). Steady: the
 * median over the last STEADY_WINDOW_FRACTION of the run. Final: the last sample.
 */
export function rssFigures(
  samples: readonly WireSample[],
  hwm: number | null,
): { peak: number | null; steady: number | null; final: number | null } {
  const withRss = samples.filter((s) => s.rss !== null);
  if (withRss.length === 0) return { peak: hwm, steady: null, final: null };
  const final = withRss[withRss.length - 1].rss;
  let peak = hwm;
  for (const s of withRss) {
    for (const v of [s.rss, s.peak]) if (v !== null && (peak === null || v > peak)) peak = v;
  }
  const start = withRss[0].time;
  const end = withRss[withRss.length - 1].time;
  const from = end - (end - start) * STEADY_WINDOW_FRACTION;
  const window = withRss.filter((s) => s.time >= from).map((s) => s.rss as number);
  return { peak, steady: median(window), final };
}

export interface Spread {
  mean: number;
  /** Sample standard deviation over runs; null with one run. */
  sd: number | null;
  n: number;
}

export function spread(values: ReadonlyArray<number | null>): Spread | null {
  const v = values.filter((x): x is number => x !== null);
  if (v.length === 0) return null;
  const mean = v.reduce((a, b) => a + b, 0) / v.length;
  const sd = v.length > 1 ? Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / (v.length - 1)) : null;
  return { mean, sd, n: v.length };
}
