// The tcmalloc (gperftools) namespace: numeric properties, release rate, release.
// gperftools tcmalloc: numeric properties for the numbers, ReleaseFreeMemory() for trim().
// Only the page heap's free pages are returned by a release; free objects in the thread,
// central and transfer caches stay (they count as held back, not as releasable).
import { binding, nativeBackend, type NativeProcessMemory, type NativeSample, type NativeTrim } from './binding';
import { registerBackend } from './backends';
import type { AllocatorNumbers, Backend, BackendSample, BackendTrim } from './backends/types';
import { requireAllocator } from './detect';
import { keepCallerStack, typeError, unsupported, withCode } from './errors';
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
  sample: TCMALLOC_PROPERTIES,
  sampleArgs: [],
  gauge: TCMALLOC_PROPERTIES,
  trim: [],
  trimArgs: [],
});

/** One tcmalloc sample: its numeric properties by name, null when this tcmalloc lacks one. */
interface TcmallocSample {
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

function tcmallocNumbers(s: TcmallocSample): AllocatorNumbers {
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

const tcmallocBackend: Backend = {
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
