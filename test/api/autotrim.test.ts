// startAutoTrim(): real trims of real glibc heaps in child processes (fresh heaps, and big
// ones), the decisions it makes (threshold, busy, backoff, budget), and its lifecycle.
import { spawnSync } from 'node:child_process';
import { startAutoTrim, type AutoTrimTotals, type SkipEvent, type TrimResult } from '../../src';
import { autoTrimTotals } from '../../src/autotrim';
import { ALLOCATOR_LIBRARIES, MiB, findLibrary, fixture, runFixture, testIf } from '../helpers';

// As the child reports them: JSON, so errors are their messages and totals carry no functions.
type Totals = AutoTrimTotals;
type Trim = TrimResult;
type Skip = Omit<SkipEvent, 'error'> & { error?: string };

const sum = (xs: number[]): number => xs.reduce((x, y) => x + y, 0);

// The totals are a faithful count of what the events said (snapshot taken in the same tick).
function expectTotalsMatch(totals: Totals, trims: Trim[], skips: Skip[]): void {
  expect(totals.trims).toBe(trims.length);
  expect(totals.releasedBytes).toBe(sum(trims.map((t) => t.releasedBytes ?? 0)));
  expect(totals.trimTimeMs).toBeCloseTo(sum(trims.map((t) => t.durationMs)), 6);
  for (const [reason, n] of Object.entries(totals.skips)) expect(n).toBe(skips.filter((s) => s.reason === reason).length);
  expect(totals.checks).toBe(totals.trims + sum(Object.values(totals.skips)));
}

