// gperftools tcmalloc: numeric properties for the numbers, ReleaseFreeMemory() for trim().
// Only the page heap's free pages are returned by a release; free objects in the thread,
// central and transfer caches stay (they count as held back, not as releasable).
import type { RawValue } from '../../core/types';
import type { NativeSample, NativeTrim } from '../../core/wire';
import type { AllocatorNumbers, BackendSample, BackendTrim } from '../types';


export const NS_PER_MS = 1e6;
const MiB = 1024 * 1024;

/** The numeric properties read on every sample (native/tcmalloc/tcmalloc.cc reads them; checked by name at load). */
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

export type Property = (typeof TCMALLOC_PROPERTIES)[number];

/**
 * Where a sample's properties came from (raw.source): MallocExtension_GetStats() prints them from
 * one walk of tcmalloc's caches, one consistent snapshot; without it, or when its text is not the
 * known form, each property is read on its own, a walk each.
 */
const SOURCES = ['MallocExtension_GetNumericProperty', 'MallocExtension_GetStats'] as const;

/** Resident (no less than allocated) less allocated; null when tcmalloc does not report both. */
function heldBackOf(p: Readonly<Record<Property, number | null>>): number | null {
  const allocated = p['generic.current_allocated_bytes'];
  const resident = p['generic.total_physical_bytes'];
  return allocated !== null && resident !== null ? Math.max(resident, allocated) - allocated : null;
}

/**
 * The unified numbers from a record of numeric properties by name (null: this tcmalloc lacks
 * one). `raw` is the decoded record itself, fresh for each sample: it becomes the sample's raw
 * figures as it is, with no copy.
 */
function tcmallocNumbers(serving: boolean, raw: Record<string, RawValue>): AllocatorNumbers {
  const notes: string[] = [];
  if (!serving) {
    notes.push('tcmalloc does not serve malloc() in this process: its counters are not reported');
    return { allocated: null, resident: null, heldBack: null, releasable: null, mapped: null, raw: {}, notes };
  }
  const p = raw as Readonly<Record<Property, number | null>>;
  const allocated = p['generic.current_allocated_bytes'];
  let resident = p['generic.total_physical_bytes'];
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
  let releasable = p['tcmalloc.pageheap_free_bytes'];
  if (releasable !== null && heldBack !== null) releasable = Math.min(releasable, heldBack);
  const caches =
    (p['tcmalloc.thread_cache_free_bytes'] ?? 0) +
    (p['tcmalloc.central_cache_free_bytes'] ?? 0) +
    (p['tcmalloc.transfer_cache_free_bytes'] ?? 0);
  raw.cacheFreeBytes = caches;
  if (caches >= 32 * MiB) {
    notes.push(`${caches} bytes sit free in tcmalloc's thread/central/transfer caches: held back, but not returned by a release`);
  }
  // The address space tcmalloc holds: its heap (generic.heap_size, which leaves out its metadata),
  // plus the metadata total_physical_bytes counts; that is total_physical + unmapped.
  const physical = p['generic.total_physical_bytes'];
  const unmapped = p['tcmalloc.pageheap_unmapped_bytes'];
  const mapped = physical !== null && unmapped !== null ? physical + unmapped : p['generic.heap_size'];
  return { allocated, resident, heldBack, releasable, mapped, raw, notes };
}

export function tcmallocToSample(n: NativeSample<Property | 'source'>): BackendSample {
  const raw = n.fields as Record<string, RawValue>;
  const source = n.fields.source;
  raw.source = source === null ? null : SOURCES[source];
  return { numbers: tcmallocNumbers(n.serving, raw), process: n.process };
}

export function tcmallocToTrim(t: NativeTrim<Property, never>): BackendTrim {
  return {
    supported: true,
    rssBefore: t.rssBefore,
    rssAfter: t.rssAfter,
    heldBackBefore: heldBackOf(t.before),
    heldBackAfter: heldBackOf(t.after),
    durationMs: t.durationNs / NS_PER_MS,
    notes: [],
  };
}
