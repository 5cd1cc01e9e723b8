// glibc malloc (ptmalloc2). Held-back memory comes from the residency of the arena regions
// (mincore over [heap] and the thread-arena heaps), not from fordblks: malloc_trim() drops
// pages but leaves their chunks in the bins, so fordblks does not move when RSS does.
import { binding, type NativeGlibcSample, type NativeGlibcTrim } from '../binding';
import { keepCallerStack } from '../errors';
import { mallocInfoFromRows } from '../mallocinfo';
import { glibcReleasable } from '../releasable';
import type { ProcessMemory, RawValue } from '../types';
import type { AllocatorNumbers, Backend, BackendSample, BackendTrim, SampleRequest, TrimRequest } from './types';

const NS_PER_MS = 1e6;
let pageSize: number | undefined;
const page = (): number => (pageSize ??= binding.glibcInfo().pageSize);

// Layout of the native sample (see SampleToJs in native/glibc.cc).
const SAMPLE = {
  glibc: 0,
  process: 2,
  mallinfoSource: 7,
  mallinfo: 8,
  arenasOk: 18,
  mainMapped: 19,
  mainResident: 20,
  threadMapped: 21,
  threadResident: 22,
  heaps: 23,
  arenas: 24,
  matches: 25,
  scans: 26,
  mallocInfo: 27,
  rows: 28,
} as const;

const MALLINFO_FIELDS = ['arena', 'ordblks', 'smblks', 'hblks', 'hblkhd', 'usmblks', 'fsmblks', 'uordblks', 'fordblks', 'keepcost'] as const;

// Where the counters came from: malloc_info() carries them when releasable is asked for.
const SOURCES: Record<number, string> = { 1: 'mallinfo2', 2: 'mallinfo', 3: 'malloc_info' };

const known = (v: number): number | null => (v < 0 ? null : v);

export function processFromSample(v: NativeGlibcSample): ProcessMemory {
  const p = SAMPLE.process;
  return { rss: known(v[p]), rssAnon: known(v[p + 1]), rssFile: known(v[p + 2]), rssShmem: known(v[p + 3]), swap: known(v[p + 4]) };
}

export function glibcNumbers(v: NativeGlibcSample, pad = 0): AllocatorNumbers {
  const notes: string[] = [];
  const source = v[SAMPLE.mallinfoSource];
  if (v[SAMPLE.glibc] !== 1 || source === 0) {
    notes.push('glibc malloc does not serve malloc() in this process: its counters are not reported');
    return { allocated: null, resident: null, heldBack: null, releasable: null, mapped: null, raw: {}, notes };
  }
  const raw: Record<string, RawValue> = { source: SOURCES[source] ?? 'mallinfo2' };
  for (let i = 0; i < MALLINFO_FIELDS.length; i++) raw[MALLINFO_FIELDS[i]] = v[SAMPLE.mallinfo + i];
  if (source === 2) notes.push('mallinfo2() is missing (glibc < 2.33): mallinfo() counters wrap past 4 GiB');
  const uordblks = v[SAMPLE.mallinfo + 7];
  const hblkhd = v[SAMPLE.mallinfo + 4];
  const allocated = uordblks + hblkhd;
  const mapped = v[SAMPLE.mallinfo] + hblkhd;
  if (v[SAMPLE.arenasOk] !== 1) {
    notes.push('arena regions could not be located: resident and held-back bytes are unknown (fordblks is only an upper bound)');
    return { allocated, resident: null, heldBack: null, releasable: null, mapped, raw, notes };
  }
  const mainResident = v[SAMPLE.mainResident];
  const threadResident = v[SAMPLE.threadResident];
  const arenaResident = mainResident + threadResident;
  raw.arenaResidentBytes = arenaResident;
  raw.mainArenaResidentBytes = mainResident;
  raw.threadArenaResidentBytes = threadResident;
  raw.arenaMappedBytes = v[SAMPLE.mainMapped] + v[SAMPLE.threadMapped];
  raw.arenas = v[SAMPLE.arenas];
  raw.threadArenaHeaps = v[SAMPLE.heaps];
  raw.regionScans = v[SAMPLE.scans];
  if (v[SAMPLE.matches] !== 1) {
    notes.push(
      'arena regions found in /proc/self/maps do not add up to mallinfo.arena ' +
        '(the heap changed while sampling, or some arena memory lies outside [heap] and the thread heaps)',
    );
  }
  // Blocks from mmap (hblkhd) are counted as resident in full: they are returned to the OS on free.
  let resident = arenaResident + hblkhd;
  if (arenaResident < uordblks) {
    notes.push(
      `${uordblks - arenaResident} bytes allocated in arenas were never touched (not resident); ` +
        'resident is shown as no less than allocated',
    );
    resident = uordblks + hblkhd;
  }
  const heldBack = resident - allocated;
  let releasable: number | null = null;
  const mallocInfo = v[SAMPLE.mallocInfo];
  if (mallocInfo === 1) {
    const info = mallocInfoFromRows(v, SAMPLE.rows);
    const regions = { mainMapped: v[SAMPLE.mainMapped], mainResident, threadMapped: v[SAMPLE.threadMapped], threadResident };
    const estimate = glibcReleasable(info, regions, page(), pad);
    releasable = Math.min(heldBack, estimate.bytes);
    raw.freeChunks = info.totals.rest.count + info.totals.fast.count;
    raw.freePageBytes = estimate.freePages;
    raw.freePagesNotResident = estimate.nonResident;
  } else if (mallocInfo === 2) {
    notes.push('malloc_info() is not available: releasable is unknown');
  }
  return { allocated, resident, heldBack, releasable, mapped, raw, notes };
}

function toSample(native: NativeGlibcSample): BackendSample {
  return { numbers: glibcNumbers(native), process: processFromSample(native) };
}

function toTrim(native: NativeGlibcTrim): BackendTrim {
  const before = native.before ? glibcNumbers(native.before) : null;
  const after = native.after ? glibcNumbers(native.after) : null;
  return {
    supported: true,
    rssBefore: native.rssBefore,
    rssAfter: native.rssAfter,
    heldBackBefore: before?.heldBack ?? null,
    heldBackAfter: after?.heldBack ?? null,
    durationMs: native.durationNs / NS_PER_MS,
    notes: [],
  };
}

export const glibcBackend: Backend = {
  name: 'glibc',
  canTrim: true,
  sampleSync(request: SampleRequest) {
    return toSample(binding.glibcSampleSync(request.releasable));
  },
  sample(request: SampleRequest) {
    return keepCallerStack(binding.glibcSample(request.releasable), glibcBackend.sample).then(toSample);
  },
  trimSync(request: TrimRequest) {
    return toTrim(binding.glibcTrimSync(request.pad, true));
  },
  trim(request: TrimRequest) {
    return keepCallerStack(binding.glibcTrim(request.pad, true), glibcBackend.trim).then(toTrim);
  },
};
