// glibc: held-back numbers that agree with what malloc_trim() then gives back to the OS.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { glibc, type MemoryStats, type TrimResult } from '../../../src';
import { hasGcc, tempDir } from '../../cli/helpers';
import { expectGlibcTrimAgrees, MiB, runChild, runFixture, testIf } from '../../helpers';

interface Agreement {
  before: { heldBack: number; releasable: number; resident: number; allocated: number; rssAnon: number; fordblks: number };
  trimmed: { releasedBytes: number; heldBackBefore: number; heldBackAfter: number; rssBefore: number; rssAfter: number; durationMs: number; supported: boolean };
  after: { heldBack: number; rssAnon: number; fordblks: number };
}

const agreementCode = (trimCall: string) => `
  const a = require(LIB);
  const { churn } = require(WORKLOAD);
  await churn({ workers: 4, bytesPerWorker: 96 << 20 });
  const s = await a.allocatorStats();
  const t = ${trimCall};
  const s2 = await a.allocatorStats();
  report({
    before: { heldBack: s.heldBack, releasable: s.releasable, resident: s.resident, allocated: s.allocated, rssAnon: s.process.rssAnon, fordblks: s.raw.fordblks },
    trimmed: t,
    after: { heldBack: s2.heldBack, rssAnon: s2.process.rssAnon, fordblks: s2.raw.fordblks },
  });`;

function checkAgreement(v: Agreement): void {
  // The churn leaves hundreds of MB held back in the worker arenas.
  expect(v.before.heldBack).toBeGreaterThan(200 * MiB);
  expectGlibcTrimAgrees(v.before, v.trimmed, v.after);
  // Right after the trim, little is held back.
  expect(v.trimmed.heldBackAfter).toBeLessThan(0.15 * v.trimmed.heldBackBefore);
  expect(v.before.rssAnon - v.after.rssAnon).toBeGreaterThan(0.8 * v.before.heldBack);
  // fordblks does not follow RSS: trimmed pages stay in the bins. That is why heldBack
  // comes from residency.
  expect(v.after.fordblks).toBeGreaterThan(0.8 * v.before.fordblks);
  expect(v.trimmed.durationMs).toBeGreaterThan(0);
}

describe('glibc held-back memory agrees with the OS', () => {
  test('trim() (threadpool) releases what heldBack said', async () => {
    const { value } = await runChild<Agreement>(agreementCode('await a.trim()'));
    checkAgreement(value);
  });

  test('trimSync() releases what heldBack said', async () => {
    const { value } = await runChild<Agreement>(agreementCode('a.trimSync()'));
    checkAgreement(value);
  });
});

describe('fragmentation: held back is not the same as releasable', () => {
  test('releasable predicts what a trim returns when much of heldBack is fragmented', async () => {
    const { value } = await runChild<{ heldBack: number; releasable: number; released: number; notes: string[] }>(`
      const a = require(LIB);
      const { collect } = require(WORKLOAD);
      // Mixed sizes from 100 B to 6 KB, two of every three freed: free chunks are small and
      // scattered between live ones, so many pages stay partly in use.
      const all = [];
      let x = 12345;
      for (let i = 0; i < 240000; i++) {
        x = (x * 1103515245 + 12345) & 0x7fffffff;
        const b = Buffer.allocUnsafeSlow(100 + (x % 5900));
        b.fill(1);
        all.push(b);
      }
      const kept = all.filter((_, i) => i % 3 === 0);
      all.length = 0;
      collect();
      await new Promise((r) => setTimeout(r, 300));
      const s = await a.allocatorStats();
      const t = await a.trim();
      report({ heldBack: s.heldBack, releasable: s.releasable, released: t.releasedBytes, notes: s.notes, kept: kept.length });`);
    expect(value.heldBack).toBeGreaterThan(200 * MiB);
    // A large part of what is held back cannot be returned...
    expect(value.releasable).toBeLessThan(0.75 * value.heldBack);
    expect(value.notes.join(' ')).toMatch(/fragmentation/);
    // ...and releasable says how much can.
    const tolerance = Math.max(0.2 * value.released, 16 * MiB);
    expect(Math.abs(value.releasable - value.released)).toBeLessThanOrEqual(tolerance);
  });
});

