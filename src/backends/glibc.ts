// glibc malloc (ptmalloc2). Held-back memory comes from the residency of the arena regions
// (mincore over [heap] and the thread-arena heaps), not from fordblks: malloc_trim() drops
// pages but leaves their chunks in the bins, so fordblks does not move when RSS does.
import { binding, type NativeGlibcSample, type NativeGlibcTrim } from '../binding';
import { keepCallerStack } from '../errors';
import { parseMallocInfo, trimmableEstimate } from '../mallocinfo';
import type { RawValue } from '../types';
import type { AllocatorNumbers, Backend, BackendSample, BackendTrim, SampleRequest, TrimRequest } from './types';

const NS_PER_MS = 1e6;
let pageSize: number | undefined;
const page = (): number => (pageSize ??= binding.glibcInfo().pageSize);

export function glibcNumbers(sample: NativeGlibcSample, pad = 0): AllocatorNumbers {
  const notes: string[] = [];
  const mi = sample.mallinfo;
  if (!sample.glibc || mi === null) {
    notes.push('glibc malloc does not serve malloc() in this process: its counters are not reported');
    return { allocated: null, resident: null, heldBack: null, releasable: null, mapped: null, raw: {}, notes };
  }
  const raw: Record<string, RawValue> = { ...mi };
  if (mi.source === 'mallinfo') {
    notes.push('mallinfo2() is missing (glibc < 2.33): mallinfo() counters wrap past 4 GiB');
  }
  const allocated = mi.uordblks + mi.hblkhd;
  const mapped = mi.arena + mi.hblkhd;
  const ar = sample.arenas;
  if (ar === null) {
    notes.push('arena regions could not be located: resident and held-back bytes are unknown (fordblks is only an upper bound)');
    return { allocated, resident: null, heldBack: null, releasable: null, mapped, raw, notes };
  }
  const arenaResident = ar.mainResident + ar.threadResident;
  Object.assign(raw, {
    arenaResidentBytes: arenaResident,
    mainArenaResidentBytes: ar.mainResident,
    threadArenaResidentBytes: ar.threadResident,
    arenaMappedBytes: ar.mainMapped + ar.threadMapped,
    arenas: ar.arenas,
    threadArenaHeaps: ar.heaps,
    regionScans: ar.scans,
  });
  if (!ar.matchesMallinfo) {
    notes.push(
      'arena regions found in /proc/self/maps do not add up to mallinfo.arena ' +
        '(the heap changed while sampling, or some arena memory lies outside [heap] and the thread heaps)',
    );
  }
  // Blocks from mmap (hblkhd) are counted as resident in full: they are returned to the OS on free.
  let resident = arenaResident + mi.hblkhd;
  if (arenaResident < mi.uordblks) {
    notes.push(
      `${mi.uordblks - arenaResident} bytes allocated in arenas were never touched (not resident); ` +
        'resident is shown as no less than allocated',
    );
    resident = mi.uordblks + mi.hblkhd;
  }
  const heldBack = resident - allocated;
  let releasable: number | null = null;
  if (sample.mallocInfo !== null) {
    if (sample.mallocInfo.length > 0) {
      const info = parseMallocInfo(sample.mallocInfo);
      releasable = Math.min(heldBack, trimmableEstimate(info, page(), pad));
      raw.freeChunks = info.totals.rest.count + info.totals.fast.count;
    } else {
      notes.push('malloc_info() is not available: releasable is unknown');
    }
  }
  return { allocated, resident, heldBack, releasable, mapped, raw, notes };
}

function toSample(native: NativeGlibcSample): BackendSample {
  return { numbers: glibcNumbers(native), process: native.process };
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
