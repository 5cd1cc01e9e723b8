// Without a readable /proc (a sandbox, a mount namespace without it): numbers degrade to null
// with notes instead of throwing or being invented.
import { execFileSync } from 'node:child_process';
import type { AllocatorInfo, MemoryStats, TrimResult } from '../../src';
import { findLibrary, runFixture, testIf } from '../helpers';

// Hiding /proc needs a private mount namespace: root (or CAP_SYS_ADMIN) and unshare(1).
const HIDE_PROC = ['unshare', '-m', '--propagation', 'private', 'sh', '-c', 'mount -t tmpfs none /proc && exec "$0" "$@"'];

function canHideProc(): boolean {
  try {
    execFileSync(HIDE_PROC[0], [...HIDE_PROC.slice(1), 'true'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const hideable = canHideProc();
const it = testIf(hideable, 'cannot hide /proc in a private mount namespace (needs root and unshare -m)');
const tbb = findLibrary('libtbbmalloc_proxy.so.2');

describe('without /proc', () => {
  it('reports null with notes, never throws, and invents nothing', async () => {
    const { value } = await runFixture<{ procHidden: boolean; info: AllocatorInfo; sync: MemoryStats; stats: MemoryStats; trimmed: TrimResult }>(
      'no-proc.js',
      [],
      { prefix: HIDE_PROC, preload: '/lib/x86_64-linux-gnu/libc.so.6' },
    );
    expect(value.procHidden).toBe(true);
    expect(value.info.name).toBe('glibc');
    // LD_PRELOAD is set, but whether it loaded cannot be told: no claim that it failed.
    expect(value.info.preload.entries).toEqual([{ entry: '/lib/x86_64-linux-gnu/libc.so.6', loaded: null }]);
    expect(value.info.notes.some((n) => /not loaded/.test(n))).toBe(false);
    expect(value.info.notes.some((n) => /unknown: \/proc\/self\/maps cannot be read/.test(n))).toBe(true);
    for (const s of [value.sync, value.stats]) {
      expect(s.process).toEqual({ rss: null, rssAnon: null, rssFile: null, rssShmem: null, swap: null });
      // glibc's own counters need no /proc; residency does (the arena regions come from maps).
      expect(s.allocated).toBeGreaterThan(0);
      expect(s.resident).toBeNull();
      expect(s.heldBack).toBeNull();
      expect(s.v8.arrayBuffers).toBeNull();
      expect(s.v8.heapUsed).toBeGreaterThan(0);
      expect(s.notes.some((n) => /arena regions could not be located/.test(n))).toBe(true);
      expect(s.notes.some((n) => /process.memoryUsage\(\) failed/.test(n))).toBe(true);
      expect(s.notes.some((n) => /\/proc\/self cannot be read/.test(n))).toBe(true);
    }
    expect(value.trimmed.supported).toBe(true);
    expect(value.trimmed.releasedBytes).toBeNull();
    expect(value.trimmed.heldBackBefore).toBeNull();
    expect(value.trimmed.heldBackAfter).toBeNull();
  });

  testIf(hideable && tbb !== null, 'needs root, unshare -m and libtbbmalloc_proxy.so.2 (apt-get install libtbbmalloc2)')(
    'under an allocator it does not know, samples and trims give nulls too instead of rejecting',
    async () => {
      const { value } = await runFixture<{ procHidden: boolean; info: AllocatorInfo; sync: MemoryStats; stats: MemoryStats; trimmed: TrimResult }>(
        'no-proc.js',
        [],
        { prefix: HIDE_PROC, preload: tbb },
      );
      expect(value.procHidden).toBe(true);
      expect(value.info.name).toBe('unknown');
      for (const s of [value.sync, value.stats]) {
        expect(s.process).toEqual({ rss: null, rssAnon: null, rssFile: null, rssShmem: null, swap: null });
        expect(s.allocated).toBeNull();
        expect(s.notes.some((n) => /\/proc\/self cannot be read/.test(n))).toBe(true);
      }
      expect(value.trimmed.supported).toBe(false);
      expect(value.trimmed.releasedBytes).toBeNull();
    },
  );
});
