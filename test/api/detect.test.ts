import { execFileSync } from 'node:child_process';
import { detectAllocator } from '../../src';
import { findLibrary, runChild, testIf } from '../helpers';

const glibcVersion = (): string => {
  const report = process.report.getReport() as { header: { glibcVersionRuntime?: string } };
  return report.header.glibcVersionRuntime ?? '';
};

describe('detectAllocator under glibc', () => {
  test('names glibc with the running glibc version', () => {
    const info = detectAllocator();
    expect(info.name).toBe('glibc');
    expect(info.version).toBe(glibcVersion());
    // Decided without a walk of glibc's arenas: the probe block lies in one of them.
    expect(info.method).toMatch(/glibc arena/);
    expect(info.library).toMatch(/libc\.so/);
    expect(info.inactive).toEqual([]);
    expect(info.preload.entries).toEqual([]);
  });

  test('is decided once and returns copies', () => {
    const a = detectAllocator();
    a.notes.push('changed by caller');
    (a as { name: string }).name = 'jemalloc';
    const b = detectAllocator();
    expect(b.name).toBe('glibc');
    expect(b.notes).not.toContain('changed by caller');
  });

  test('an LD_PRELOAD entry that did not load is reported', async () => {
    const { value } = await runChild<{ name: string; notes: string[]; entries: unknown[] }>(
      `const info = require(LIB).detectAllocator(); report({ name: info.name, notes: info.notes, entries: info.preload.entries });`,
      { preload: '/nonexistent/libjemalloc.so.2' },
    );
    expect(value.name).toBe('glibc');
    expect(value.entries).toEqual([{ entry: '/nonexistent/libjemalloc.so.2', loaded: false }]);
    expect(value.notes.join('\n')).toMatch(/LD_PRELOAD names \/nonexistent\/libjemalloc\.so\.2 but it is not loaded/);
  });
});

const tbb = findLibrary('libtbbmalloc_proxy.so.2');

describe('an allocator this package does not know', () => {
  testIf(tbb !== null, 'libtbbmalloc_proxy.so.2 not installed (apt-get install libtbbmalloc2)')(
    'is reported as unknown with nulls and notes; trim() is unsupported',
    async () => {
      const { value } = await runChild<{
        info: { name: string; notes: string[]; preload: { entries: Array<{ loaded: boolean }> } };
        stats: Record<string, unknown> & { notes: string[]; process: { rss: number } };
        trimmed: { supported: boolean; releasedBytes: number; notes: string[] };
      }>(
        `const a = require(LIB);
         const info = a.detectAllocator();
         const stats = await a.allocatorStats();
         const trimmed = await a.trim();
         report({ info, stats, trimmed });`,
        { preload: tbb! },
      );
      expect(value.info.name).toBe('unknown');
      expect(value.info.preload.entries[0].loaded).toBe(true);
      expect(value.info.notes.length).toBeGreaterThan(0);
      for (const k of ['allocated', 'resident', 'heldBack', 'heldBackRatio', 'releasable', 'mapped']) {
        expect(value.stats[k]).toBeNull();
      }
      expect(value.stats.process.rss).toBeGreaterThan(10 * 1024 * 1024);
      expect(value.stats.notes.join(' ')).toMatch(/not recognised/);
      expect(value.trimmed.supported).toBe(false);
      expect(value.trimmed.releasedBytes).toBe(0);
      expect(value.trimmed.notes.length).toBeGreaterThan(0);
    },
  );
});

test('detection agrees with ldd about the C library', () => {
  const out = execFileSync('ldd', ['--version'], { encoding: 'utf8' });
  expect(out).toMatch(new RegExp(detectAllocator().version!.replace('.', '\\.')));
});
