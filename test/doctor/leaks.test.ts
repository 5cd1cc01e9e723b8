// The doctor on real children that leak: JS objects, Buffers kept from JS, and native memory
// from an addon that mallocs and never frees. Each is named for what it is, and only that.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { diagnose, type MonitorSample } from '../../src';
import { alarms, runScenario } from './helpers';
import { MiB, ROOT } from '../helpers';

const LEAK_ADDON_DIR = path.join(__dirname, 'addons', 'leak');
const LEAK_ADDON = path.join(LEAK_ADDON_DIR, 'build', 'Release', 'leak.node');
// What the children's report uses too: the short-run thresholds of test/doctor/fixtures/doctor-common.js.
const THRESHOLDS = { graceMs: 1000, minWindowMs: 5000, minSamples: 12 };

describe('doctor on leaking processes', () => {
  test('a JS leak is js-heap-growth, with heap-snapshot advice, and nothing else alarms', async () => {
    const r = await runScenario('doctor-js-leak');
    expect([alarms(r), r.notes]).toEqual([['js-heap-growth'], []]);
    const f = r.findings.find((x) => x.id === 'js-heap-growth')!;
    expect(f.evidence.riseBytes as number).toBeGreaterThan(16 * MiB);
    expect(f.evidence.pValue as number).toBeLessThan(0.01);
    expect(f.advice.join(' ')).toContain('writeHeapSnapshot');

    // The same run seen from outside (RSS only, every other number unknown): never a JS verdict.
    const outside: MonitorSample[] = (r.samples as MonitorSample[]).map((s) => ({
      time: s.time,
      rss: s.rss,
      rssAnon: s.rssAnon,
      heapUsed: null,
      heapTotal: null,
      external: null,
      arrayBuffers: null,
      allocated: null,
      resident: null,
      heldBack: null,
      releasable: null,
      elu: null,
      allocator: 'unknown',
    }));
    const d = diagnose(outside, THRESHOLDS);
    expect(d.findings.map((x) => x.id)).toEqual(['unaccounted-growth']);
    expect(d.findings[0].title).toContain('not observable');
    expect(d.parts.every((p) => p.v8Heap === null && p.other === null && typeof p.rss === 'number')).toBe(true);
  });

  test('Buffers kept from JS are arraybuffer-growth, not native-growth', async () => {
    const r = await runScenario('doctor-buffers');
    expect([alarms(r), r.notes]).toEqual([['arraybuffer-growth'], []]);
    expect(r.lastParts.arrayBuffers!).toBeGreaterThan(32 * MiB);
  });

  test('an addon that mallocs and never frees is native-growth', async () => {
    // Built here with node-gyp into test/doctor/addons/leak/build (ignored by git).
    if (!fs.existsSync(LEAK_ADDON)) {
      execFileSync(process.execPath, [require.resolve('node-gyp/bin/node-gyp.js'), 'rebuild', '--directory', LEAK_ADDON_DIR], { stdio: 'ignore' });
    }
    const r = await runScenario('doctor-native-leak', { args: [LEAK_ADDON] });
    expect([alarms(r), r.notes]).toEqual([['native-growth'], []]);
    const f = r.findings.find((x) => x.id === 'native-growth')!;
    expect(f.advice.join(' ')).toMatch(/heaptrack|valgrind/);
    // The rise the doctor reports is the memory the addon leaked, within what else the process did.
    expect(f.evidence.riseBytes as number).toBeGreaterThan((r.leaked as number) * 0.5);
    expect(f.evidence.riseBytes as number).toBeLessThan((r.leaked as number) * 1.5);
  });
});
