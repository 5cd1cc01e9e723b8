// glibc malloc (ptmalloc2): what the native records mean. Held-back memory comes from the
// residency of the arena regions (mincore over [heap] and the thread-arena heaps), not from
// fordblks: malloc_trim() drops pages but leaves their chunks in the bins, so fordblks does not
// move when RSS does.
// The module's own binding: the global `performance` is an accessor, looked up on every sample.
import { performance } from 'node:perf_hooks';
import type { RawValue } from '../../core/types';
import type { Fields, NativeSample, NativeTrim } from '../../core/wire';
import type { AllocatorNumbers, BackendTrim } from '../types';
import { mallocInfoFromRows, type MallocInfoWire } from './mallocinfo';
import { glibcReleasable } from './releasable';

export const NS_PER_MS = 1e6;

/**
 * How old the arena residency in a JS-thread sample, or the one a trim starts from, may be.
 * Measuring it walks the page table of every arena page (a few ns a page: about a millisecond
 * per GiB of arenas, several times the rest of a sample and several times malloc_trim()
 * itself), while it changes only when pages are first touched or given back. A sync sample
 * reuses a measurement this recent when glibc's arenas have neither grown nor shrunk since and
 * no trim ran (native/glibc/ checks), and says so in a note; the counters (allocated) are
 * always read afresh. A trim within this bound of a measurement starts from it and gauges
 * nothing (the RSS it released says what went). The same bound as jemalloc's epoch interval.
 */
export const RESIDENCY_MAX_AGE_MS = 100;
// One string for every such sample (the age itself is raw.arenaResidencyAgeMs).
const REUSED_RESIDENCY_NOTE =
  `arena residency (resident, heldBack) is reused from a measurement up to ${RESIDENCY_MAX_AGE_MS} ms old ` +
  '(raw.arenaResidencyAgeMs says how old): allocatorStatsSync() measures it at most that often while ' +
  "glibc's arenas keep their size and no trim runs; allocated is current";
/**
 * Less room than this between [heap] and the next mapping and the program break is taken to be
 * blocked: a main-arena extension asks brk() for what it needs plus M_TOP_PAD (128 KiB by
 * default), so most fail, and glibc maps the memory elsewhere. Now and then V8 reserves its code
 * range right above [heap]: it wants it near the embedded builtins, and under a non-PIE node
 * (Debian 12's node 20, say) [heap] starts near them.
 */
const BLOCKED_BREAK_ROOM_BYTES = 1024 * 1024;

export const MALLINFO_FIELDS = ['arena', 'ordblks', 'smblks', 'hblks', 'hblkhd', 'usmblks', 'fsmblks', 'uordblks', 'fordblks', 'keepcost'] as const;

// The fields read from the native records, by the names native/glibc/ declares.
export const SHAPE = {
  sample: [
    'source',
    ...MALLINFO_FIELDS,
    'arenasOk',
    'mainMapped',
    'mainResident',
    'threadMapped',
    'threadResident',
    'threadTail',
    'breakRoom',
    'heaps',
    'arenas',
    'matches',
    'scans',
    'mallocInfo',
    'residencyAgeNs',
  ],
  sampleArgs: ['releasable', 'residencyMaxAgeNs'],
  gauge: ['arenasOk', 'mainResident', 'threadResident'],
  trim: ['keptMainResident', 'keptThreadResident', 'keptAgeNs'],
  trimArgs: ['pad', 'residencyMaxAgeNs'],
} as const;

export type GlibcSample = NativeSample<(typeof SHAPE.sample)[number]>;
export type GlibcTrim = NativeTrim<(typeof SHAPE.gauge)[number], (typeof SHAPE.trim)[number]>;
type GlibcGauge = Fields<(typeof SHAPE.gauge)[number]>;
// A serving sample's fields: the native layer fills every one of them.
type Counted = { readonly [K in keyof GlibcSample['fields']]: number };

/** What the numbers of a sample need besides the sample: the addon's source names and the page size. */
export interface GlibcContext {
  /** Where the counters came from (the addon's list; malloc_info() carries them when releasable is asked for). */
  sources: readonly string[];
  pageSize: () => number;
  /** The names of malloc_info()'s rows. */
  rows: MallocInfoWire;
}

const NOT_SERVING = 'glibc malloc does not serve malloc() in this process: its counters are not reported';

function unknownBeyond(allocated: number | null, mapped: number | null, raw: Record<string, RawValue>, notes: string[]): AllocatorNumbers {
  return { allocated, resident: null, heldBack: null, releasable: null, mapped, raw, notes };
}

