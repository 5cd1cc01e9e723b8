// createMonitor(): bad input, one per thread, a cost budget it keeps, no process kept alive,
// trims and gauges recorded in its samples.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { createMonitor, diagnose, type MonitorSample, type MonitorTotals, type TrimResult, type RssParts } from '../../src';
import { MiB, ROOT } from '../helpers';
import { runScenario } from './helpers';

function codeOf(fn: () => unknown): { name: string; code: unknown; message: string } {
  try {
    fn();
  } catch (e) {
    const err = e as Error & { code?: unknown };
    return { name: err.name, code: err.code, message: err.message };
  }
  throw new Error('expected a throw');
}

describe('createMonitor', () => {
  test('rejects bad options with TypeError/RangeError and stable codes', () => {
    expect(codeOf(() => createMonitor({ intervalMs: 10 }))).toEqual({
      name: 'RangeError',
      code: 'ERR_OUT_OF_RANGE',
      message: 'Expected an integer from 50 to 2147483647 for options.intervalMs but received 10',
    });
    expect(codeOf(() => createMonitor({ budget: 0 }))).toMatchObject({ name: 'RangeError', code: 'ERR_OUT_OF_RANGE' });
    expect(codeOf(() => createMonitor({ releasable: 'yes' as unknown as boolean }))).toMatchObject({ name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' });
    expect(codeOf(() => createMonitor({ interval: 5 } as never))).toMatchObject({ name: 'TypeError', code: 'ERR_UNKNOWN_OPTION' });
    expect(codeOf(() => createMonitor('fast' as never))).toMatchObject({ name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' });
  });

  test('the default window spans at least 12 intervals, however long the interval', () => {
    const m = createMonitor({ intervalMs: 4_000_000 });
    try {
      expect(m.totals().windowMs).toBe(48_000_000);
    } finally {
      m.stop();
    }
    const n = createMonitor({ intervalMs: 60_000 });
    try {
      expect(n.totals().windowMs).toBe(3_600_000);
    } finally {
      n.stop();
    }
  });

  test('one monitor per thread; track() validates; stop() is idempotent and frees the slot', () => {
    const m = createMonitor({ intervalMs: 60000 });
    try {
      expect(codeOf(() => createMonitor())).toMatchObject({ name: 'Error', code: 'ERR_MONITOR_RUNNING' });
      expect(codeOf(() => m.track('', () => 1))).toMatchObject({ name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' });
      expect(codeOf(() => m.track('depth', 3 as never))).toEqual({
        name: 'TypeError',
        code: 'ERR_INVALID_ARG_TYPE',
        message: 'Expected a function for fn but received 3',
      });
      expect(m.track('depth', () => 1)).toBe(m);
    } finally {
      m.stop();
      m.stop();
    }
    expect(m.running).toBe(false);
    const again = createMonitor({ intervalMs: 60000 });
    again.stop();
  });

  test('an aborted signal stops it', () => {
    const ac = new AbortController();
    const m = createMonitor({ intervalMs: 60000, signal: ac.signal });
    expect(m.running).toBe(true);
    ac.abort();
    expect(m.running).toBe(false);
  });

  test('does not keep the process alive', () => {
    const child = spawnSync(process.execPath, [path.join(ROOT, 'test', 'doctor', 'fixtures', 'doctor-monitor-exit.js')], { encoding: 'utf8', timeout: 60000 });
    expect({ status: child.status, signal: child.signal }).toEqual({ status: 0, signal: null });
    expect(child.stdout).toContain('"running":true');
  });

  test('stretches its interval to stay within its budget when samples are expensive', async () => {
    const r = await runScenario('doctor-monitor-budget');
    const t = r.totals as MonitorTotals;
    expect(t.samples).toBe(3);
    // After a sample that cost c ms it waits at least c / budget ms ...
    expect(t.intervalMs).toBeGreaterThanOrEqual(Math.ceil(t.lastSampleMs! / t.budget));
    expect(t.intervalMs).toBeGreaterThan(t.baseIntervalMs);
    // ... so every sample but the last one is paid for by the wait after it.
    expect(t.sampleTimeMs - t.lastSampleMs!).toBeLessThanOrEqual(t.budget * (r.elapsedMs as number));
  });

  test('records what a trim released and the tracked gauges (a failing gauge is left out, not 0)', async () => {
    const r = await runScenario('doctor-monitor-trim');
    const result = r.result as TrimResult;
    const sample = r.sample as MonitorSample;
    expect(result.releasedBytes!).toBeGreaterThan(16 * MiB);
    expect(sample.trimmedBytes).toBe(result.releasedBytes);
    expect(sample.gauges).toEqual({ jobs: 42 });
    expect((r.lastParts as RssParts).trimmedBytes).toBe(result.releasedBytes);
  });
});

describe('diagnose input', () => {
  test('rejects what is neither a monitor nor samples, and bad thresholds', () => {
    expect(codeOf(() => diagnose(42 as never))).toEqual({
      name: 'TypeError',
      code: 'ERR_INVALID_ARG_TYPE',
      message: 'Expected a Monitor or an array of MonitorSample for input but received 42',
    });
    expect(codeOf(() => diagnose([{ time: 'now' }] as never))).toMatchObject({ name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' });
    expect(codeOf(() => diagnose([], { trendMaxP: 2 }))).toMatchObject({ name: 'RangeError', code: 'ERR_OUT_OF_RANGE' });
    expect(codeOf(() => diagnose([], { graceMs: -1 }))).toMatchObject({ name: 'RangeError', code: 'ERR_OUT_OF_RANGE' });
    expect(codeOf(() => diagnose([], { thresholds: {} } as never))).toMatchObject({ name: 'TypeError', code: 'ERR_UNKNOWN_OPTION' });
    // A hole is a missing sample, not one to skip.
    // eslint-disable-next-line no-sparse-arrays
    expect(codeOf(() => diagnose([, { time: 1 }] as never))).toMatchObject({ name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE', message: expect.stringContaining('input[0]') });
    // Something that looks like a monitor but hands back no samples.
    const fake = { samples: () => 5, context: () => ({}) };
    expect(codeOf(() => diagnose(fake as never))).toMatchObject({ name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE', message: expect.stringContaining('input.samples()') });
    const badContext = { samples: () => [], context: () => 'x' };
    expect(codeOf(() => diagnose(badContext as never))).toMatchObject({ name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE', message: expect.stringContaining('input.context()') });
  });

  test('no samples: no verdict, said in a note', () => {
    const d = diagnose([]);
    expect(d.findings).toEqual([]);
    expect(d.notes.join(' ')).toContain('No trend verdict');
    expect(d.window.samples).toBe(0);
  });
});
