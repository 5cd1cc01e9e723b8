// tcmalloc (gperftools) via LD_PRELOAD of the real library in child processes.
import { ALLOCATOR_LIBRARIES, MiB, expectKnownInvariants as invariants, findLibrary, runChild, testIf } from '../../helpers';
import * as api from '../../../src';

const lib = findLibrary(ALLOCATOR_LIBRARIES.tcmalloc);
const it = testIf(lib !== null, 'libtcmalloc_minimal.so.4 not installed (apt-get install libtcmalloc-minimal4)');

interface Stats {
  allocated: number;
  resident: number;
  heldBack: number;
  releasable: number;
  mapped: number;
  raw: Record<string, number>;
  notes: string[];
}

describe('under tcmalloc', () => {
  it('reports its numbers, and trim() returns the free page-heap bytes it reported', async () => {
    const { value } = await runChild<{
      info: { name: string; version: string };
      idle: Stats;
      churned: Stats;
      t: { supported: boolean; releasedBytes: number; heldBackBefore: number; heldBackAfter: number };
      config: Record<string, unknown>;
    }>(
      `const a = require(LIB);
       const { churn } = require(WORKLOAD);
       const info = a.detectAllocator();
       const idle = await a.allocatorStats();
       const { release } = await churn({ workers: 4, bytesPerWorker: 80 << 20, keepAlive: true });
       const churned = await a.allocatorStats();
       const t = await a.trim();
       await release();
       report({ info, idle, churned, t, config: a.tcmalloc.config() });`,
      { preload: lib! },
    );
    expect(value.info.name).toBe('tcmalloc');
    expect(value.info.version).toMatch(/^2\.\d+/);
    invariants(value.idle);
    invariants(value.churned);
    // The address space it holds includes its metadata, as the resident pages do.
    for (const s of [value.idle, value.churned]) expect(s.mapped).toBeGreaterThanOrEqual(s.resident);
    expect(value.churned.heldBack).toBeGreaterThan(150 * MiB);
    expect(value.churned.releasable).toBeGreaterThan(100 * MiB);
    expect(value.t.supported).toBe(true);
    // Measured here: 191 MB free in the page heap, 189 MB released by ReleaseFreeMemory().
    const tolerance = Math.max(32 * MiB, 0.2 * value.churned.releasable);
    expect(Math.abs(value.t.releasedBytes - value.churned.releasable)).toBeLessThan(tolerance);
    // heldBack = what the release returned + what sits free in the thread/central/transfer
    // caches + metadata (measured: 238 MB held back, 189 MB released, 44 MB in caches).
    expect(value.t.releasedBytes).toBeLessThan(value.churned.heldBack + 16 * MiB);
    expect(value.t.releasedBytes).toBeGreaterThan(value.churned.heldBack - value.churned.raw.cacheFreeBytes - 48 * MiB);
    // What stays held back is what sits in the thread/central/transfer caches.
    expect(value.t.heldBackAfter).toBeLessThan(value.t.heldBackBefore - 100 * MiB);
    expect(value.config.releaseRate).toBe(1);
    expect(value.config['tcmalloc.max_total_thread_cache_bytes']).toBeGreaterThan(0);
  });

  it('takes every property of a sample from one statistics snapshot, and they match the properties read one by one', async () => {
    const { value } = await runChild<{ raw: Record<string, number | string>; props: Record<string, number>; stats: Record<string, number | string> }>(
      `const a = require(LIB);
       const { churn } = require(WORKLOAD);
       const { release } = await churn({ workers: 2, bytesPerWorker: 48 << 20, keepAlive: true });
       const s = a.allocatorStatsSync();
       const props = a.tcmalloc.properties();
       const stats = (await a.allocatorStats()).raw;
       await release();
       report({ raw: s.raw, props, stats });`,
      { preload: lib! },
    );
    for (const raw of [value.raw, value.stats]) {
      expect(raw.source).toBe('MallocExtension_GetStats');
      // Each figure as gperftools' own property reports it a moment later (idle workers: little moves).
      for (const name of ['generic.current_allocated_bytes', 'generic.heap_size', 'generic.total_physical_bytes', 'tcmalloc.pageheap_free_bytes',
        'tcmalloc.pageheap_unmapped_bytes', 'tcmalloc.current_total_thread_cache_bytes', 'tcmalloc.thread_cache_free_bytes',
        'tcmalloc.central_cache_free_bytes', 'tcmalloc.transfer_cache_free_bytes']) {
        expect(typeof raw[name]).toBe('number');
        expect(Math.abs((raw[name] as number) - value.props[name])).toBeLessThanOrEqual(4 * MiB);
      }
      // One snapshot: the parts stay within the whole, and what is left over is tcmalloc's metadata.
      const n = (k: string): number => raw[k] as number;
      const parts = n('generic.current_allocated_bytes') + n('tcmalloc.pageheap_free_bytes') + n('tcmalloc.thread_cache_free_bytes') +
        n('tcmalloc.central_cache_free_bytes') + n('tcmalloc.transfer_cache_free_bytes');
      expect(parts).toBeLessThanOrEqual(n('generic.total_physical_bytes'));
      expect(n('generic.total_physical_bytes') - parts).toBeLessThan(64 * MiB);
    }
    expect(value.raw['tcmalloc.pageheap_free_bytes'] as number).toBeGreaterThan(16 * MiB);
  });

  it('reads properties, and gets and sets the release rate', async () => {
    const { value } = await runChild<Record<string, unknown>>(
      `const { tcmalloc } = require(LIB);
       const err = (f) => { try { f(); return null; } catch (e) { return { code: e.code, name: e.name }; } };
       const before = tcmalloc.releaseRate();
       const set = tcmalloc.releaseRate(5);
       const again = tcmalloc.releaseRate();
       tcmalloc.releaseRate(before);
       const max = tcmalloc.property('tcmalloc.max_total_thread_cache_bytes');
       tcmalloc.setProperty('tcmalloc.max_total_thread_cache_bytes', 64 << 20);
       report({
         before, set, again,
         allocated: tcmalloc.property('generic.current_allocated_bytes'),
         unknown: tcmalloc.property('no.such.property'),
         all: Object.keys(tcmalloc.properties()).length,
         maxAfter: tcmalloc.property('tcmalloc.max_total_thread_cache_bytes'), max,
         badRate: err(() => tcmalloc.releaseRate(-1)),
         badName: err(() => tcmalloc.property(7)),
         refused: err(() => tcmalloc.setProperty('no.such.property', 1)),
       });`,
      { preload: lib! },
    );
    expect(value.before).toBe(1);
    expect(value.set).toBe(5);
    expect(value.again).toBe(5);
    expect(value.allocated).toBeGreaterThan(0);
    expect(value.unknown).toBeNull();
    expect(value.all).toBeGreaterThanOrEqual(9);
    expect(value.maxAfter).toBe(64 * MiB);
    expect(value.badRate).toMatchObject({ code: 'ERR_OUT_OF_RANGE' });
    expect(value.badName).toMatchObject({ code: 'ERR_INVALID_ARG_TYPE', name: 'TypeError' });
    expect(value.refused).toMatchObject({ code: 'ERR_TCMALLOC_PROPERTY' });
  });
});

test('the tcmalloc namespace refuses when tcmalloc does not serve malloc', async () => {
  expect(() => api.tcmalloc.releaseRate()).toThrow(expect.objectContaining({ code: 'ERR_ALLOCATOR_UNSUPPORTED' }));
  expect(() => api.tcmalloc.property('generic.heap_size')).toThrow(expect.objectContaining({ code: 'ERR_ALLOCATOR_UNSUPPORTED' }));
  await expect(api.tcmalloc.releaseFreeMemory()).rejects.toMatchObject({ code: 'ERR_ALLOCATOR_UNSUPPORTED' });
});
