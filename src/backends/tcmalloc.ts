// gperftools tcmalloc: numeric properties for the numbers, ReleaseFreeMemory() for trim().
// Only the page heap's free pages are returned by a release; free objects in the thread,
// central and transfer caches stay (they count as held back, not as releasable).
import { binding, nativeBackend, type NativeProcessMemory, type NativeSample, type NativeTrim } from '../binding';
import { keepCallerStack } from '../errors';
import type { RawValue } from '../types';
import type { AllocatorNumbers, Backend, BackendSample, BackendTrim } from './types';

const NS_PER_MS = 1e6;
const MiB = 1024 * 1024;

/** The numeric properties read on every sample (native/tcmalloc.cc reads them; checked by name at load). */
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

type Property = (typeof TCMALLOC_PROPERTIES)[number];
const native = nativeBackend('tcmalloc', {
  sample: TCMALLOC_PROPERTIES,
  sampleArgs: [],
  gauge: TCMALLOC_PROPERTIES,
  trim: [],
  trimArgs: [],
});

/** One tcmalloc sample: its numeric properties by name, null when this tcmalloc lacks one. */
export interface TcmallocSample {
  serving: boolean;
  process: NativeProcessMemory;
  properties: Record<string, number | null>;
  costNs: number;
}

const fromNative = (n: NativeSample<Property>): TcmallocSample => ({
  serving: n.serving,
  process: n.process,
  properties: { ...n.fields },
  costNs: n.costNs,
});

export function tcmallocNumbers(s: TcmallocSample): AllocatorNumbers {
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

function toSample(n: NativeSample<Property>): BackendSample {
  return { numbers: tcmallocNumbers(fromNative(n)), process: n.process };
}

function toTrim(t: NativeTrim<Property, never>): BackendTrim {
  const process: NativeProcessMemory = { rss: null, rssAnon: null, rssFile: null, rssShmem: null, swap: null };
  const gauge = (properties: Record<string, number | null>): TcmallocSample => ({ serving: true, process, properties, costNs: 0 });
  return {
    supported: true,
    rssBefore: t.rssBefore,
    rssAfter: t.rssAfter,
    heldBackBefore: tcmallocNumbers(gauge({ ...t.before })).heldBack,
    heldBackAfter: tcmallocNumbers(gauge({ ...t.after })).heldBack,
    durationMs: t.durationNs / NS_PER_MS,
    notes: [],
  };
}

/** Numeric properties by name; null for a name this tcmalloc does not know. */
export function tcmallocProperties(names: readonly string[]): Record<string, number | null> {
  const values = binding.tcmallocProperties(names);
  const out: Record<string, number | null> = {};
  names.forEach((name, i) => (out[name] = Number.isNaN(values[i]) ? null : values[i]));
  return out;
}

export function tcmallocConfig(): Record<string, RawValue> {
  if (!native.sampleSync({}).serving) return {};
  return { ...tcmallocProperties(TCMALLOC_SETTINGS), releaseRate: binding.tcmallocReleaseRate() };
}

export const tcmallocBackend: Backend = {
  name: 'tcmalloc',
  canTrim: true,
  sampleSync() {
    return toSample(native.sampleSync({}));
  },
  sample() {
    return keepCallerStack(native.sample({}), tcmallocBackend.sample).then(toSample);
  },
  trimSync() {
    return toTrim(native.trimSync({}));
  },
  trim() {
    return keepCallerStack(native.trim({}), tcmallocBackend.trim).then(toTrim);
  },
  config: tcmallocConfig,
};
