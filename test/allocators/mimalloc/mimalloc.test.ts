// mimalloc via LD_PRELOAD of the real library in child processes.
import { ALLOCATOR_LIBRARIES, LIB, MiB, findLibrary, runChild, runFixture, testIf } from '../../helpers';
import * as api from '../../../src';
import type { MemoryStats } from '../../../src';

const lib = findLibrary(ALLOCATOR_LIBRARIES.mimalloc);
const it = testIf(lib !== null, 'libmimalloc.so.2 not installed (apt-get install libmimalloc2.0)');

type Stats = MemoryStats;

describe('under mimalloc', () => {
  it('reports its version and committed memory, and says allocated is not counted', async () => {
    const { value } = await runChild<{ info: { name: string; version: string }; s: Stats; sync: Stats; config: Record<string, unknown> }>(
      `const a = require(LIB);
       report({ info: a.detectAllocator(), s: await a.allocatorStats(), sync: a.allocatorStatsSync(), config: a.mimalloc.config() });`,
      { preload: lib! },
    );
    expect(value.info.name).toBe('mimalloc');
    expect(value.info.version).toMatch(/^[12]\.\d+\.\d+$/);
    for (const s of [value.s, value.sync]) {
      expect(s.allocated).toBeNull();
      expect(s.heldBack).toBeNull();
      expect(s.releasable).toBeNull();
      expect(s.resident).toBeGreaterThan(0);
      // Committed by mimalloc is part of what the process has mapped, and within its RSS range.
      expect(s.resident!).toBeLessThan(s.process.rss! * 4);
      expect(s.notes.join(' ')).toMatch(/does not count allocated bytes|not read from them/);
      // Committed memory, unless the OS shows less in RAM: then the OS wins, and a note says so.
      expect(s.resident!).toBeLessThanOrEqual(Number(s.raw.currentCommit));
      expect(s.resident!).toBeLessThanOrEqual(s.process.rssAnon!);
      expect(s.resident === s.raw.currentCommit || s.notes.some((n) => n.includes('held to what the OS shows'))).toBe(true);
    }
    expect(value.config.version).toBe(value.info.version);
    expect(typeof value.config.show_stats).toBe('number');
  });

  it('trim() collects on every JS thread that loaded the addon, and RSS falls with committed memory', async () => {
    const { value } = await runChild<{
      registered: number[];
      t: { supported: boolean; releasedBytes: number; rssBefore: number; rssAfter: number; notes: string[] };
      sync: { supported: boolean; notes: string[] };
      commitBefore: number;
      commitAfter: number;
    }>(
      `const a = require(LIB);
       const { churn } = require(WORKLOAD);
       const registered = [a.mimalloc.config().registeredThreads];
       // Workers inherit -r from execArgv, so each loads the addon and registers its hook.
       const { release } = await churn({ workers: 4, bytesPerWorker: 80 << 20, keepAlive: true });
       registered.push(a.mimalloc.config().registeredThreads);
       const commitBefore = a.mimalloc.processInfo().currentCommit;
       const t = await a.trim();
       const commitAfter = a.mimalloc.processInfo().currentCommit;
       // On the JS thread this thread collects itself and asks the four workers.
       const sync = a.trimSync();
       await release();
       await new Promise((r) => setTimeout(r, 200));
       registered.push(a.mimalloc.config().registeredThreads);
       report({ registered, t, sync, commitBefore, commitAfter });`,
      { preload: lib!, execArgv: ['-r', LIB] },
    );
    // Main thread, then main + 4 workers, then the workers' cleanup hooks unregistered them.
    expect(value.registered).toEqual([1, 5, 1]);
    expect(value.t.supported).toBe(true);
    expect(value.t.notes.join('\n')).toMatch(/asked of 5 other JS thread\(s\); 5 answered in time/);
    expect(value.t.releasedBytes).toBeGreaterThan(8 * MiB);
    expect(value.sync.notes.join('\n')).toMatch(/asked of 4 other JS thread\(s\); 4 answered in time/);
    // RSS fell by no more than what mimalloc decommitted. Committed memory includes pages
    // never touched, so the RSS drop is smaller (measured here: 121-244 MB decommitted,
    // 30-144 MB released from about 450 MB RSS).
    const decommitted = value.commitBefore - value.commitAfter;
    expect(decommitted).toBeGreaterThan(8 * MiB);
    expect(value.t.releasedBytes).toBeLessThan(decommitted + 16 * MiB);
  });

  it('options by name, with errors for unknown names', async () => {
    const { value } = await runChild<Record<string, unknown>>(
      `const { mimalloc } = require(LIB);
       const err = (f) => { try { f(); return null; } catch (e) { return { code: e.code, name: e.name }; } };
       const v = mimalloc.option('verbose');
       report({ v, set: mimalloc.option('verbose', 0), bad: err(() => mimalloc.option('no_such_option')), badValue: err(() => mimalloc.option('verbose', 1.5)),
                text: typeof mimalloc.statsText(), version: mimalloc.version() });`,
      { preload: lib! },
    );
    expect(value.v).toBe(0);
    expect(value.set).toBe(0);
    expect(value.bad).toMatchObject({ code: 'ERR_MIMALLOC_OPTION', name: 'TypeError' });
    expect(value.badValue).toMatchObject({ code: 'ERR_OUT_OF_RANGE' });
    expect(value.text).toBe('string');
    expect(value.version).toMatch(/^\d+\.\d+\.\d+$/);
  });
});

test('the mimalloc namespace refuses when mimalloc does not serve malloc', async () => {
  expect(() => api.mimalloc.version()).toThrow(expect.objectContaining({ code: 'ERR_ALLOCATOR_UNSUPPORTED' }));
  // The package's own setting, made at start-up under any allocator.
  expect(() => api.mimalloc.setCollectTimeout(api.mimalloc.collectTimeout())).not.toThrow();
  await expect(api.mimalloc.collect()).rejects.toMatchObject({ code: 'ERR_ALLOCATOR_UNSUPPORTED' });
});

describe('mimalloc sync trims from several threads', () => {
  it('never wait for one another while holding the trim lock: every thread asked answers', async () => {
    const { value } = await runFixture<{ name: string; trims: Array<{ supported: boolean; threads: number; answered: number }> }>(
      'mimalloc-trimsync-workers.js',
      [],
      { preload: lib! },
    );
    expect(value.name).toBe('mimalloc');
    expect(value.trims).toHaveLength(16);
    for (const t of value.trims) {
      expect(t.supported).toBe(true);
      // The main thread and the other three workers (loaded or already gone).
      expect(t.threads).toBeGreaterThanOrEqual(1);
      expect(t.answered).toBe(t.threads);
    }
  });
});

describe('mimalloc and process.exit()', () => {
  it('exits at once while a worker waits in trimSync() for the exiting main thread', async () => {
    // The worker would wait a minute for the main thread; a hang is killed at 30 s (SIGKILL).
    const { value, code, signal } = await runFixture<{ name: string; exiting: boolean }>('mimalloc-exit.js', [], {
      preload: lib!,
      timeoutMs: 30000,
    });
    expect(value).toEqual({ name: 'mimalloc', exiting: true });
    expect({ code, signal }).toEqual({ code: 0, signal: null });
  });
});
