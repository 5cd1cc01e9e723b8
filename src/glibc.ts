// The glibc namespace: glibc's own calls, for when the unified numbers are not enough.
// glibc malloc (ptmalloc2). Held-back memory comes from the residency of the arena regions
// (mincore over [heap] and the thread-arena heaps), not from fordblks: malloc_trim() drops
// pages but leaves their chunks in the bins, so fordblks does not move when RSS does.
// The module's own binding: the global `performance` is an accessor, looked up on every sample.
import { performance } from 'node:perf_hooks';
import { binding, Layout, nativeBackend, type Fields, type NativeMallinfo, type NativeSample, type NativeTrim } from './binding';
import { registerBackend } from './backends';
import { backendOver } from './backends/native';
import type { AllocatorNumbers, BackendSample, BackendTrim } from './backends/types';
import { requireAllocator } from './detect';
import { keepCallerStack, typeError, unsupported, withCode } from './errors';
import { mallocInfoFromRows, type MallocInfo } from './mallocinfo';
import { glibcReleasable } from './releasable';
import { trim as unifiedTrim } from './trim';
import type { RawValue, TrimOptions, TrimResult } from './types';
import { integer } from './validate';

// ---- Numbers: what the native records mean ----

const NS_PER_MS = 1e6;

/**
 * How old the arena residency in a JS-thread sample, or the one a trim starts from, may be.
 * Measuring it walks the page table of every arena page (a few ns a page: about a millisecond
 * per GiB of arenas, several times the rest of a sample and several times malloc_trim()
 * itself), while it changes only when pages are first touched or given back. A sync sample
 * reuses a measurement this recent when glibc's arenas have neither grown nor shrunk since and
 * no trim ran (native/glibc.cc checks), and says so in a note; the counters (allocated) are
 * always read afresh. A trim within this bound of a measurement starts from it and gauges
 * nothing (the RSS it released says what went). The same bound as jemalloc's epoch interval.
 */
const RESIDENCY_MAX_AGE_MS = 100;
// One string for every such sample (the age itself is raw.arenaResidencyAgeMs).
const REUSED_RESIDENCY_NOTE =
  `arena residency (resident, heldBack) is reused from a measurement up to ${RESIDENCY_MAX_AGE_MS} ms old ` +
  '(raw.arenaResidencyAgeMs says how old): allocatorStatsSync() measures it at most that often while ' +
  "glibc's arenas keep their size and no trim runs; allocated is current";
let pageSize: number | undefined;
const page = (): number => (pageSize ??= binding.glibcInfo().pageSize);
/**
 * Less room than this between [heap] and the next mapping and the program break is taken to be
 * blocked: a main-arena extension asks brk() for what it needs plus M_TOP_PAD (128 KiB by
 * default), so most fail, and glibc maps the memory elsewhere. Now and then V8 reserves its code
 * range right above [heap]: it wants it near the embedded builtins, and under a non-PIE node
 * (Debian 12's node 20, say) [heap] starts near them.
 */
const BLOCKED_BREAK_ROOM_BYTES = 1024 * 1024;

const MALLINFO_FIELDS = ['arena', 'ordblks', 'smblks', 'hblks', 'hblkhd', 'usmblks', 'fsmblks', 'uordblks', 'fordblks', 'keepcost'] as const;