/** mallinfo2's counters as raw figures, and which call gave them. */
function counters(v: Counted, sources: readonly string[], notes: string[]): Record<string, RawValue> {
  // One literal rather than key by key: this runs on every sample.
  const raw: Record<string, RawValue> = {
    source: sources[v.source] ?? 'mallinfo2',
    arena: v.arena,
    ordblks: v.ordblks,
    smblks: v.smblks,
    hblks: v.hblks,
    hblkhd: v.hblkhd,
    usmblks: v.usmblks,
    fsmblks: v.fsmblks,
    uordblks: v.uordblks,
    fordblks: v.fordblks,
    keepcost: v.keepcost,
  } satisfies Record<'source' | (typeof MALLINFO_FIELDS)[number], RawValue>;
  if (sources[v.source] === 'mallinfo') notes.push('mallinfo2() is missing (glibc < 2.33): mallinfo() counters wrap past 4 GiB');
  return raw;
}

/** The arena regions' residency as raw figures. */
function residency(v: Counted, raw: Record<string, RawValue>, notes: string[]): void {
  raw.arenaResidentBytes = v.mainResident + v.threadResident;
  raw.mainArenaResidentBytes = v.mainResident;
  raw.threadArenaResidentBytes = v.threadResident;
  raw.arenaMappedBytes = v.mainMapped + v.threadMapped;
  raw.arenas = v.arenas;
  raw.threadArenaHeaps = v.heaps;
  raw.regionScans = v.scans;
  const residencyAgeMs = (v.residencyAgeNs ?? 0) / NS_PER_MS;
  raw.arenaResidencyAgeMs = residencyAgeMs;
  if (residencyAgeMs > 0) notes.push(REUSED_RESIDENCY_NOTE);
  raw.breakRoomBytes = v.breakRoom >= 0 ? v.breakRoom : null;
}

/**
 * When the regions found do not add up to mallinfo.arena: the main-arena memory they leave out
 * because the break is blocked (0 when none is known), or null when the residency is short by an
 * unknown amount.
 */
function outsideRegions(v: Counted, raw: Record<string, RawValue>, notes: string[]): number | null {
  if (v.matches === 1) return 0;
  // When the break cannot grow the shortfall is no race: it is main-arena memory continued in
  // mmap()ed memory, which nothing tells apart from other mappings.
  const outside = v.arena - v.mainMapped - v.threadMapped;
  const blocked = v.breakRoom >= 0 && v.breakRoom < BLOCKED_BREAK_ROOM_BYTES && outside > 0 && raw.source !== 'mallinfo';
  if (blocked) {
    // For good, not for one sample: lower bounds (the regions, and no less than allocated)
    // serve better than null in every sample of such a process.
    notes.push(
      `${outside} bytes of glibc's arena memory lie outside [heap] and the thread heaps: the program break cannot grow ` +
        `(another mapping starts ${v.breakRoom} bytes above [heap], such as V8's code range), so glibc continues the main ` +
        'arena in mmap()ed memory, which nothing tells apart from other anonymous mappings: resident and heldBack leave ' +
        'that memory out (they are at least what is shown, resident no less than allocated), and releasable counts the ' +
        'thread arenas only',
    );
    return outside;
  }
  const cause = 'arena regions found in /proc/self/maps do not add up to mallinfo.arena';
  if (v.mainResident + v.threadResident < v.uordblks) {
    // Fewer resident bytes than glibc counts in use, in regions that do not make up glibc's
    // total: the regions missed some arena memory, so the residency is short by an unknown amount.
    notes.push(
      `${cause} and hold less than the ${v.uordblks} bytes allocated in arenas (the arenas changed while sampling, or ` +
        'some arena memory lies outside [heap] and the thread heaps): resident and held-back bytes are unknown',
    );
    return null;
  }
  notes.push(`${cause} (the heap changed while sampling, or some arena memory lies outside [heap] and the thread heaps)`);
  return 0;
}

/** Resident: the arenas' resident pages plus the mmap()ed blocks, and no less than allocated. */
function residentBytes(v: Counted, outsideHeap: number, notes: string[]): number {
  const arenaResident = v.mainResident + v.threadResident;
  // Blocks from mmap (hblkhd) are counted as resident in full: they are returned to the OS on free.
  if (arenaResident >= v.uordblks) return arenaResident + v.hblkhd;
  // With part of the main arena out of sight the note above says so; otherwise the rest was never touched.
  if (outsideHeap === 0) {
    notes.push(
      `${v.uordblks - arenaResident} bytes allocated in arenas were never touched (not resident); ` +
        'resident is shown as no less than allocated',
    );
  }
  return v.uordblks + v.hblkhd;
}

