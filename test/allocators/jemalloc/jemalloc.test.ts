// jemalloc via LD_PRELOAD of the real library in child processes.
import { ALLOCATOR_LIBRARIES, MiB, expectKnownInvariants as invariants, findLibrary, runChild, runFixture, testIf } from '../../helpers';
import * as api from '../../../src';

const lib = findLibrary(ALLOCATOR_LIBRARIES.jemalloc);
const it = testIf(lib !== null, 'libjemalloc.so.2 not installed (apt-get install libjemalloc2)');

interface Stats {
  allocator: { name: string; version: string | null };
  allocated: number;
  resident: number;
  heldBack: number;
  releasable: number;
  mapped: number;
  raw: Record<string, unknown>;
  notes: string[];
  process: { rss: number };
}
interface Trim {
  supported: boolean;
  rssBefore: number;
  rssAfter: number;
  releasedBytes: number;
  heldBackBefore: number;
  heldBackAfter: number;
  notes: string[];
}

describe('under jemalloc', () => {
  it('reports its numbers, and trim() returns what it said was held back', async () => {
    const { value } = await runChild<{ info: { name: string; version: string; method: string }; idle: Stats; churned: Stats; t: Trim; after: Stats; config: Record<string, unknown> }>(
      `const a = require(LIB);
       const { churn } = require(WORKLOAD);
       const info = a.detectAllocator();
       const idle = await a.allocatorStats();
       // Idle pool workers: nothing allocates, so nothing decays the dirty pages meanwhile.
       const { release } = await churn({ workers: 4, bytesPerWorker: 80 << 20, keepAlive: true });
       a.jemalloc.setEpochInterval(0);
       const churned = await a.allocatorStats();
       const t = await a.trim();
       const after = a.allocatorStatsSync();
       await release();
       report({ info, idle, churned, t, after, config: a.jemalloc.config() });`,
      { preload: lib! },
    );
    expect(value.info.name).toBe('jemalloc');
    expect(value.info.version).toMatch(/^5\.\d+\.\d+/);
    expect(value.info.method).toMatch(/thread\.allocated/);
    for (const s of [value.idle, value.churned, value.after]) invariants(s);
    // 4 x 80 MB of written Buffers were freed: jemalloc keeps most of them as dirty pages.
    expect(value.churned.heldBack).toBeGreaterThan(150 * MiB);
    expect(value.churned.releasable).toBeGreaterThan(150 * MiB);
    expect(value.t.supported).toBe(true);
    expect(value.t.releasedBytes).toBeGreaterThan(100 * MiB);
    // What the OS got back agrees with the dirty+muzzy pages reported before (measured here:
    // 288 MiB reported, 283 MiB released); other threads may move RSS a little meanwhile.
    const tolerance = Math.max(32 * MiB, 0.2 * value.churned.releasable);
    expect(Math.abs(value.t.releasedBytes - value.churned.releasable)).toBeLessThan(tolerance);
    expect(value.t.heldBackAfter).toBeLessThan(value.t.heldBackBefore / 4);
    // heldBack also counts metadata and the unused tails of active pages, which no purge
    // returns: the release is at most heldBack and within a quarter (or 48 MiB) of it.
    expect(value.t.releasedBytes).toBeLessThan(value.churned.heldBack + 16 * MiB);
    expect(value.t.releasedBytes).toBeGreaterThan(value.churned.heldBack - Math.max(48 * MiB, 0.25 * value.churned.heldBack));
    expect(value.config['opt.narenas']).toBeGreaterThan(0);
    expect(typeof value.config['opt.dirty_decay_ms']).toBe('number');
    expect(value.config['background_thread']).toBe(false);
    expect(value.config['config.stats']).toBe(true);
  });

  it('mallctl reads and writes by name with clear errors, never crashing', async () => {
    const { value } = await runChild<Record<string, unknown>>(
      `const { jemalloc } = require(LIB);
       const err = (f) => { try { f(); return null; } catch (e) { return { code: e.code, name: e.name, message: e.message }; } };
       report({
         version: jemalloc.mallctl.read('version'),
         epochType: typeof jemalloc.mallctl.read('epoch'),
         narenas: jemalloc.mallctl.read('opt.narenas'),
         dirty: jemalloc.mallctl.read('opt.dirty_decay_ms'),
         pdirtyType: typeof jemalloc.mallctl.read('stats.arenas.4096.pdirty'),
         badName: err(() => jemalloc.mallctl.read('no.such.name')),
         badArena: err(() => jemalloc.mallctl.read('stats.arenas.99999.pdirty')),
         action: err(() => jemalloc.mallctl.read('arena.0.purge')),
         unknownType: err(() => jemalloc.mallctl.read('arenas.create')),
         prof: err(() => jemalloc.mallctl.read('prof.dump')),
         notString: err(() => jemalloc.mallctl.read(42)),
         wrongType: err(() => jemalloc.mallctl.write('arenas.dirty_decay_ms', 'fast')),
         wrongBool: err(() => jemalloc.mallctl.write('background_thread', 1)),
         readOnly: err(() => jemalloc.mallctl.write('opt.narenas', 4)),
         writeBad: err(() => jemalloc.mallctl.write('no.such.name', 1)),
         purgeAction: err(() => jemalloc.mallctl.write('arena.4096.purge')),
         negative: err(() => jemalloc.mallctl.write('thread.arena', -1)),
         badDecay: err(() => jemalloc.mallctl.write('arenas.dirty_decay_ms', -5)),
         decayWrite: (jemalloc.mallctl.write('arenas.dirty_decay_ms', 5000), jemalloc.mallctl.read('arenas.dirty_decay_ms')),
         // jemalloc takes 0 here and divides by it when background threads start (SIGFPE).
         zeroThreads: err(() => jemalloc.mallctl.write('max_background_threads', 0)),
         oneThread: (jemalloc.mallctl.write('max_background_threads', 1), jemalloc.mallctl.read('max_background_threads')),
         bg: [jemalloc.backgroundThread(), jemalloc.backgroundThread(true), jemalloc.mallctl.read('background_thread'), jemalloc.backgroundThread(false)],
       });`,
      { preload: lib! },
    );
    expect(value.version).toMatch(/^5\./);
    expect(value.epochType).toBe('bigint');
    expect(value.narenas).toBeGreaterThan(0);
    expect(typeof value.dirty).toBe('number');
    expect(value.pdirtyType).toBe('number');
    expect(value.badName).toMatchObject({ code: 'ERR_MALLCTL_NAME' });
    expect(value.badArena).toMatchObject({ code: 'ERR_MALLCTL_NAME' });
    expect(value.action).toMatchObject({ code: 'ERR_MALLCTL_ACCESS' });
    expect(value.unknownType).toMatchObject({ code: 'ERR_MALLCTL_TYPE' });
    // prof.dump is write-only when profiling is built in, absent otherwise (Debian: absent).
    expect(['ERR_MALLCTL_ACCESS', 'ERR_MALLCTL_NAME']).toContain((value.prof as { code: string }).code);
    expect(value.notString).toMatchObject({ code: 'ERR_INVALID_ARG_TYPE', name: 'TypeError' });
    expect(value.wrongType).toMatchObject({ code: 'ERR_INVALID_ARG_TYPE', name: 'TypeError' });
    expect(value.wrongBool).toMatchObject({ code: 'ERR_INVALID_ARG_TYPE', name: 'TypeError' });
    expect(value.readOnly).toMatchObject({ code: 'ERR_MALLCTL_ACCESS' });
    expect(value.writeBad).toMatchObject({ code: 'ERR_MALLCTL_NAME' });
    expect(value.purgeAction).toBeNull();
    expect(value.negative).toMatchObject({ code: 'ERR_OUT_OF_RANGE', name: 'RangeError' });
    expect(value.badDecay).toMatchObject({ code: 'ERR_MALLCTL_VALUE' });
    expect(value.decayWrite).toBe(5000);
    expect(value.zeroThreads).toMatchObject({ code: 'ERR_OUT_OF_RANGE', name: 'RangeError' });
    expect(value.oneThread).toBe(1);
    expect(value.bg).toEqual([false, true, true, false]);
  });

  it('rate-limits the epoch refresh, decays and purges, and works in a worker thread', async () => {
    const { value } = await runChild<{ a: Stats; b: Stats; c: Stats; d: Stats; decayed: Trim; purged: Trim; inWorker: { s: Stats; t: Trim } }>(
      `const x = require(LIB);
       const a = x.allocatorStatsSync();
       const b = x.allocatorStatsSync();
       await new Promise((r) => setTimeout(r, 150));
       const c = await x.allocatorStats();
       x.jemalloc.setEpochInterval(0);
       x.allocatorStatsSync();
       const d = x.allocatorStatsSync();
       const decayed = await x.jemalloc.decay();
       const purged = await x.jemalloc.purge();
       const { Worker } = require('node:worker_threads');
       const inWorker = await new Promise((resolve, reject) => {
         const w = new Worker('const x = require(' + JSON.stringify(LIB) + '); x.trim().then((t) => require("node:worker_threads").parentPort.postMessage({ s: x.allocatorStatsSync(), t }));', { eval: true });
         w.once('message', resolve);
         w.once('error', reject);
       });
       report({ a, b, c, d, decayed, purged, inWorker });`,
      { preload: lib! },
    );
    expect(value.a.raw.epochRefreshed).toBe(true);
    expect(value.b.raw.epochRefreshed).toBe(false);
    expect(value.b.raw.epochAgeMs).toBeGreaterThan(0);
    expect(value.b.notes.join(' ')).toMatch(/ms old/);
    expect(value.c.raw.epochRefreshed).toBe(true);
    expect(value.d.raw.epochRefreshed).toBe(true);
    expect(value.d.raw.epochCostMs).toBeGreaterThan(0);
    for (const t of [value.decayed, value.purged, value.inWorker.t]) {
      expect(t.supported).toBe(true);
      expect(t.releasedBytes).toBeGreaterThanOrEqual(0);
    }
    // Worker threads have their own per-environment state (MIB cache, epoch age).
    expect(value.inWorker.s.allocator.name).toBe('jemalloc');
    invariants(value.inWorker.s);
  });

  it('with MALLOC_CONF=background_thread:true, background threads are on and reported', async () => {
    const { value } = await runChild<{ config: Record<string, unknown>; s: Stats; t: Trim; threads: number }>(
      `const a = require(LIB);
       const { churn } = require(WORKLOAD);
       await churn({ workers: 2, bytesPerWorker: 64 << 20 });
       a.jemalloc.setEpochInterval(0);
       const s = await a.allocatorStats();
       const t = await a.trim();
       report({ config: a.jemalloc.config(), s, t, threads: a.jemalloc.mallctl.read('stats.background_thread.num_threads') });`,
      { preload: lib!, env: { MALLOC_CONF: 'background_thread:true' } },
    );
    expect(value.config['opt.background_thread']).toBe(true);
    expect(value.config['background_thread']).toBe(true);
    expect(value.threads).toBeGreaterThan(0);
    expect(value.s.raw.backgroundThread).toBe(true);
    invariants(value.s);
    expect(value.s.notes.join(' ')).not.toMatch(/background_thread is off/);
    expect(value.t.supported).toBe(true);
    expect(value.t.releasedBytes).toBeGreaterThanOrEqual(0);
    expect(value.t.heldBackAfter).toBeLessThanOrEqual(value.t.heldBackBefore);
  });
});

