// startAutoTrim(): real trims of real glibc heaps in child processes (fresh heaps, and big
// ones), the decisions it makes (threshold, busy, backoff, budget), and its lifecycle.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { startAutoTrim } from '../src';
import { autoTrimTotals } from '../src/autotrim';
import { ALLOCATOR_LIBRARIES, LIB, MiB, ROOT, findLibrary, runChild, testIf } from './helpers';

const AUTOTRIM = path.join(ROOT, 'lib', 'autotrim.js');
const BACKENDS = path.join(ROOT, 'lib', 'backends', 'index.js');
const DETECT = path.join(ROOT, 'lib', 'detect.js');

// Shared by every child: the library, the workloads, and polling without fixed sleeps.
const PRELUDE = `
const a = require(LIB);
const w = require(WORKLOAD);
const { autoTrimTotals } = require(${JSON.stringify(AUTOTRIM)});
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const until = async (cond, ms) => { const end = Date.now() + ms; while (!cond() && Date.now() < end) await sleep(25); return cond(); };
const record = (t) => {
  const trims = []; const skips = [];
  t.on('trim', (r) => trims.push(r));
  t.on('skip', (s) => skips.push({ ...s, error: s.error && s.error.message }));
  return { trims, skips };
};
`;

interface Totals {
  running: boolean;
  intervalMs: number;
  baseIntervalMs: number;
  checks: number;
  trims: number;
  skips: Record<string, number>;
  releasedBytes: number;
  trimTimeMs: number;
  samples: number;
  sampleTimeMs: number;
  lastSampleMs: number | null;
  backoffLevel: number;
  lastTrim: { releasedBytes: number | null } | null;
  lastSkip: { reason: string; time: number } | null;
}
interface Trim {
  releasedBytes: number | null;
  durationMs: number;
  supported: boolean;
}
interface Skip {
  reason: string;
  message: string;
  utilization?: number;
  releasable?: number | null;
  heldBack?: number | null;
  backoffLevel?: number;
}

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
    const { value } = await runChild<{
      rssBefore: number;
      heldBefore: number;
      rssAfter: number;
      trims: Trim[];
      skips: Skip[];
      totals: Totals;
      fromModule: Totals;
    }>(`${PRELUDE}
      await w.churn({ workers: 4, bytesPerWorker: 100 << 20 });
      const heldBefore = (await a.allocatorStats({ releasable: false })).heldBack;
      const rssBefore = process.memoryUsage().rss;
      const t = a.startAutoTrim({ intervalMs: 200 });
      const { trims, skips } = record(t);
      await until(() => trims.length > 0, 60000);
      await sleep(300);
      const rssAfter = process.memoryUsage().rss;
      const totals = t.totals();
      const fromModule = autoTrimTotals();
      t.stop();
      report({ rssBefore, heldBefore, rssAfter, trims, skips, totals, fromModule });`);
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
    const { value } = await runChild<{
      quiet: { trims: Trim[]; skips: Skip[]; totals: Totals };
      churned: { trims: Trim[]; skips: Skip[]; totals: Totals; heldAfter: number };
    }>(`${PRELUDE}
      // A fresh process with the default thresholds: nothing worth giving back.
      let t = a.startAutoTrim({ intervalMs: 200 });
      let r = record(t);
      await until(() => r.skips.length >= 3, 30000);
      const quiet = { ...r, totals: t.totals() };
      t.stop();
      // Hundreds of MB held back, but below a (huge) minimum: still no trim.
      await w.churn({ workers: 2, bytesPerWorker: 100 << 20 });
      t = a.startAutoTrim({ intervalMs: 200, minReleasableBytes: 8 * 1024 ** 3 });
      r = record(t);
      await until(() => r.skips.length >= 3, 30000);
      const churned = { ...r, totals: t.totals(), heldAfter: (await a.allocatorStats({ releasable: false })).heldBack };
      t.stop();
      report({ quiet, churned });`);
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
    const { value } = await runChild<{ trimsWhileBusy: number; busySkips: Skip[]; trims: Trim[]; totals: Totals }>(`${PRELUDE}
      await w.churn({ workers: 2, bytesPerWorker: 100 << 20 });
      const t = a.startAutoTrim({ intervalMs: 200 });
      const { trims, skips } = record(t);
      // Block the loop ~95% of the time: 40 ms of work, 2 ms free.
      let busy = true;
      const spin = () => { if (!busy) return; const end = performance.now() + 40; while (performance.now() < end); setTimeout(spin, 2); };
      spin();
      await until(() => skips.filter((s) => s.reason === 'busy').length >= 3, 60000);
      busy = false;
      const trimsWhileBusy = trims.length;
      const busySkips = skips.filter((s) => s.reason === 'busy');
      await until(() => trims.length > 0, 60000);
      const totals = t.totals();
      t.stop();
      report({ trimsWhileBusy, busySkips, trims, totals });`);
    expect(value.trimsWhileBusy).toBe(0);
    expect(value.busySkips.length).toBeGreaterThanOrEqual(3);
    for (const s of value.busySkips) expect(s.utilization).toBeGreaterThan(0.7);
    expect(value.trims.length).toBeGreaterThan(0);
    expect(value.trims[0].releasedBytes).toBeGreaterThan(100 * MiB);
  });

  test('trims that release little back off (doubling, capped); a trim that releases resets it', async () => {
    type Entry = { kind: string; released?: number | null; level: number };
    const { value } = await runChild<{ quiet: Entry[]; later: Entry[]; totals: Totals }>(`${PRELUDE}
      // Give back start-up garbage first, so trims of this quiet heap return next to nothing.
      await a.trim();
      const t = a.startAutoTrim({ intervalMs: 100, minReleasableBytes: 0, minHeldBackRatio: 0, sampleBudget: 1, trimBudget: 1 });
      const log = [];
      t.on('trim', (r) => log.push({ kind: 'trim', released: r.releasedBytes, level: t.totals().backoffLevel }));
      t.on('skip', (s) => log.push({ kind: s.reason, level: t.totals().backoffLevel }));
      const atCap = () => log.filter((e) => e.kind === 'trim' && e.level === 4).length >= 2;
      await until(atCap, 60000);
      const quiet = log.slice();
      await w.churn({ workers: 2, bytesPerWorker: 100 << 20 });
      await until(() => log.slice(quiet.length).some((e) => e.kind === 'trim' && e.released > 50 * 1024 * 1024), 60000);
      const totals = t.totals();
      t.stop();
      report({ quiet, later: log.slice(quiet.length), totals });`);
    const trims = value.quiet.filter((e) => e.kind === 'trim');
    expect(trims.filter((e) => e.level === 4).length).toBeGreaterThanOrEqual(2);
    // The rule, trim by trim: little (< 1 MiB here) → one level up, capped at 4; otherwise 0.
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
    expect(gaps[gaps.length - 1]).toBeGreaterThan(gaps[1]);
    expect(value.quiet.some((e) => e.kind === 'backing-off')).toBe(true);
    const big = value.later.find((e) => e.kind === 'trim' && (e.released ?? 0) > 50 * MiB);
    expect(big?.level).toBe(0);
  });

  test('stop() stops, is idempotent, and a second start while one runs throws ERR_AUTOTRIM_RUNNING', async () => {
    const { value } = await runChild<{
      before: unknown;
      code: string;
      atStop: number;
      later: number;
      running: boolean;
      checksAtStop: number;
      checksLater: number;
      moduleRunning: boolean;
      restarted: boolean;
    }>(`${PRELUDE}
      const before = autoTrimTotals();
      const t = a.startAutoTrim({ intervalMs: 100, minReleasableBytes: 0, minHeldBackRatio: 0, sampleBudget: 1 });
      let events = 0;
      t.on('trim', () => events++);
      t.on('skip', () => events++);
      await until(() => events >= 3, 30000);
      let code;
      try { a.startAutoTrim(); } catch (e) { code = e.code; }
      t.stop();
      t.stop();
      const atStop = events;
      const checksAtStop = t.totals().checks;
      await sleep(1000);
      const moduleRunning = autoTrimTotals().running;
      const t2 = a.startAutoTrim({ intervalMs: 100 });
      const restarted = t2.running;
      t2.stop();
      report({ before, code, atStop, later: events, running: t.running, checksAtStop, checksLater: t.totals().checks, moduleRunning, restarted });`);
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
    const { value } = await runChild<{ atAbort: number; later: number; running: boolean; preAborted: boolean; after: boolean }>(`${PRELUDE}
      const ac = new AbortController();
      const t = a.startAutoTrim({ intervalMs: 100, minReleasableBytes: 0, minHeldBackRatio: 0, sampleBudget: 1, signal: ac.signal });
      let events = 0;
      t.on('trim', () => events++);
      t.on('skip', () => events++);
      await until(() => events >= 2, 30000);
      ac.abort();
      const atAbort = events;
      await sleep(800);
      const p = a.startAutoTrim({ intervalMs: 100, signal: AbortSignal.abort() });
      const preAborted = p.running;
      const q = a.startAutoTrim({ intervalMs: 100 });
      const after = q.running;
      q.stop();
      report({ atAbort, later: events, running: t.running, preAborted, after });`);
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
    const { value } = await runChild<{ tight: Totals; elapsed: number; defaults: Totals }>(`${PRELUDE}
      // 500 000 free chunks in the main heap: each sample walks them all (tens of ms).
      const kept = w.fragment({ chunks: 500000 });
      const never = 8 * 1024 ** 3;
      const started = performance.now();
      const t = a.startAutoTrim({ intervalMs: 100, minReleasableBytes: never, sampleBudget: 0.05 });
      await sleep(5000);
      const tight = t.totals();
      const elapsed = performance.now() - started;
      t.stop();
      const d = a.startAutoTrim({ intervalMs: 100, minReleasableBytes: never });
      await until(() => d.totals().samples >= 1, 30000);
      const defaults = d.totals();
      d.stop();
      report({ tight, elapsed, defaults, kept: kept.length });`);
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
    const { value } = await runChild<{ trims: Trim[]; skips: Skip[]; totals: Totals }>(`${PRELUDE}
      // Every check would trim (thresholds 0), but a budget of 1e-6 turns a trim of d ms into
      // a pause of d × 10^6 ms: after the first trim, only skips.
      const t = a.startAutoTrim({ intervalMs: 100, minReleasableBytes: 0, minHeldBackRatio: 0, sampleBudget: 1, trimBudget: 1e-6 });
      const { trims, skips } = record(t);
      await until(() => skips.length >= 8, 30000);
      const totals = t.totals();
      t.stop();
      report({ trims, skips, totals });`);
    expect(value.trims).toHaveLength(1);
    expect(value.skips.length).toBeGreaterThanOrEqual(8);
    for (const s of value.skips.slice(2)) {
      expect(s.reason).toBe('backing-off');
      expect(s.message).toMatch(/trimBudget/);
    }
    expectTotalsMatch(value.totals, value.trims, value.skips);
  });

  test('afterGC: a major GC leads to a trim without waiting for the interval', async () => {
    const { value } = await runChild<{ trims: Trim[]; totals: Totals }>(`${PRELUDE}
      await w.churn({ workers: 2, bytesPerWorker: 100 << 20 });
      const t = a.startAutoTrim({ intervalMs: 10 * 60 * 1000, afterGC: true });
      const { trims } = record(t);
      await sleep(100);
      w.collect();
      await until(() => trims.length > 0, 30000);
      const totals = t.totals();
      t.stop();
      report({ trims, totals });`);
    expect(value.trims.length).toBeGreaterThan(0);
    expect(value.trims[0].releasedBytes).toBeGreaterThan(100 * MiB);
  });

  test('its timers and GC observer do not keep the process alive', () => {
    const code = `
      const a = require(${JSON.stringify(LIB)});
      const t = a.startAutoTrim({ intervalMs: 60000, afterGC: true });
      t.on('skip', () => {});
      console.log('started', t.running);`;
    const r = spawnSync(process.execPath, ['-e', code], { encoding: 'utf8', timeout: 60000 });
    expect(r.stdout).toContain('started true');
    expect(r.signal).toBeNull();
    expect(r.status).toBe(0);
  });

  test('works in a worker thread, with totals kept per thread', async () => {
    const { value } = await runChild<{ worker: { trims: number; released: number; running: boolean }; mainBefore: unknown; mainOwn: boolean }>(`${PRELUDE}
      const { Worker } = require('node:worker_threads');
      await w.churn({ workers: 2, bytesPerWorker: 100 << 20 });
      const worker = new Worker(\`
        const { parentPort } = require('node:worker_threads');
        const a = require(\${JSON.stringify(LIB)});
        const t = a.startAutoTrim({ intervalMs: 200 });
        t.once('trim', (r) => { const x = t.totals(); t.stop(); parentPort.postMessage({ trims: x.trims, released: r.releasedBytes, running: x.running }); });
        setInterval(() => {}, 1000);\`, { eval: true });
      const result = await new Promise((resolve, reject) => { worker.once('message', resolve); worker.once('error', reject); });
      // The worker's trimmer is its own: this thread has none, and may start one.
      const mainBefore = autoTrimTotals();
      const own = a.startAutoTrim({ intervalMs: 1000 });
      const mainOwn = own.running;
      own.stop();
      await worker.terminate();
      report({ worker: result, mainBefore, mainOwn });`);
    expect(value.worker.trims).toBe(1);
    expect(value.worker.released).toBeGreaterThan(100 * MiB);
    expect(value.worker.running).toBe(true);
    expect(value.mainBefore).toBeNull();
    expect(value.mainOwn).toBe(true);
  });

  const preload = findLibrary(ALLOCATOR_LIBRARIES.jemalloc);
  testIf(preload !== null, `${ALLOCATOR_LIBRARIES.jemalloc} is not installed`)(
    'under another allocator it trims through that backend, or skips once as unsupported',
    async () => {
      const { value } = await runChild<{ name: string; canTrim: boolean; totals: Totals; skips: Skip[] }>(
        `${PRELUDE}
        const { backendFor } = require(${JSON.stringify(BACKENDS)});
        const { allocatorIdentity } = require(${JSON.stringify(DETECT)});
        const name = allocatorIdentity().name;
        const canTrim = backendFor(name).canTrim;
        const t = a.startAutoTrim({ intervalMs: 100, minReleasableBytes: 0, minHeldBackRatio: 0 });
        const { skips } = record(t);
        await sleep(1500);
        const totals = t.totals();
        t.stop();
        report({ name, canTrim, totals, skips });`,
        { preload: preload as string },
      );
      expect(value.name).toBe('jemalloc');
      if (value.canTrim) {
        expect(value.totals.skips.unsupported).toBe(0);
        expect(value.totals.checks).toBeGreaterThan(0);
      } else {
        // A no-op that says so exactly once.
        expect(value.totals.checks).toBe(1);
        expect(value.totals.skips.unsupported).toBe(1);
        expect(value.skips).toHaveLength(1);
        expect(value.skips[0].message).toMatch(/jemalloc/);
        expect(value.totals.samples).toBe(0);
      }
    },
  );
});
