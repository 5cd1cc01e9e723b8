// gperftools tcmalloc: numeric properties for the numbers, ReleaseFreeMemory() for trim().
// Only the page heap's free pages are returned by a release; free objects in the thread,
// central and transfer caches stay (they count as held back, not as releasable).
import { binding, type NativeTcmallocSample, type NativeTcmallocTrim } from '../binding';
import { keepCallerStack } from '../errors';
import type { RawValue } from '../types';
import type { AllocatorNumbers, Backend, BackendSample, BackendTrim } from './types';

const NS_PER_MS = 1e6;
const MiB = 1024 * 1024;

/** The numeric properties read on every sample. */
export const TCMALLOC_PROPERTIES = [
  'generic.current_allocated_bytes',
  'generic.heap_size',
  'generic.total_physical_bytes',
  'tcmalloc.pageheap_free_bytes',
  'tcmalloc.pageheap_unmapped_bytes',
  'tcmalloc.current_total_thread_cache_bytes',
  'tcmalloc.thread_cache_free_bytes',
  'tcmalloc.central_cache_free_bytes',
  'tcmalloc.transfer_cache_free_bytes',
] as const;

/** Settings, read for config(). */
export const TCMALLOC_SETTINGS = [
  'tcmalloc.max_total_thread_cache_bytes',
  'tcmalloc.aggressive_memory_decommit',
  'tcmalloc.heap_limit_mb',
] as const;

export function tcmallocNumbers(s: NativeTcmallocSample): AllocatorNumbers {
  const notes: string[] = [];
  if (!s.serving) {
    notes.push('tcmalloc does not serve malloc() in this process: its counters are not reported');
    return { allocated: null, resident: null, heldBack: null, releasable: null, mapped: null, raw: {}, notes };
  }
  const p = s.properties;
  const raw: Record<string, RawValue> = { ...p };
  const allocated = p['generic.current_allocated_bytes'] ?? null;
  let resident = p['generic.total_physical_bytes'] ?? null;
  let heldBack: number | null = null;
  if (allocated !== null && resident !== null) {
    if (resident < allocated) {
      notes.push(`total_physical_bytes is below current_allocated_bytes by ${allocated - resident} bytes; resident is shown as allocated`);
      resident = allocated;
    }
    heldBack = resident - allocated;
  } else {
    notes.push('this tcmalloc does not report generic.current_allocated_bytes or generic.total_physical_bytes');
  }
  let releasable = p['tcmalloc.pageheap_free_bytes'] ?? null;
  if (releasable !== null && heldBack !== null) releasable = Math.min(releasable, heldBack);
  const caches =
    (p['tcmalloc.thread_cache_free_bytes'] ?? 0) +
    (p['tcmalloc.central_cache_free_bytes'] ?? 0) +
    (p['tcmalloc.transfer_cache_free_bytes'] ?? 0);
  raw.cacheFreeBytes = caches;
  if (caches >= 32 * MiB) {
    notes.push(`${caches} bytes sit free in tcmalloc's thread/central/transfer caches: held back, but not returned by a release`);
  }
  return { allocated, resident, heldBack, releasable, mapped: p['generic.heap_size'] ?? null, raw, notes };
}

function toSample(native: NativeTcmallocSample): BackendSample {
  return { numbers: tcmallocNumbers(native), process: native.process };
}

function toTrim(native: NativeTcmallocTrim): BackendTrim {
  return {
    supported: true,
    rssBefore: native.rssBefore,
    rssAfter: native.rssAfter,
    heldBackBefore: tcmallocNumbers(native.before).heldBack,
    heldBackAfter: tcmallocNumbers(native.after).heldBack,
    durationMs: native.durationNs / NS_PER_MS,
    notes: [],
  };
}

export function tcmallocConfig(): Record<string, RawValue> {
  const sample = binding.tcmallocSampleSync(TCMALLOC_SETTINGS);
  if (!sample.serving) return {};
  return { ...sample.properties, releaseRate: binding.tcmallocReleaseRate() };
}

export const tcmallocBackend: Backend = {
  name: 'tcmalloc',
  canTrim: true,
  sampleSync() {
    return toSample(binding.tcmallocSampleSync(TCMALLOC_PROPERTIES));
  },
  sample() {
    return keepCallerStack(binding.tcmallocSample(TCMALLOC_PROPERTIES), tcmallocBackend.sample).then(toSample);
  },
  trimSync() {
    return toTrim(binding.tcmallocTrimSync(TCMALLOC_PROPERTIES));
  },
  trim() {
    return keepCallerStack(binding.tcmallocTrim(TCMALLOC_PROPERTIES), tcmallocBackend.trim).then(toTrim);
  },
  config: tcmallocConfig,
};
