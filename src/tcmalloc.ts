// The tcmalloc (gperftools) namespace: numeric properties, release rate, release.
// gperftools tcmalloc: numeric properties for the numbers, ReleaseFreeMemory() for trim().
// Only the page heap's free pages are returned by a release; free objects in the thread,
// central and transfer caches stay (they count as held back, not as releasable).
import { binding, nativeBackend, type NativeSample, type NativeTrim } from './binding';
import { registerBackend } from './backends';
import { backendOver } from './backends/native';
import type { AllocatorNumbers, BackendSample, BackendTrim } from './backends/types';
import { requireAllocator } from './detect';
import { typeError, unsupported, withCode } from './errors';
import { trim as unifiedTrim } from './trim';
import type { RawValue, TrimResult } from './types';
import { integer, optionalNumber } from './validate';

// ---- Numbers: what the native records mean ----

const NS_PER_MS = 1e6;
const MiB = 1024 * 1024;

/** The numeric properties read on every sample (native/tcmalloc.cc reads them; checked by name at load). */
const TCMALLOC_PROPERTIES = [
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
const TCMALLOC_SETTINGS = [
  'tcmalloc.max_total_thread_cache_bytes',
  'tcmalloc.aggressive_memory_decommit',
  'tcmalloc.heap_limit_mb',
] as const;

type Property = (typeof TCMALLOC_PROPERTIES)[number];
const native = nativeBackend('tcmalloc', {
  // source: 1 when the properties come from one statistics snapshot, 0 when read one by one.
  sample: [...TCMALLOC_PROPERTIES, 'source'],
  sampleArgs: [],
  gauge: TCMALLOC_PROPERTIES,
  trim: [],
  trimArgs: [],
});

/**
 * Where a sample's properties came from (raw.source): MallocExtension_GetStats() prints them from
 * one walk of tcmalloc's caches, one consistent snapshot; without it, or when its text is not the
 * known form, each property is read on its own, a walk each.
 */
const SOURCES = ['MallocExtension_GetNumericProperty', 'MallocExtension_GetStats'] as const;

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

function toSample(n: NativeSample<Property | 'source'>): BackendSample {
  const raw = n.fields as Record<string, RawValue>;
  const source = n.fields.source;
  raw.source = source === null ? null : SOURCES[source];
  return { numbers: tcmallocNumbers(n.serving, raw), process: n.process };
}

function toTrim(t: NativeTrim<Property, never>): BackendTrim {
  return {
    supported: true,
    rssBefore: t.rssBefore,
    rssAfter: t.rssAfter,
    heldBackBefore: tcmallocNumbers(true, { ...t.before }).heldBack,
    heldBackAfter: tcmallocNumbers(true, { ...t.after }).heldBack,
    durationMs: t.durationNs / NS_PER_MS,
    notes: [],
  };
}

/** Numeric properties by name; null for a name this tcmalloc does not know. */
function tcmallocProperties(names: readonly string[]): Record<string, number | null> {
  const values = binding.tcmallocProperties(names);
  const out: Record<string, number | null> = {};
  names.forEach((name, i) => (out[name] = Number.isNaN(values[i]) ? null : values[i]));
  return out;
}

function tcmallocConfig(): Record<string, RawValue> {
  if (!native.sampleSync({}).serving) return {};
  return { ...tcmallocProperties(TCMALLOC_SETTINGS), releaseRate: binding.tcmallocReleaseRate() };
}

const tcmallocBackend = backendOver('tcmalloc', native, {
  sampleArgs: () => ({}),
  trimArgs: () => ({}),
  toSample,
  toTrim,
  config: tcmallocConfig,
});

// ---- The public namespace ----

const requireTcmalloc = (what: string): void => requireAllocator('tcmalloc', what);

function checkName(name: unknown): string {
  if (typeof name !== 'string' || name.length === 0 || name.includes('\0')) throw typeError('a property name', 'name', name);
  return name;
}

/** MallocExtension::GetNumericProperty(name); null when this tcmalloc does not know the name. */
export function property(name: string): number | null {
  const n = checkName(name);
  requireTcmalloc('tcmalloc.property()');
  return tcmallocProperties([n])[n] ?? null;
}

/** Every property allocator-stats knows, by name. */
export function properties(): Record<string, number | null> {
  requireTcmalloc('tcmalloc.properties()');
  return tcmallocProperties([...TCMALLOC_PROPERTIES, ...TCMALLOC_SETTINGS]);
}

/** MallocExtension::SetNumericProperty(name, value). Throws ERR_TCMALLOC_PROPERTY when tcmalloc refuses it. */
export function setProperty(name: string, value: number): void {
  const n = checkName(name);
  integer(value, 'value', 0, Number.MAX_SAFE_INTEGER);
  requireTcmalloc('tcmalloc.setProperty()');
  if (!binding.tcmallocSetProperty(n, value)) {
    throw withCode(new Error(`tcmalloc refused to set ${n} to ${value}`), 'ERR_TCMALLOC_PROPERTY');
  }
}

/**
 * The release rate (how eagerly tcmalloc returns free pages on its own; 0 never, default 1,
 * higher is faster). With a number, sets it first. Returns the rate in effect; throws
 * ERR_ALLOCATOR_UNSUPPORTED when this tcmalloc does not export it.
 */
export function releaseRate(rate?: number): number {
  const r = optionalNumber(rate, 'rate', -1, 0, 1e6);
  requireTcmalloc('tcmalloc.releaseRate()');
  const now = binding.tcmallocReleaseRate(r < 0 ? undefined : r);
  if (now === null) throw unsupported('this tcmalloc does not export Get/SetMemoryReleaseRate');
  return now;
}

/** MallocExtension::ReleaseFreeMemory(), measured like trim(). */
export function releaseFreeMemory(): Promise<TrimResult> {
  try {
    requireTcmalloc('tcmalloc.releaseFreeMemory()');
  } catch (error) {
    return Promise.reject(error);
  }
  return unifiedTrim();
}

export function config(): Record<string, RawValue> {
  requireTcmalloc('tcmalloc.config()');
  return tcmallocConfig();
}

registerBackend(tcmallocBackend);
