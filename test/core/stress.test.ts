// Threads under load, per real allocator: several threads trimming at once (sync and async),
// and 8 threads of mixed calls whose second batch must not grow memory beyond a bound once the
// first has warmed up. Each run has a time limit that fails a deadlock or a convoy.
import { lastJson, runFixture } from '../fixture';
import { allocatorCases, MiB, testIf } from '../helpers';

const HANG_LIMIT_MS = 60_000;

interface StressReport {
  allocator: string;
  callsPerBatch: number;
  first: { rss: number; allocated: number | null };
  second: { rss: number; allocated: number | null };
  third: { rss: number; allocated: number | null };
  seconds: number;
}

const allocators = allocatorCases();

describe.each(allocators)('under %s', (name, preload, available) => {
  testIf(available, `${name} is not installed`)('4 threads trimming at once, 100 trims each, finish without error or deadlock', async () => {
    const run = await runFixture('stress-threads.js', ['trim', '4', '100'], { preload, timeoutMs: HANG_LIMIT_MS });
    expect({ timedOut: run.timedOut, signal: run.signal, code: run.code, stderr: run.stderr }).toEqual({ timedOut: false, signal: null, code: 0, stderr: '' });
    expect(lastJson<StressReport>(run).allocator).toBe(name);
  }, HANG_LIMIT_MS + 10_000);

  testIf(available, `${name} is not installed`)('8 threads × 1500 mixed calls, three times: the later batches grow neither malloc\'d bytes nor RSS beyond a bound', async () => {
    const run = await runFixture('stress-threads.js', ['mixed', '8', '1500'], { preload, timeoutMs: HANG_LIMIT_MS });
    expect({ timedOut: run.timedOut, signal: run.signal, code: run.code, stderr: run.stderr }).toEqual({ timedOut: false, signal: null, code: 0, stderr: '' });
    const r = lastJson<StressReport>(run);
    expect(r.allocator).toBe(name);
    expect(r.callsPerBatch).toBe(12_000);
    // Release builds of mimalloc do not count malloc'd bytes: null there, numbers elsewhere.
    expect([r.first.allocated, r.second.allocated, r.third.allocated].map((v) => v === null)).toEqual(Array(3).fill(name === 'mimalloc'));
    // 12 000 calls: a leak of one 100-byte block per call would add 1.2 MB of malloc'd memory to
    // every batch. One batch alone can move jemalloc's stats.allocated by ±0.6 MB (thread caches,
    // Node's own allocations), so the bound holds for the smaller of two batches' growth: a leak
    // grows both.
    const growth = [r.second, r.third].map((b, i) => (b.allocated ?? 0) - ([r.first, r.second][i].allocated ?? 0));
    expect(Math.min(...growth)).toBeLessThan(1 * MiB);
    // RSS moves with thread caches and V8's own pages; a per-call leak of a few KiB would not fit.
    expect(r.second.rss - r.first.rss).toBeLessThan(32 * MiB);
  }, HANG_LIMIT_MS + 10_000);
});
