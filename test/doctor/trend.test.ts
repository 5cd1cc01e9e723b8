// The doctor's trend statistics on constructed series (math, not allocator numbers): GC-like
// saw-teeth over a rising, a flat and a rise-then-drain baseline.
import { buckets, mannKendall, normalUpperTail, spearman, theilSen, trend, type Point } from '../../src/doctor/trend';
import { drained, growing } from '../../src/doctor/rules';
import { DEFAULT_THRESHOLDS } from '../../src/doctor/thresholds';

const MiB = 1024 * 1024;
const STEP_MS = 1000;

/** A saw-tooth: each GC cycle climbs by `tooth` over `period` samples, then drops to `base(t)`. */
function sawTooth(n: number, base: (i: number) => number, tooth: number, period = 7): Point[] {
  return Array.from({ length: n }, (_, i) => ({ t: i * STEP_MS, v: base(i) + ((i % period) / (period - 1)) * tooth }));
}

describe('trend statistics', () => {
  test('normalUpperTail matches the standard normal table', () => {
    expect(normalUpperTail(0)).toBeCloseTo(0.5, 6);
    expect(normalUpperTail(1.959964)).toBeCloseTo(0.025, 5);
    expect(normalUpperTail(-1.959964)).toBeCloseTo(0.975, 5);
    expect(normalUpperTail(3.090232)).toBeCloseTo(0.001, 5);
  });

  test('Mann–Kendall: a strictly rising series of 8 has S = 28 and p below 0.001; a constant one has p = 0.5', () => {
    const up = mannKendall([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(up.s).toBe(28);
    expect(up.pRising).toBeLessThan(0.001);
    expect(up.pFalling).toBeGreaterThan(0.999);
    const flat = mannKendall([5, 5, 5, 5, 5, 5]);
    expect(flat.s).toBe(0);
    expect(flat.pRising).toBeCloseTo(0.5, 6);
  });

  test('Theil–Sen ignores a few wild points where a least-squares slope would not', () => {
    const pts = Array.from({ length: 20 }, (_, i) => ({ t: i, v: 2 * i }));
    pts[3].v = 1000;
    pts[15].v = -1000;
    expect(theilSen(pts)).toBeCloseTo(2, 6);
  });

  test('bucket minima of a saw-tooth over a rising baseline follow the baseline, not the teeth', () => {
    const slope = 0.5 * MiB; // per sample
    const pts = sawTooth(120, (i) => 20 * MiB + i * slope, 40 * MiB);
    const mins = buckets(pts, 8, 'min');
    expect(mins).toHaveLength(8);
    for (const b of mins) expect(b.v - (20 * MiB + (b.t / STEP_MS) * slope)).toBeLessThan(slope * 8);
    const tr = trend(pts)!;
    expect(tr.slope * STEP_MS).toBeGreaterThan(slope * 0.8);
    expect(tr.slope * STEP_MS).toBeLessThan(slope * 1.2);
    expect(tr.pRising).toBeLessThan(0.01);
    expect(growing(tr, DEFAULT_THRESHOLDS)).toBe(true);
  });

  test('a flat saw-tooth with teeth far above the growth floor is not growth', () => {
    const pts = sawTooth(120, () => 30 * MiB, 80 * MiB, 11);
    const tr = trend(pts)!;
    expect(Math.abs(tr.end - tr.start)).toBeLessThan(8 * MiB);
    expect(growing(tr, DEFAULT_THRESHOLDS)).toBe(false);
    expect(drained(trend(pts, 'median'), DEFAULT_THRESHOLDS)).toBe(false);
  });

  test('a significant rise below the byte floor or the ratio is not growth', () => {
    const small = sawTooth(120, (i) => 50 * MiB + i * 0.1 * MiB, 5 * MiB);
    const tr = trend(small)!;
    expect(tr.pRising).toBeLessThan(0.01);
    expect(tr.end - tr.start).toBeLessThan(DEFAULT_THRESHOLDS.growthMinBytes);
    expect(growing(tr, DEFAULT_THRESHOLDS)).toBe(false);
    // 20 MiB on top of 1 GiB: above the floor, below 10 %.
    const big = sawTooth(120, (i) => 1024 * MiB + i * (20 / 120) * MiB, 5 * MiB);
    expect(growing(trend(big), DEFAULT_THRESHOLDS)).toBe(false);
  });

  test('a rise that drained back is drained, and not growth', () => {
    const hump = (i: number): number => 40 * MiB + (i < 60 ? i : Math.max(0, 60 - 2 * (i - 60))) * 1 * MiB;
    const pts = sawTooth(120, hump, 10 * MiB);
    const tr = trend(pts, 'median')!;
    expect(tr.peak - tr.start).toBeGreaterThan(40 * MiB);
    expect(drained(tr, DEFAULT_THRESHOLDS)).toBe(true);
    expect(growing(trend(pts), DEFAULT_THRESHOLDS)).toBe(false);
  });

  test('fewer than three buckets with data give no trend', () => {
    expect(trend([{ t: 0, v: 1 }])).toBeNull();
    expect(trend([{ t: 0, v: 1 }, { t: 1, v: 2 }])).toBeNull();
  });

  test('Spearman is 1 for any monotone relation and −1 for a reversed one', () => {
    const a = [1, 2, 3, 4, 5, 6];
    expect(spearman(a, a.map((x) => x ** 3))).toBeCloseTo(1, 10);
    expect(spearman(a, a.map((x) => -x))).toBeCloseTo(-1, 10);
    expect(spearman([1, 2], [1, 2])).toBeNaN();
  });
});