/** What malloc_trim() would return now, from the malloc_info() rows when the sample carries them. */
function releasableBytes(
  sample: GlibcSample,
  v: Counted,
  heldBack: number,
  outsideHeap: number,
  context: GlibcContext,
  pad: number,
  raw: Record<string, RawValue>,
  notes: string[],
): number | null {
  if (v.mallocInfo === 2) notes.push('malloc_info() is not available: releasable is unknown');
  if (v.mallocInfo !== 1) return null;
  const info = mallocInfoFromRows(sample.tail, 0, context.rows);
  const regions = {
    mainMapped: v.mainMapped,
    mainResident: v.mainResident,
    mainOutside: outsideHeap,
    threadMapped: v.threadMapped,
    threadResident: v.threadResident,
    threadTail: v.threadTail,
  };
  const estimate = glibcReleasable(info, regions, context.pageSize(), pad);
  raw.freeChunks = info.totals.rest.count + info.totals.fast.count;
  raw.freePageBytes = estimate.freePages;
  raw.freePagesNotResident = estimate.nonResident;
  raw.threadHeapUntouchedTailBytes = v.threadTail;
  return Math.min(heldBack, estimate.bytes);
}

export function glibcNumbers(sample: GlibcSample, context: GlibcContext, pad = 0): AllocatorNumbers {
  const v = sample.fields as Counted;
  if (!sample.serving || !v.source) return unknownBeyond(null, null, {}, [NOT_SERVING]);
  const notes: string[] = [];
  const raw = counters(v, context.sources, notes);
  const allocated = v.uordblks + v.hblkhd;
  const mapped = v.arena + v.hblkhd;
  if (v.arenasOk !== 1) {
    notes.push('arena regions could not be located: resident and held-back bytes are unknown (fordblks is only an upper bound)');
    return unknownBeyond(allocated, mapped, raw, notes);
  }
  residency(v, raw, notes);
  const outsideHeap = outsideRegions(v, raw, notes);
  if (outsideHeap === null) return unknownBeyond(allocated, mapped, raw, notes);
  const resident = residentBytes(v, outsideHeap, notes);
  const heldBack = resident - allocated;
  const releasable = releasableBytes(sample, v, heldBack, outsideHeap, context, pad, raw, notes);
  return { allocated, resident, heldBack, releasable, mapped, raw, notes };
}

/**
 * Bytes allocated in arenas (uordblks) as of this thread's last sample. A trim measures arena
 * residency before and after (lock-free) and takes allocated from here: counting it afresh
 * would walk every free chunk under each arena's lock, stalling every thread that allocates
 * for many times what malloc_trim() itself takes, and allocated barely moves across a trim.
 */
export class AllocatedCount {
  uordblks = 0;
  at = 0;
  counted = false;

  /** From a sample; ignored when glibc does not serve malloc. */
  record(sample: GlibcSample): void {
    const uordblks = sample.fields.uordblks;
    if (!sample.serving || !sample.fields.source || uordblks === null) return;
    this.uordblks = uordblks;
    this.at = performance.now();
    this.counted = true;
  }
}

const arenaResident = (g: GlibcGauge): number | null =>
  g.arenasOk === 1 && g.mainResident !== null && g.threadResident !== null ? g.mainResident + g.threadResident : null;

export function glibcTrimOutcome(t: GlibcTrim, count: AllocatedCount): BackendTrim {
  const notes: string[] = [];
  const released = t.rssBefore !== null && t.rssAfter !== null ? Math.max(0, t.rssBefore - t.rssAfter) : null;
  const kept = t.fields;
  // Either a recent measurement stands for the residency before (after = before less what RSS
  // lost), or the residency is gauged after the trim (before = after plus what RSS lost):
  // native/glibc/ says why only one of the two is measured.
  const fromKept = kept.keptAgeNs !== null && kept.keptMainResident !== null && kept.keptThreadResident !== null;
  let before: number | null;
  let after: number | null;
  if (fromKept) {
    before = kept.keptMainResident! + kept.keptThreadResident!;
    after = released !== null ? Math.max(0, before - released) : null;
  } else {
    after = arenaResident(t.after);
    before = after !== null && released !== null ? after + released : null;
  }
  let heldBackBefore: number | null = null;
  let heldBackAfter: number | null = null;
  if (after === null || before === null) {
    notes.push('arena regions or RSS could not be read around the trim: held-back bytes before and after are unknown');
  } else if (!count.counted) {
    notes.push(
      'held-back bytes before and after are unknown: no sample in this thread has counted the allocated bytes yet ' +
        '(counting them during the trim would walk every free chunk under the arenas’ locks)',
    );
  } else {
    heldBackBefore = Math.max(0, before - count.uordblks);
    heldBackAfter = Math.max(0, after - count.uordblks);
    const residency = fromKept
      ? `arena residency measured ${(kept.keptAgeNs! / NS_PER_MS).toFixed(1)} ms before the trim (after: less the RSS it released)`
      : 'arena residency measured after the trim (before: plus the RSS it released)';
    notes.push(
      `held back before and after: ${residency}, ` +
        `less the bytes allocated in arenas as counted by the sample ${Math.round(performance.now() - count.at)} ms earlier`,
    );
  }
  return {
    supported: true,
    rssBefore: t.rssBefore,
    rssAfter: t.rssAfter,
    heldBackBefore,
    heldBackAfter,
    durationMs: t.durationNs / NS_PER_MS,
    notes,
  };
}