// When brk() cannot grow the heap (something is mapped at the break), glibc continues the main
// arena in mmap()ed memory, which nothing tells apart from other anonymous mappings. A preloaded
// library maps PROT_NONE right above the break before node starts.
describe('main arena outside [heap] (the program break blocked)', () => {
  let dir: string;
  let blocker: string;
  beforeAll(() => {
    dir = tempDir();
    blocker = path.join(dir, 'block-break.so');
    if (hasGcc) execFileSync('gcc', ['-shared', '-fPIC', '-O1', '-o', blocker, path.join(__dirname, 'fixtures', 'block-break.c')]);
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
  const withGcc = testIf(hasGcc, 'no C compiler (apt-get install gcc libc6-dev)');
  type Outcome = { sample: MemoryStats; trim: TrimResult; heap: string | null };

  withGcc('most memory there: lower bounds (resident no less than allocated), with a note naming the cause', async () => {
    const { value } = await runFixture<Outcome>('outside-heap.js', ['main'], { preload: blocker });
    const s = value.sample;
    expect(s.allocator.name).toBe('glibc');
    // 64 MiB written in the main thread, none of it in [heap] (a few pages at most).
    expect(s.allocated!).toBeGreaterThan(64 * MiB);
    const [start, end] = value.heap!.split(' ')[0].split('-').map((x) => parseInt(x, 16));
    expect(end - start).toBeLessThan(4 * MiB);
    expect(Number(s.raw.arena)).toBeGreaterThan(Number(s.raw.arenaMappedBytes) + 64 * MiB);
    // Not null in every sample of such a process: what can be said, as lower bounds.
    expect(s.resident).toBe(s.allocated);
    expect(s.heldBack).toBe(0);
    // The main arena's free pages are not promised: they can no longer be told resident or not.
    expect(s.releasable!).toBeLessThan(8 * MiB);
    // Said for what it is: the break is blocked (the preloaded mapping sits right above [heap]).
    expect(s.raw.breakRoomBytes).toBe(0);
    expect(s.notes.join(' ')).toMatch(/lie outside \[heap\] and the thread heaps: the program break cannot grow .*they are at least what is shown, resident no less than allocated\)/);
    expect(s.notes.join(' ')).not.toMatch(/never touched/);
    // glibc still trims it: the freed half goes back.
    expect(value.trim.supported).toBe(true);
    expect(value.trim.releasedBytes!).toBeGreaterThan(16 * MiB);
  });

  withGcc('worker arenas hold the rest: numbers are lower bounds, releasable counts the thread arenas only', async () => {
    const { value } = await runFixture<Outcome>('outside-heap.js', ['workers'], { preload: blocker });
    const s = value.sample;
    expect(s.allocator.name).toBe('glibc');
    expect(Number(s.raw.arena)).toBeGreaterThan(Number(s.raw.arenaMappedBytes) + 8 * MiB);
    expect(s.notes.join(' ')).toMatch(/the program break cannot grow .*they are at least what is shown.*\), and releasable counts the thread arenas only/);
    // The two worker arenas are seen: 200 MiB churned there.
    expect(s.heldBack!).toBeGreaterThan(150 * MiB);
    expect(s.releasable!).toBeGreaterThan(150 * MiB);
    // Never more than a trim returns (the main arena's free pages are not promised).
    expect(s.releasable!).toBeLessThanOrEqual(value.trim.releasedBytes! + 8 * MiB);
    expect(s.heldBack!).toBeLessThanOrEqual(s.process.rssAnon!);
  });
});

describe('glibc namespace', () => {
  test('mallinfo2() and mallinfo2Sync() read the counters', async () => {
    const mi = await glibc.mallinfo2();
    expect(mi.source).toBe('mallinfo2');
    expect(mi.uordblks).toBeGreaterThan(0);
    expect(mi.arena).toBeGreaterThanOrEqual(mi.uordblks);
    const sync = glibc.mallinfo2Sync();
    expect(Object.keys(sync).sort()).toEqual(Object.keys(mi).sort());
  });

  test('mallocInfo() parses one object per arena', async () => {
    const info = await glibc.mallocInfo();
    expect(info.arenas.length).toBeGreaterThanOrEqual(1);
    expect(info.arenas[0].index).toBe(0);
    for (const arena of info.arenas) {
      expect(arena.systemCurrent).toBeGreaterThan(0);
      expect(arena.rest.count).toBeGreaterThanOrEqual(1); // the top chunk
      expect(arena.top).toBeLessThanOrEqual(arena.rest.size);
      for (const b of arena.buckets) expect(b.to).toBeGreaterThanOrEqual(b.from);
    }
    const sum = info.arenas.reduce((n, a) => n + a.systemCurrent, 0);
    expect(sum).toBe(info.totals.systemCurrent);
    expect(glibc.mallocInfoSync().arenas.length).toBeGreaterThanOrEqual(1);
  });

  test('mallopt(M_MMAP_THRESHOLD) really changes where glibc puts a 4 MiB block', async () => {
    const { value } = await runChild<{ arenaGrowth: number; mmapGrowth: number }>(`
      const { glibc } = require(LIB);
      const keep = [];
      glibc.mallopt('M_MMAP_THRESHOLD', 32 << 20);
      let mi = glibc.mallinfo2Sync();
      keep.push(Buffer.alloc(4 << 20, 1));
      const arenaGrowth = glibc.mallinfo2Sync().hblkhd - mi.hblkhd;
      glibc.mallopt('M_MMAP_THRESHOLD', 1 << 20);
      mi = glibc.mallinfo2Sync();
      keep.push(Buffer.alloc(4 << 20, 1));
      const mmapGrowth = glibc.mallinfo2Sync().hblkhd - mi.hblkhd;
      report({ arenaGrowth, mmapGrowth });`);
    expect(value.arenaGrowth).toBeLessThan(4 * MiB);
    expect(value.mmapGrowth).toBeGreaterThanOrEqual(4 * MiB);
  });

  test('glibc.trim() is the measured trim', async () => {
    const r = await glibc.trim({ pad: 0 });
    expect(r.supported).toBe(true);
    expect(r.allocator.name).toBe('glibc');
    expect(r.releasedBytes).toBeGreaterThanOrEqual(0);
  });
});