describe('the jemalloc namespace when jemalloc does not serve malloc', () => {
  test('refuses with ERR_ALLOCATOR_UNSUPPORTED', async () => {
    expect(api.detectAllocator().name).not.toBe('jemalloc');
    expect(() => api.jemalloc.mallctl.read('version')).toThrow(expect.objectContaining({ code: 'ERR_ALLOCATOR_UNSUPPORTED' }));
    expect(() => api.jemalloc.backgroundThread()).toThrow(expect.objectContaining({ code: 'ERR_ALLOCATOR_UNSUPPORTED' }));
    await expect(api.jemalloc.purge()).rejects.toMatchObject({ code: 'ERR_ALLOCATOR_UNSUPPORTED' });
    await expect(api.jemalloc.decay()).rejects.toMatchObject({ code: 'ERR_ALLOCATOR_UNSUPPORTED' });
    expect(() => api.jemalloc.setEpochInterval(-1)).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    // The package's own setting, made at start-up under any allocator.
    expect(() => api.jemalloc.setEpochInterval(api.jemalloc.epochInterval())).not.toThrow();
  });
});

describe('jemalloc native guards', () => {
  it('checks write types itself, refuses unsafe actions, bounds its MIB cache, and decays through the trim path', async () => {
    const { value } = await runFixture<{
      name: string;
      guards: Record<string, string | null>;
      grew: number;
      decay: { supported: boolean; counted: number; events: boolean[] };
    }>('jemalloc-native-guards.js', [], { preload: lib });
    expect(value.name).toBe('jemalloc');
    // Names jemalloc reads through a pointer refuse any other type, instead of crashing.
    for (const k of ['dssAsSize', 'dssAsUint64', 'hooksAsString', 'hooksAsSize', 'stringToNumber']) {
      expect([k, value.guards[k]]).toEqual([k, 'ERR_MALLCTL_TYPE']);
    }
    // Actions that crash the process or discard memory in use are refused, however the name is spelled.
    for (const k of ['tcacheDestroy', 'tcacheFlush', 'lookupWrite', 'lookupRead', 'createdArenaReset', 'arenaDestroySpelled', 'publicArenaReset']) {
      expect([k, value.guards[k]]).toEqual([k, 'ERR_MALLCTL_ACCESS']);
    }
    expect(value.guards.threadTcacheFlush).toBeNull();
    expect(value.guards.arenaPurge).toBeNull();
    expect(value.guards.dssAsString).toBeNull();
    expect(value.guards.decay).toBeNull();
    // 4000 distinct names averaging 5000 characters: about 20 MB if every one were cached. The
    // count is the whole process's malloc, V8's helper threads included (up to 2.1 MiB of theirs
    // on a busy machine): a fifth of the unbounded figure still tells a bounded cache from none.
    expect(value.grew).toBeLessThan(4 * MiB);
    expect(value.decay).toEqual({ supported: true, counted: 1, events: [true] });
  });
});