describe('startAutoTrim', () => {
  test('after a worker churn, RSS falls by itself (no explicit trim) and the totals add up', async () => {
    const { value } = await runFixture<{
      rssBefore: number;
      heldBefore: number;
      rssAfter: number;
      trims: Trim[];
      skips: Skip[];
      totals: Totals;
      fromModule: Totals;
    }>('autotrim.js', ['churn']);
    expect(value.heldBefore).toBeGreaterThan(300 * MiB);
    expect(value.trims.length).toBeGreaterThan(0);
    expect(value.trims[0].releasedBytes).toBeGreaterThan(200 * MiB);
    expect(value.rssBefore - value.rssAfter).toBeGreaterThan(200 * MiB);
    expectTotalsMatch(value.totals, value.trims, value.skips);
    expect(value.totals.samples).toBeGreaterThanOrEqual(value.totals.trims);
    expect(value.totals.sampleTimeMs).toBeGreaterThan(0);
    expect(value.totals.running).toBe(true);
    expect(value.totals.baseIntervalMs).toBe(200);
    expect(value.fromModule).toEqual(value.totals);
  });

  test('below the thresholds nothing is trimmed, and the skip says what was seen', async () => {
    const { value } = await runFixture<{
      quiet: { trims: Trim[]; skips: Skip[]; totals: Totals };
      churned: { trims: Trim[]; skips: Skip[]; totals: Totals; heldAfter: number };
    }>('autotrim.js', ['thresholds']);
    for (const phase of [value.quiet, value.churned]) {
      expect(phase.trims).toHaveLength(0);
      expect(phase.skips.length).toBeGreaterThanOrEqual(3);
      for (const s of phase.skips) expect(s.reason).toBe('below-threshold');
      expectTotalsMatch(phase.totals, phase.trims, phase.skips);
    }
    for (const s of value.quiet.skips) expect(s.releasable).toBeLessThan(64 * MiB);
    // The memory was there and stayed there.
    for (const s of value.churned.skips) expect(s.releasable).toBeGreaterThan(100 * MiB);
    expect(value.churned.heldAfter).toBeGreaterThan(100 * MiB);
  });

  test('a busy event loop postpones trims, which run once it calms down', async () => {
    const { value } = await runFixture<{ trimsWhileBusy: number; busySkips: Skip[]; trims: Trim[]; totals: Totals }>('autotrim.js', ['busy']);
    expect(value.trimsWhileBusy).toBe(0);
    expect(value.busySkips.length).toBeGreaterThanOrEqual(3);
    for (const s of value.busySkips) expect(s.utilization).toBeGreaterThan(0.7);
    expect(value.trims.length).toBeGreaterThan(0);
    expect(value.trims[0].releasedBytes).toBeGreaterThan(100 * MiB);
  });

  test('on a real heap, trims that release little back off; a trim that releases resets it', async () => {
    type Entry = { kind: string; released?: number | null; level: number };
    const { value } = await runFixture<{ quiet: Entry[]; later: Entry[]; totals: Totals }>('autotrim.js', ['backoff']);
    const trims = value.quiet.filter((e) => e.kind === 'trim');
    expect(trims.some((e) => e.level === 3)).toBe(true);
    // The rule, trim by trim: little (< 1 MiB here) → one level up, capped at 4; otherwise 0
    // (the cap and the exact spacing are tested on decide() in autotrim-decide.test.ts).
    let level = 0;
    for (const e of trims) {
      level = (e.released ?? 0) < MiB ? Math.min(4, level + 1) : 0;
      expect(e.level).toBe(level);
    }
    // Backing off means fewer trims: more checks are skipped between trims as the level grows.
    const gaps: number[] = [];
    let n = 0;
    for (const e of value.quiet) {
      if (e.kind === 'trim') {
        gaps.push(n);
        n = 0;
      } else if (e.kind === 'backing-off') n++;
    }
    expect(gaps[gaps.length - 1]).toBeGreaterThan(gaps[gaps.length - 2]);
    expect(value.quiet.some((e) => e.kind === 'backing-off')).toBe(true);
    const big = value.later.find((e) => e.kind === 'trim' && (e.released ?? 0) > 50 * MiB);
    expect(big?.level).toBe(0);
  });

  test('stop() stops, is idempotent, and a second start while one runs throws ERR_AUTOTRIM_RUNNING', async () => {
    const { value } = await runFixture<{
      before: unknown;
      code: string;
      atStop: number;
      later: number;
      running: boolean;
      checksAtStop: number;
      checksLater: number;
      moduleRunning: boolean;
      restarted: boolean;
    }>('autotrim.js', ['stop']);
    expect(value.before).toBeNull();
    expect(value.code).toBe('ERR_AUTOTRIM_RUNNING');
    expect(value.atStop).toBeGreaterThanOrEqual(3);
    expect(value.later).toBe(value.atStop);
    expect(value.running).toBe(false);
    // A trim already on the threadpool when stop() was called still finishes and is counted.
    expect(value.checksLater - value.checksAtStop).toBeLessThanOrEqual(1);
    expect(value.moduleRunning).toBe(false);
    expect(value.restarted).toBe(true);
  });

  test('an AbortSignal stops it; an already aborted signal starts nothing', async () => {
    const { value } = await runFixture<{ atAbort: number; later: number; running: boolean; preAborted: boolean; after: boolean }>('autotrim.js', ['abort']);
    expect(value.atAbort).toBeGreaterThanOrEqual(2);
    expect(value.later).toBe(value.atAbort);
    expect(value.running).toBe(false);
    expect(value.preAborted).toBe(false);
    expect(value.after).toBe(true);
  });

  test('bad options throw with codes, and start nothing', () => {
    const cases: Array<[unknown, string]> = [
      [5, 'ERR_INVALID_ARG_TYPE'],
      [null, 'ERR_INVALID_ARG_TYPE'],
      [{ interval: 1000 }, 'ERR_UNKNOWN_OPTION'],
      [{ intervalMs: '1000' }, 'ERR_INVALID_ARG_TYPE'],
      [{ intervalMs: 10 }, 'ERR_OUT_OF_RANGE'],
      [{ intervalMs: 1000.5 }, 'ERR_OUT_OF_RANGE'],
      [{ intervalMs: 2 ** 31 }, 'ERR_OUT_OF_RANGE'],
      [{ minReleasableBytes: -1 }, 'ERR_OUT_OF_RANGE'],
      [{ minReleasableBytes: 10n }, 'ERR_INVALID_ARG_TYPE'],
      [{ minHeldBackRatio: 1.5 }, 'ERR_OUT_OF_RANGE'],
      [{ maxBusy: Number.NaN }, 'ERR_OUT_OF_RANGE'],
      [{ maxBusy: '0.5' }, 'ERR_INVALID_ARG_TYPE'],
      [{ sampleBudget: 0 }, 'ERR_OUT_OF_RANGE'],
      [{ trimBudget: 2 }, 'ERR_OUT_OF_RANGE'],
      [{ afterGC: 'yes' }, 'ERR_INVALID_ARG_TYPE'],
      [{ onTrim: 'log' }, 'ERR_INVALID_ARG_TYPE'],
      [{ signal: { aborted: false } }, 'ERR_INVALID_ARG_TYPE'],
    ];
    for (const [options, code] of cases) {
      let error: (Error & { code?: string }) | undefined;
      try {
        startAutoTrim(options as never);
      } catch (e) {
        error = e as Error & { code?: string };
      }
      expect({ options, code: error?.code }).toEqual({ options, code });
      if (code !== 'ERR_UNKNOWN_OPTION') expect(error?.message).toMatch(/^Expected .+ for options/);
    }
    expect(autoTrimTotals()).toBeNull();
  });

  test('sampling stays within its budget: an expensive sample stretches the interval', async () => {
    const { value } = await runFixture<{ tight: Totals; elapsed: number; defaults: Totals }>('autotrim.js', ['sample-budget']);
    const { tight, elapsed, defaults } = value;
    expect(tight.samples).toBeGreaterThanOrEqual(2);
    expect(tight.trims).toBe(0);
    // Every sample but the last has already been paid for by its stretched interval.
    expect(tight.sampleTimeMs - (tight.lastSampleMs ?? 0)).toBeLessThanOrEqual(0.05 * elapsed * 1.01 + 1);
    expect(tight.intervalMs).toBeGreaterThanOrEqual(Math.floor((tight.lastSampleMs ?? 0) / 0.05));
    expect(tight.intervalMs).toBeGreaterThan(100);
    // The default budget is 0.5 % of one core: the next check waits 200× what the sample cost.
    expect(defaults.intervalMs).toBeGreaterThanOrEqual(Math.floor((defaults.lastSampleMs ?? 0) * 200));
    expect(defaults.intervalMs).toBeGreaterThan(1000);
  });

  test('trimBudget spaces trims by what the last one took', async () => {
    const { value } = await runFixture<{ trims: Trim[]; skips: Skip[]; totals: Totals }>('autotrim.js', ['trim-budget']);
    expect(value.trims).toHaveLength(1);
    expect(value.skips.length).toBeGreaterThanOrEqual(8);
    for (const s of value.skips.slice(2)) {
      expect(s.reason).toBe('backing-off');
      expect(s.message).toMatch(/trimBudget/);
    }
    expectTotalsMatch(value.totals, value.trims, value.skips);
  });

  test('afterGC: a major GC leads to a trim without waiting for the interval', async () => {
    const { value } = await runFixture<{ trims: Trim[]; totals: Totals }>('autotrim.js', ['after-gc']);
    expect(value.trims.length).toBeGreaterThan(0);
    expect(value.trims[0].releasedBytes).toBeGreaterThan(100 * MiB);
  });

  test('its timers and GC observer do not keep the process alive', () => {
    const r = spawnSync(process.execPath, [fixture('autotrim.js'), 'alive'], { encoding: 'utf8', timeout: 60000 });
    expect(r.stdout).toContain('"started":true');
    expect(r.signal).toBeNull();
    expect(r.status).toBe(0);
  });

  test('works in a worker thread, with totals kept per thread', async () => {
    const { value } = await runFixture<{ worker: { trims: number; released: number; running: boolean }; mainBefore: unknown; mainOwn: boolean }>('autotrim.js', ['worker']);
    expect(value.worker.trims).toBe(1);
    expect(value.worker.released).toBeGreaterThan(100 * MiB);
    expect(value.worker.running).toBe(true);
    expect(value.mainBefore).toBeNull();
    expect(value.mainOwn).toBe(true);
  });

  interface Preloaded {
    name: string;
    trims: Trim[];
    skips: Skip[];
    totals: Totals;
  }

  // One trim gives the churn back; the checks after it see nothing worth another.
  function expectOneTrimThenQuiet(v: Preloaded, name: string, minReleased: number): void {
    expect(v.name).toBe(name);
    expect(v.trims).toHaveLength(1);
    expect(v.trims[0].releasedBytes!).toBeGreaterThanOrEqual(minReleased);
    expect(v.skips.map((s) => s.reason)).not.toContain('unknown');
    expect(v.skips.at(-1)!.reason).toBe('below-threshold');
    expectTotalsMatch(v.totals, v.trims, v.skips);
  }

  for (const name of ['jemalloc', 'tcmalloc'] as const) {
    const preload = findLibrary(ALLOCATOR_LIBRARIES[name]);
    testIf(preload !== null, `${ALLOCATOR_LIBRARIES[name]} is not installed`)(`under ${name} it trims through that backend`, async () => {
      const { value } = await runFixture<Preloaded>('autotrim.js', ['preloaded', 'idle-workers'], { preload });
      expectOneTrimThenQuiet(value, name, 100 * MiB);
    });
  }

  const mimalloc = findLibrary(ALLOCATOR_LIBRARIES.mimalloc);
  testIf(mimalloc !== null, `${ALLOCATOR_LIBRARIES.mimalloc} is not installed`)(
    'under mimalloc (no held-back figure) it trims on growth of resident memory, once',
    async () => {
      const { value } = await runFixture<Preloaded>('autotrim.js', ['preloaded'], { preload: mimalloc });
      expectOneTrimThenQuiet(value, 'mimalloc', 100 * MiB);
      expect(value.skips.at(-1)!.residentGrowth).toBeLessThan(64 * MiB);
    },
  );

  testIf(mimalloc !== null, `${ALLOCATOR_LIBRARIES.mimalloc} is not installed`)(
    'under mimalloc a trim that returns little is not repeated: growth is measured from what it left',
    async () => {
      // Idle workers keep their mimalloc pages (2.0 decommits them only when they allocate or exit).
      const { value } = await runFixture<Preloaded>('autotrim.js', ['preloaded', 'idle-workers'], { preload: mimalloc });
      expectOneTrimThenQuiet(value, 'mimalloc', 0);
      expect(value.skips.at(-1)!.residentGrowth).toBeLessThan(64 * MiB);
    },
  );

  const tbb = findLibrary('libtbbmalloc_proxy.so.2');
  testIf(tbb !== null, 'libtbbmalloc_proxy.so.2 is not installed (apt-get install libtbbmalloc2)')(
    'under an allocator no trim can help it says so once and does nothing',
    async () => {
      const { value } = await runFixture<{ name: string; totals: Totals; skips: Skip[] }>('autotrim.js', ['unsupported'], { preload: tbb });
      expect(value.name).toBe('unknown');
      expect(value.totals.checks).toBe(1);
      expect(value.totals.skips.unsupported).toBe(1);
      expect(value.skips).toHaveLength(1);
      expect(value.totals.samples).toBe(0);
    },
  );
});