// The fields read from the native records, by the names native/glibc.cc declares.
const SHAPE = {
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
const native = nativeBackend('glibc', SHAPE);

type GlibcSample = NativeSample<(typeof SHAPE.sample)[number]>;
type GlibcGauge = Fields<(typeof SHAPE.gauge)[number]>;

// Where the counters came from (the addon's list; malloc_info() carries them when releasable is asked for).
const SOURCES = binding.glibcWire.mallinfoSources;

function glibcNumbers(sample: GlibcSample, pad = 0): AllocatorNumbers {
  const v = sample.fields as { readonly [K in keyof GlibcSample['fields']]: number };
  const notes: string[] = [];
  const source = v.source;
  if (!sample.serving || !source) {
    notes.push('glibc malloc does not serve malloc() in this process: its counters are not reported');
    return { allocated: null, resident: null, heldBack: null, releasable: null, mapped: null, raw: {}, notes };
  }
  // One literal rather than key by key: this runs on every sample.
  const raw: Record<string, RawValue> = {
    source: SOURCES[source] ?? 'mallinfo2',
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
  if (SOURCES[source] === 'mallinfo') notes.push('mallinfo2() is missing (glibc < 2.33): mallinfo() counters wrap past 4 GiB');
  const uordblks = v.uordblks;
  const hblkhd = v.hblkhd;
  const allocated = uordblks + hblkhd;
  const mapped = v.arena + hblkhd;
  if (v.arenasOk !== 1) {
    notes.push('arena regions could not be located: resident and held-back bytes are unknown (fordblks is only an upper bound)');
    return { allocated, resident: null, heldBack: null, releasable: null, mapped, raw, notes };
  }
  const mainResident = v.mainResident;
  const threadResident = v.threadResident;
  const arenaResident = mainResident + threadResident;
  raw.arenaResidentBytes = arenaResident;
  raw.mainArenaResidentBytes = mainResident;
  raw.threadArenaResidentBytes = threadResident;
  raw.arenaMappedBytes = v.mainMapped + v.threadMapped;
  raw.arenas = v.arenas;
  raw.threadArenaHeaps = v.heaps;
  raw.regionScans = v.scans;
  const residencyAgeMs = (v.residencyAgeNs ?? 0) / NS_PER_MS;
  raw.arenaResidencyAgeMs = residencyAgeMs;
  if (residencyAgeMs > 0) notes.push(REUSED_RESIDENCY_NOTE);
  raw.breakRoomBytes = v.breakRoom >= 0 ? v.breakRoom : null;
  // Arena memory the regions leave out because the break is blocked (0: none known).
  let outsideHeap = 0;
  if (v.matches !== 1) {
    // When the break cannot grow the shortfall is no race: it is main-arena memory continued in
    // mmap()ed memory, which nothing tells apart from other mappings.
    const outside = v.arena - v.mainMapped - v.threadMapped;
    const blocked = v.breakRoom >= 0 && v.breakRoom < BLOCKED_BREAK_ROOM_BYTES && outside > 0 && raw.source !== 'mallinfo';
    const cause = blocked
      ? `${outside} bytes of glibc's arena memory lie outside [heap] and the thread heaps: the program break cannot grow ` +
        `(another mapping starts ${v.breakRoom} bytes above [heap], such as V8's code range), so glibc continues the main ` +
        'arena in mmap()ed memory, which nothing tells apart from other anonymous mappings'
      : 'arena regions found in /proc/self/maps do not add up to mallinfo.arena';
    if (blocked) {
      // For good, not for one sample: lower bounds (the regions, and no less than allocated)
      // serve better than null in every sample of such a process.
      outsideHeap = outside;
      notes.push(
        `${cause}: resident and heldBack leave that memory out (they are at least what is shown, resident no less than ` +
          'allocated), and releasable counts the thread arenas only',
      );
    } else if (arenaResident < uordblks) {
      // Fewer resident bytes than glibc counts in use, in regions that do not make up glibc's
      // total: the regions missed some arena memory, so the residency is short by an unknown amount.
      notes.push(
        `${cause} and hold less than the ${uordblks} bytes allocated in arenas (the arenas changed while sampling, or ` +
          'some arena memory lies outside [heap] and the thread heaps): resident and held-back bytes are unknown',
      );
      return { allocated, resident: null, heldBack: null, releasable: null, mapped, raw, notes };
    } else {
      notes.push(`${cause} (the heap changed while sampling, or some arena memory lies outside [heap] and the thread heaps)`);
    }
  }
  // Blocks from mmap (hblkhd) are counted as resident in full: they are returned to the OS on free.
  let resident = arenaResident + hblkhd;
  if (arenaResident < uordblks) {
    // With part of the main arena out of sight the note above says so; otherwise the rest was never touched.
    if (outsideHeap === 0) {
      notes.push(
        `${uordblks - arenaResident} bytes allocated in arenas were never touched (not resident); ` +
          'resident is shown as no less than allocated',
      );
    }
    resident = uordblks + hblkhd;
  }
  const heldBack = resident - allocated;
  let releasable: number | null = null;
  const mallocInfo = v.mallocInfo;
  if (mallocInfo === 1) {
    const info = mallocInfoFromRows(sample.tail);
    const regions = {
      mainMapped: v.mainMapped,
      mainResident,
      mainOutside: outsideHeap,
      threadMapped: v.threadMapped,
      threadResident,
      threadTail: v.threadTail,
    };
    const estimate = glibcReleasable(info, regions, page(), pad);
    releasable = Math.min(heldBack, estimate.bytes);
    raw.freeChunks = info.totals.rest.count + info.totals.fast.count;
    raw.freePageBytes = estimate.freePages;
    raw.freePagesNotResident = estimate.nonResident;
    raw.threadHeapUntouchedTailBytes = v.threadTail;
  } else if (mallocInfo === 2) {
    notes.push('malloc_info() is not available: releasable is unknown');
  }
  return { allocated, resident, heldBack, releasable, mapped, raw, notes };
}

// Bytes allocated in arenas (uordblks) as of this thread's last sample. A trim measures arena
// residency before and after (lock-free) and takes allocated from here: counting it afresh
// would walk every free chunk under each arena's lock, stalling every thread that allocates
// for many times what malloc_trim() itself takes, and allocated barely moves across a trim.
let lastCount: { uordblks: number; at: number } | null = null;
const counted = { uordblks: 0, at: 0 };

function toSample(sample: GlibcSample): BackendSample {
  const uordblks = sample.fields.uordblks;
  if (sample.serving && sample.fields.source && uordblks !== null) {
    // One object, updated in place: this runs on every sample.
    counted.uordblks = uordblks;
    counted.at = performance.now();
    lastCount = counted;
  }
  return { numbers: glibcNumbers(sample), process: sample.process };
}

const arenaResident = (g: GlibcGauge): number | null =>
  g.arenasOk === 1 && g.mainResident !== null && g.threadResident !== null ? g.mainResident + g.threadResident : null;

function toTrim(t: NativeTrim<(typeof SHAPE.gauge)[number], (typeof SHAPE.trim)[number]>): BackendTrim {
  const notes: string[] = [];
  const released = t.rssBefore !== null && t.rssAfter !== null ? Math.max(0, t.rssBefore - t.rssAfter) : null;
  const kept = t.fields;
  // Either a recent measurement stands for the residency before (after = before less what RSS
  // lost), or the residency is gauged after the trim (before = after plus what RSS lost):
  // native/glibc.cc says why only one of the two is measured.
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
  } else if (lastCount === null) {
    notes.push(
      'held-back bytes before and after are unknown: no sample in this thread has counted the allocated bytes yet ' +
        '(counting them during the trim would walk every free chunk under the arenas’ locks)',
    );
  } else {
    heldBackBefore = Math.max(0, before - lastCount.uordblks);
    heldBackAfter = Math.max(0, after - lastCount.uordblks);
    const residency = fromKept
      ? `arena residency measured ${(kept.keptAgeNs! / NS_PER_MS).toFixed(1)} ms before the trim (after: less the RSS it released)`
      : 'arena residency measured after the trim (before: plus the RSS it released)';
    notes.push(
      `held back before and after: ${residency}, ` +
        `less the bytes allocated in arenas as counted by the sample ${Math.round(performance.now() - lastCount.at)} ms earlier`,
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

// The arguments of a JS-thread sample, built once.
const SYNC_ARGS = {
  releasable: { releasable: 1, residencyMaxAgeNs: RESIDENCY_MAX_AGE_MS * NS_PER_MS },
  counters: { releasable: 0, residencyMaxAgeNs: RESIDENCY_MAX_AGE_MS * NS_PER_MS },
} as const;

const glibcBackend = backendOver('glibc', native, {
  // A JS-thread sample may reuse recent arena residency; one on the threadpool always measures.
  sampleArgs: (request, sync) =>
    sync ? (request.releasable ? SYNC_ARGS.releasable : SYNC_ARGS.counters) : { releasable: request.releasable ? 1 : 0, residencyMaxAgeNs: 0 },
  trimArgs: (request) => ({ pad: request.pad, residencyMaxAgeNs: RESIDENCY_MAX_AGE_MS * NS_PER_MS }),
  toSample,
  toTrim,
});

// ---- The public namespace ----

export type { MallocInfo, MallocInfoArena, MallocInfoBucket } from './mallocinfo';
export type Mallinfo = NativeMallinfo;

/** mallopt(3) parameters, by glibc's names. */
export const MALLOPT_PARAMS = {
  M_MXFAST: 1,
  M_TRIM_THRESHOLD: -1,
  M_TOP_PAD: -2,
  M_MMAP_THRESHOLD: -3,
  M_MMAP_MAX: -4,
  M_ARENA_MAX: -8,
} as const;

export type MalloptParam = keyof typeof MALLOPT_PARAMS;

// sizeof(size_t) in this process: glibc's limits below are written in terms of it.
const SIZE_T_BYTES = /64|s390x/.test(process.arch) ? 8 : 4;
const INT_MAX = 2 ** 31 - 1;

/**
 * The values glibc's mallopt() accepts for each parameter (malloc/malloc.c): M_MXFAST at
 * most MAX_FAST_SIZE = 80 × sizeof(size_t) / 4; M_MMAP_THRESHOLD at most HEAP_MAX_SIZE / 2
 * (2 × 4 MiB × sizeof(long) / 2), which glibc before 2.35 enforces; the others any int
 * (M_ARENA_MAX ignores 0).
 */
export const MALLOPT_RANGES: Record<MalloptParam, { min: number; max: number; unit: string }> = {
  M_MXFAST: { min: 0, max: (80 * SIZE_T_BYTES) / 4, unit: 'bytes' },
  M_TRIM_THRESHOLD: { min: 0, max: INT_MAX, unit: 'bytes' },
  M_TOP_PAD: { min: 0, max: INT_MAX, unit: 'bytes' },
  M_MMAP_THRESHOLD: { min: 0, max: 4 * 1024 * 1024 * SIZE_T_BYTES, unit: 'bytes' },
  M_MMAP_MAX: { min: 0, max: INT_MAX, unit: 'mappings' },
  M_ARENA_MAX: { min: 1, max: INT_MAX, unit: 'arenas' },
};

const requireGlibc = (what: string): void => requireAllocator('glibc', what, 'glibc malloc');

const MALLINFO = ['source', 'arena', 'ordblks', 'smblks', 'hblks', 'hblkhd', 'usmblks', 'fsmblks', 'uordblks', 'fordblks', 'keepcost'] as const;
let mallinfoLayout: Layout<(typeof MALLINFO)[number]> | undefined;

function decodeMallinfo(v: Float64Array | null): Mallinfo {
  if (v === null) throw unsupported('neither mallinfo2() nor mallinfo() exists in this glibc');
  mallinfoLayout ??= new Layout('mallinfo', binding.glibcWire.mallinfo, MALLINFO);
  const f = mallinfoLayout.decode(v);
  const { source, ...fields } = f;
  const counters = {} as Omit<Mallinfo, 'source'>;
  for (const [k, value] of Object.entries(fields)) counters[k as keyof typeof counters] = value ?? 0;
  return { source: binding.glibcWire.mallinfoSources[source ?? 0] as Mallinfo['source'], ...counters };
}

/** mallinfo2() (mallinfo() before glibc 2.33, `source` says which), on the threadpool. */
export function mallinfo2(): Promise<Mallinfo> {
  try {
    requireGlibc('glibc.mallinfo2()');
  } catch (error) {
    return Promise.reject(error);
  }
  return keepCallerStack(binding.glibcMallinfo(), mallinfo2).then(decodeMallinfo);
}

/** mallinfo2() on the JS thread: O(free chunks), and it locks every arena. */
export function mallinfo2Sync(): Mallinfo {
  requireGlibc('glibc.mallinfo2Sync()');
  return decodeMallinfo(binding.glibcMallinfoSync());
}

function parsed(rows: Float64Array | null): MallocInfo {
  if (rows === null) throw unsupported('malloc_info() does not exist in this libc');
  return mallocInfoFromRows(rows);
}

/** malloc_info(3) parsed into one object per arena, on the threadpool. */
export function mallocInfo(): Promise<MallocInfo> {
  try {
    requireGlibc('glibc.mallocInfo()');
  } catch (error) {
    return Promise.reject(error);
  }
  return keepCallerStack(binding.glibcMallocInfo(), mallocInfo).then(parsed);
}

export function mallocInfoSync(): MallocInfo {
  requireGlibc('glibc.mallocInfoSync()');
  return parsed(binding.glibcMallocInfoSync());
}

/**
 * mallopt(3) by name. Takes effect for the whole process at once. Throws ERR_MALLOPT_PARAM
 * for an unknown name and ERR_MALLOPT_FAILED when glibc rejects the value.
 */
export function mallopt(param: MalloptParam, value: number): void {
  if (typeof param !== 'string') throw typeError('a mallopt parameter name', 'param', param);
  if (!Object.prototype.hasOwnProperty.call(MALLOPT_PARAMS, param)) {
    throw withCode(
      new TypeError(`Expected one of ${Object.keys(MALLOPT_PARAMS).join(', ')} for param but received ${JSON.stringify(param)}`),
      'ERR_MALLOPT_PARAM',
    );
  }
  // Below the minimum glibc does not refuse but ignores the value (M_ARENA_MAX 0), so it is
  // refused here; above the maximum glibc itself refuses (its limits moved between versions).
  integer(value, 'value', MALLOPT_RANGES[param].min, INT_MAX);
  requireGlibc('glibc.mallopt()');
  // glibc is the judge (its limits moved between versions); its refusal says what it takes.
  if (!binding.glibcMallopt(MALLOPT_PARAMS[param], value)) {
    const { min, max, unit } = MALLOPT_RANGES[param];
    throw withCode(
      new RangeError(`Expected ${min} to ${max} ${unit} for ${param} but received ${value} (glibc rejected mallopt(${param}, ${value}))`),
      'ERR_MALLOPT_FAILED',
    );
  }
}

/** malloc_trim(pad) with the same measured result as trim(); rejects unless glibc serves malloc. */
export function trim(options?: TrimOptions): Promise<TrimResult> {
  try {
    requireGlibc('glibc.trim()');
  } catch (error) {
    return Promise.reject(error);
  }
  return unifiedTrim(options);
}

registerBackend(glibcBackend);
