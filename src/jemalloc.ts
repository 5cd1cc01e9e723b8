// The jemalloc namespace: mallctl by name, purge/decay, background threads.
// jemalloc: stats.* after an epoch refresh (rate-limited: it merges every arena), dirty and
// muzzy pages for what a purge returns, arena.4096.purge (4096 = all arenas) for trim().
import { binding, nativeBackend, type MallctlType, type MallctlValue, type NativeProcessMemory, type NativeSample, type NativeTrim } from './binding';
import { registerBackend } from './backends';
import { backendOver } from './backends/native';
import type { AllocatorNumbers, BackendSample, BackendTrim } from './backends/types';
import { requireAllocator } from './detect';
import { describe, keepCallerStack, rangeError, typeError, unsupported, withCode } from './errors';
import { queueTrim, trim as unifiedTrim } from './trim';
import type { RawValue, TrimResult } from './types';
import { integer, optionalBoolean } from './validate';

// ---- Numbers: what the native records mean ----

const NS_PER_MS = 1e6;
const MiB = 1024 * 1024;

/** Default minimum time between two epoch refreshes (stats are at most this old). */
const DEFAULT_EPOCH_INTERVAL_MS = 100;
let epochIntervalMs = DEFAULT_EPOCH_INTERVAL_MS;
// One string per interval, not one per sample (the age itself is raw.epochAgeMs).
let staleNote = { intervalMs: -1, text: '' };
function staleStatsNote(): string {
  if (staleNote.intervalMs !== epochIntervalMs) {
    staleNote = {
      intervalMs: epochIntervalMs,
      text:
        `jemalloc stats may be up to ${epochIntervalMs} ms old (raw.epochAgeMs says how old): the epoch is refreshed ` +
        'at most that often (jemalloc.setEpochInterval())',
    };
  }
  return staleNote.text;
}


// The type of each mallctl name (jemalloc 5.x), which mallctl() itself does not report.
// Reading with the wrong type is refused by jemalloc (EINVAL), but reading a number as a
// string would follow a bogus pointer, so names not listed here are refused.
const EXACT: Record<string, MallctlType> = {
  version: 'string',
  epoch: 'uint64_t',
  background_thread: 'bool',
  max_background_threads: 'size_t',
  'thread.arena': 'unsigned',
  'thread.allocated': 'uint64_t',
  'thread.deallocated': 'uint64_t',
  'thread.tcache.enabled': 'bool',
  'thread.tcache.flush': 'void',
  'thread.idle': 'void',
  'thread.prof.name': 'string',
  'thread.prof.active': 'bool',
  'config.malloc_conf': 'string',
  'opt.narenas': 'unsigned',
  'opt.dirty_decay_ms': 'ssize_t',
  'opt.muzzy_decay_ms': 'ssize_t',
  'opt.lg_tcache_max': 'ssize_t',
  'opt.lg_prof_interval': 'ssize_t',
  'opt.metadata_thp': 'string',
  'opt.dss': 'string',
  'opt.percpu_arena': 'string',
  'opt.junk': 'string',
  'opt.thp': 'string',
  'opt.prof_prefix': 'string',
  'opt.stats_print_opts': 'string',
  'opt.oversize_threshold': 'size_t',
  'opt.max_background_threads': 'size_t',
  'opt.lg_extent_max_active_fit': 'size_t',
  'opt.tcache_max': 'size_t',
  'opt.lg_prof_sample': 'size_t',
  'arenas.narenas': 'unsigned',
  'arenas.dirty_decay_ms': 'ssize_t',
  'arenas.muzzy_decay_ms': 'ssize_t',
  'arenas.quantum': 'size_t',
  'arenas.page': 'size_t',
  'arenas.tcache_max': 'size_t',
  'arenas.nbins': 'unsigned',
  'arenas.nhbins': 'unsigned',
  'arenas.nlextents': 'unsigned',
  'prof.thread_active_init': 'bool',
  'prof.active': 'bool',
  'prof.gdump': 'bool',
  'prof.dump': 'string',
  'prof.reset': 'size_t',
  'prof.lg_sample': 'size_t',
  'prof.interval': 'uint64_t',
  'stats.allocated': 'size_t',
  'stats.active': 'size_t',
  'stats.metadata': 'size_t',
  'stats.metadata_thp': 'size_t',
  'stats.resident': 'size_t',
  'stats.mapped': 'size_t',
  'stats.retained': 'size_t',
  'stats.zero_reallocs': 'size_t',
  'stats.background_thread.num_threads': 'size_t',
  'stats.background_thread.num_runs': 'uint64_t',
  'stats.background_thread.run_interval': 'uint64_t',
  'stats.mutexes.reset': 'void',
};

const I = '(?:\\d+)';
const PATTERNS: Array<[RegExp, MallctlType]> = [
  [/^config\.[a-z_]+$/, 'bool'], // every config.* except malloc_conf (listed above)
  [
    /^opt\.(abort|abort_conf|cache_oblivious|confirm_conf|retain|hpa|background_thread|stats_print|zero|utrace|xmalloc|tcache|prof|prof_active|prof_accum|prof_gdump|prof_final|prof_leak|prof_leak_error|prof_stats|prof_sys_thread_name|trust_madvise)$/,
    'bool',
  ],
  [new RegExp(`^arena\\.${I}\\.(decay|purge|reset|destroy)$`), 'void'],
  [new RegExp(`^arena\\.${I}\\.initialized$`), 'bool'],
  [new RegExp(`^arena\\.${I}\\.dss$`), 'string'],
  [new RegExp(`^arena\\.${I}\\.(dirty|muzzy)_decay_ms$`), 'ssize_t'],
  [new RegExp(`^arena\\.${I}\\.retain_grow_limit$`), 'size_t'],
  [new RegExp(`^arenas\\.bin\\.${I}\\.(size|slab_size)$`), 'size_t'],
  [new RegExp(`^arenas\\.bin\\.${I}\\.(nregs|nshards)$`), 'unsigned'],
  [new RegExp(`^arenas\\.lextent\\.${I}\\.size$`), 'size_t'],
  [/^stats\.mutexes\.[a-z_]+\.max_n(um_)?thds$/, 'unsigned'],
  [/^stats\.mutexes\.[a-z_]+\.[a-z_]+$/, 'uint64_t'],
  [new RegExp(`^stats\\.arenas\\.${I}\\.nthreads$`), 'unsigned'],
  [new RegExp(`^stats\\.arenas\\.${I}\\.uptime$`), 'uint64_t'],
  [new RegExp(`^stats\\.arenas\\.${I}\\.dss$`), 'string'],
  [new RegExp(`^stats\\.arenas\\.${I}\\.(dirty|muzzy)_decay_ms$`), 'ssize_t'],
  [
    new RegExp(
      `^stats\\.arenas\\.${I}\\.(pactive|pdirty|pmuzzy|mapped|retained|extent_avail|base|internal|metadata_thp|` +
        'tcache_bytes|tcache_stashed_bytes|resident|abandoned_vm)$',
    ),
    'size_t',
  ],
  [new RegExp(`^stats\\.arenas\\.${I}\\.(dirty|muzzy)_(npurge|nmadvise|purged)$`), 'uint64_t'],
  [new RegExp(`^stats\\.arenas\\.${I}\\.(small|large)\\.allocated$`), 'size_t'],
  [new RegExp(`^stats\\.arenas\\.${I}\\.(small|large)\\.[a-z_]+$`), 'uint64_t'],
  [new RegExp(`^stats\\.arenas\\.${I}\\.bins\\.${I}\\.(curregs|curslabs|nonfull_slabs)$`), 'size_t'],
  [new RegExp(`^stats\\.arenas\\.${I}\\.bins\\.${I}\\.mutex\\.max_n(um_)?thds$`), 'unsigned'],
  [new RegExp(`^stats\\.arenas\\.${I}\\.bins\\.${I}\\.(mutex\\.)?[a-z_]+$`), 'uint64_t'],
  [new RegExp(`^stats\\.arenas\\.${I}\\.lextents\\.${I}\\.curlextents$`), 'size_t'],
  [new RegExp(`^stats\\.arenas\\.${I}\\.lextents\\.${I}\\.[a-z_]+$`), 'uint64_t'],
  [new RegExp(`^stats\\.arenas\\.${I}\\.extents\\.${I}\\.n?(dirty|muzzy|retained)(_bytes)?$`), 'size_t'],
  [new RegExp(`^stats\\.arenas\\.${I}\\.mutexes\\.[a-z_]+\\.max_n(um_)?thds$`), 'unsigned'],
  [new RegExp(`^stats\\.arenas\\.${I}\\.mutexes\\.[a-z_]+\\.[a-z_]+$`), 'uint64_t'],
];

/** The type of a mallctl name, or undefined when this package does not know it. */
function mallctlType(name: string): MallctlType | undefined {
  if (Object.prototype.hasOwnProperty.call(EXACT, name)) return EXACT[name];
  return PATTERNS.find(([re]) => re.test(name))?.[1];
}

function requireServing(what: string): void {
  if (!binding.jemallocInfo().serving) {
    throw unsupported(`${what} needs jemalloc serving malloc(), but it does not in this process`);
  }
}

function checkName(name: unknown): string {
  if (typeof name !== 'string' || name.length === 0 || name.includes('\0')) {
    throw typeError('a mallctl name (non-empty string)', 'name', name);
  }
  return name;
}

function typeOf(name: string): MallctlType {
  const type = mallctlType(name);
  if (type !== undefined) return type;
  const exists = binding.jemallocExists(name);
  if (exists === false) {
    throw withCode(new Error(`mallctl ${name} does not exist in this jemalloc`), 'ERR_MALLCTL_NAME');
  }
  throw withCode(
    new Error(`mallctl ${name} exists but its type is not known to allocator-stats, so it is not read blindly`),
    'ERR_MALLCTL_TYPE',
  );
}

function mallctlRead(name: unknown): MallctlValue {
  const n = checkName(name);
  requireServing('jemalloc.mallctl.read()');
  return binding.jemallocRead(n, typeOf(n));
}

const VALUE_KIND: Record<MallctlType, string> = {
  bool: 'a boolean',
  unsigned: 'a number',
  size_t: 'a number',
  ssize_t: 'a number',
  uint64_t: 'a number or bigint',
  string: 'a string',
  void: 'no value (undefined)',
};

const WRITE_RANGE: Partial<Record<MallctlType, readonly [number | bigint, number | bigint]>> = {
  unsigned: [0, 2 ** 32 - 1],
  size_t: [0, Number.MAX_SAFE_INTEGER],
  ssize_t: [-Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
  uint64_t: [0, 2n ** 64n - 1n],
};

/**
 * Smallest values jemalloc accepts but cannot live with. max_background_threads: jemalloc 5.3
 * stores 0 and later divides by it when background threads start, which kills the process
 * with SIGFPE.
 */
const WRITE_MIN: Readonly<Record<string, number>> = { max_background_threads: 1 };

function mallctlWrite(name: unknown, value: unknown): void {
  const n = checkName(name);
  requireServing('jemalloc.mallctl.write()');
  const type = typeOf(n);
  const ok =
    type === 'bool'
      ? typeof value === 'boolean'
      : type === 'string'
        ? typeof value === 'string'
        : type === 'void'
          ? value === undefined
          : type === 'uint64_t'
            ? typeof value === 'number' || typeof value === 'bigint'
            : typeof value === 'number';
  if (!ok) throw typeError(VALUE_KIND[type], `the value of ${n}`, value);
  if (typeof value === 'number' && !Number.isSafeInteger(value)) {
    throw withCode(new RangeError(`Expected an integer for the value of ${n} but received ${describe(value)}`), 'ERR_OUT_OF_RANGE');
  }
  // The range of the C type, checked here so that native code never has to refuse a value.
  const range = WRITE_RANGE[type];
  if (range && (typeof value === 'number' || typeof value === 'bigint') && !(value >= range[0] && value <= range[1])) {
    throw rangeError(`an integer from ${range[0]} to ${range[1]}`, `the value of ${n}`, value);
  }
  const min = Object.prototype.hasOwnProperty.call(WRITE_MIN, n) ? WRITE_MIN[n] : undefined;
  if (min !== undefined && typeof value === 'number' && value < min) {
    throw rangeError(`an integer from ${min} to ${range![1]} (jemalloc accepts less, then crashes on it)`, `the value of ${n}`, value);
  }
  binding.jemallocWrite(n, type, value as MallctlValue);
}

/** Reads a value, or null when this jemalloc lacks the name (older version, no stats). */
function readOrNull(name: string): MallctlValue {
  try {
    return binding.jemallocRead(name, typeOf(name));
  } catch {
    return null;
  }
}

// The fields read from the native records, by the names native/jemalloc.cc declares.
const SAMPLE_FIELDS = [
  'statsEnabled',
  'allocated',
  'active',
  'resident',
  'mapped',
  'retained',
  'metadata',
  'dirtyPages',
  'muzzyPages',
  'pageSize',
  'backgroundThread',
  'refreshed',
  'epochAgeNs',
  'epochCostNs',
] as const;
const native = nativeBackend('jemalloc', {
  sample: SAMPLE_FIELDS,
  sampleArgs: ['epochIntervalNs'],
  gauge: SAMPLE_FIELDS,
  trim: [],
  trimArgs: ['decay'],
});
type Field = (typeof SAMPLE_FIELDS)[number];

/** One jemalloc sample, its flags as booleans. */
interface JemallocSample {
  serving: boolean;
  statsEnabled: boolean;
  process: NativeProcessMemory;
  allocated: number | null;
  active: number | null;
  resident: number | null;
  mapped: number | null;
  retained: number | null;
  metadata: number | null;
  dirtyPages: number | null;
  muzzyPages: number | null;
  pageSize: number | null;
  backgroundThread: boolean | null;
  refreshed: boolean;
  epochAgeNs: number | null;
  epochCostNs: number | null;
  costNs: number;
}

// One object literal (not a spread of the record with overrides): every sample then has the
// same hidden class, and no field changes type after it was made.
function jemallocSample(serving: boolean, f: { readonly [K in Field]: number | null }, process: NativeProcessMemory, costNs: number): JemallocSample {
  return {
    serving,
    statsEnabled: f.statsEnabled === 1,
    process,
    allocated: f.allocated,
    active: f.active,
    resident: f.resident,
    mapped: f.mapped,
    retained: f.retained,
    metadata: f.metadata,
    dirtyPages: f.dirtyPages,
    muzzyPages: f.muzzyPages,
    pageSize: f.pageSize,
    backgroundThread: f.backgroundThread === null ? null : f.backgroundThread === 1,
    refreshed: f.refreshed === 1,
    epochAgeNs: f.epochAgeNs,
    epochCostNs: f.epochCostNs,
    costNs,
  };
}

const fromNative = (n: NativeSample<Field>): JemallocSample => jemallocSample(n.serving, n.fields, n.process, n.costNs);

function jemallocNumbers(s: JemallocSample): AllocatorNumbers {
  const notes: string[] = [];
  const nulls = { allocated: null, resident: null, heldBack: null, releasable: null, mapped: null };
  if (!s.serving) {
    notes.push('jemalloc does not serve malloc() in this process: its counters are not reported');
    return { ...nulls, raw: {}, notes };
  }
  if (!s.statsEnabled) {
    notes.push('this jemalloc was built without statistics (config.stats is false): its numbers are unknown');
    return { ...nulls, raw: { statsEnabled: s.statsEnabled, backgroundThread: s.backgroundThread }, notes };
  }
  const raw: Record<string, RawValue> = {
    statsEnabled: s.statsEnabled,
    backgroundThread: s.backgroundThread,
    allocated: s.allocated,
    active: s.active,
    resident: s.resident,
    mapped: s.mapped,
    retained: s.retained,
    metadata: s.metadata,
    pdirty: s.dirtyPages,
    pmuzzy: s.muzzyPages,
    pageSize: s.pageSize,
    epochRefreshed: s.refreshed,
    epochAgeMs: s.epochAgeNs === null ? null : s.epochAgeNs / NS_PER_MS,
    epochCostMs: s.epochCostNs === null ? null : s.epochCostNs / NS_PER_MS,
  };
  if (!s.refreshed && s.epochAgeNs !== null) notes.push(staleStatsNote());
  let { allocated, resident } = s;
  let heldBack: number | null = null;
  if (allocated !== null && resident !== null) {
    if (resident < allocated) {
      notes.push(`stats.resident is below stats.allocated by ${allocated - resident} bytes; resident is shown as allocated`);
      resident = allocated;
    }
    heldBack = resident - allocated;
  }
  let releasable: number | null = null;
  if (s.dirtyPages !== null && s.pageSize !== null) {
    releasable = (s.dirtyPages + (s.muzzyPages ?? 0)) * s.pageSize;
    if (heldBack !== null) releasable = Math.min(releasable, heldBack);
    if (s.backgroundThread === false && releasable >= 16 * MiB) {
      notes.push(
        'background_thread is off: an idle process does not decay its dirty pages until it allocates again; ' +
          'trim() purges them now (or enable background_thread)',
      );
    }
  }
  if (allocated === null || resident === null) notes.push('some jemalloc stats.* are missing in this version');
  return { allocated, resident, heldBack, releasable, mapped: s.mapped, raw, notes };
}

function toSample(n: NativeSample<Field>): BackendSample {
  return { numbers: jemallocNumbers(fromNative(n)), process: n.process };
}

function jemallocTrimOutcome(t: NativeTrim<Field, never>, action: string): BackendTrim {
  const noProcess: NativeProcessMemory = { rss: null, rssAnon: null, rssFile: null, rssShmem: null, swap: null };
  const before = jemallocNumbers(jemallocSample(true, t.before, noProcess, 0));
  const after = jemallocNumbers(jemallocSample(true, t.after, noProcess, 0));
  const notes: string[] = [];
  if (t.result !== 0) notes.push(`mallctl ${action} failed (errno ${t.result})`);
  if (before.releasable !== null) notes.push(`dirty+muzzy pages before: ${before.releasable} bytes, after: ${after.releasable} bytes`);
  return {
    supported: true,
    rssBefore: t.rssBefore,
    rssAfter: t.rssAfter,
    heldBackBefore: before.heldBack,
    heldBackAfter: after.heldBack,
    durationMs: t.durationNs / NS_PER_MS,
    notes,
  };
}

const action = (decay: boolean): string => (decay ? 'arena.4096.decay' : 'arena.4096.purge');

/** decay: only what the decay curves allow now; purge (the backend's trim): every dirty and muzzy page. */
function jemallocTrim(decay: boolean, caller: Function): Promise<BackendTrim> {
  return keepCallerStack(native.trim({ decay: decay ? 1 : 0 }), caller).then((t) => jemallocTrimOutcome(t, action(decay)));
}

const CONFIG = [
  'version',
  'config.stats',
  'opt.narenas',
  'opt.dirty_decay_ms',
  'opt.muzzy_decay_ms',
  'opt.background_thread',
  'opt.max_background_threads',
  'opt.tcache',
  'opt.retain',
  'opt.thp',
  'background_thread',
  'arenas.narenas',
  'arenas.dirty_decay_ms',
  'arenas.muzzy_decay_ms',
  'config.malloc_conf',
];

function jemallocConfig(): Record<string, RawValue> {
  const out: Record<string, RawValue> = {};
  const info = binding.jemallocInfo();
  if (!info.serving) return out;
  out.symbolPrefix = info.prefix;
  for (const name of CONFIG) out[name] = readOrNull(name);
  out.epochIntervalMs = epochIntervalMs;
  return out;
}

const jemallocBackend = backendOver('jemalloc', native, {
  sampleArgs: () => ({ epochIntervalNs: epochIntervalMs * NS_PER_MS }),
  // trim() purges; jemalloc.decay() runs the other action through the same native trim.
  trimArgs: () => ({ decay: 0 }),
  toSample,
  toTrim: (t) => jemallocTrimOutcome(t, action(false)),
  config: jemallocConfig,
});

// ---- The public namespace ----

export type { MallctlType, MallctlValue } from './binding';

const requireJemalloc = (what: string): void => requireAllocator('jemalloc', what);

export const mallctl = {
  /**
   * Reads a mallctl by name. The type comes from allocator-stats' table of jemalloc 5.x
   * names: uint64_t counters are bigint, sizes numbers, strings strings. Throws
   * ERR_MALLCTL_NAME for a name jemalloc does not have, ERR_MALLCTL_TYPE for a name whose
   * type is not known, ERR_MALLCTL_ACCESS for a write-only name or an action.
   */
  read(name: string): MallctlValue {
    return mallctlRead(name);
  },
  /** Writes a mallctl; an action (e.g. "arena.0.purge", "thread.tcache.flush") takes no value. */
  write(name: string, value?: MallctlValue): void {
    mallctlWrite(name, value);
  },
  /** The type allocator-stats reads a name as, or undefined when it does not know it. */
  type(name: string): string | undefined {
    return typeof name === 'string' ? mallctlType(name) : undefined;
  },
};

/** Returns every dirty and muzzy page of every arena (arena.4096.purge): the same as trim(). */
export function purge(): Promise<TrimResult> {
  try {
    requireJemalloc('jemalloc.purge()');
  } catch (error) {
    return Promise.reject(error);
  }
  return unifiedTrim();
}

/** Returns only what the decay curves allow now (arena.4096.decay), measured and counted like trim(). */
export function decay(): Promise<TrimResult> {
  try {
    requireJemalloc('jemalloc.decay()');
  } catch (error) {
    return Promise.reject(error);
  }
  return queueTrim(() => jemallocTrim(true, decay));
}

/**
 * The runtime background_thread switch: with no argument, whether background threads purge
 * dirty pages; with a boolean, turns them on or off and returns the new state.
 */
export function backgroundThread(on?: boolean): boolean {
  const value = optionalBoolean(on, 'on', undefined as unknown as boolean);
  requireJemalloc('jemalloc.backgroundThread()');
  if (value !== undefined) mallctlWrite('background_thread', value);
  return binding.jemallocRead('background_thread', 'bool') as boolean;
}

/** Stats refresh (epoch) at most every `ms` milliseconds; 0 refreshes on every sample. Default 100. */
export function setEpochInterval(ms: number): void {
  epochIntervalMs = integer(ms, 'ms', 0, 3_600_000);
}

export function epochInterval(): number {
  return epochIntervalMs;
}

/** opt.* and the runtime settings in effect. */
export function config(): Record<string, RawValue> {
  requireJemalloc('jemalloc.config()');
  return jemallocConfig();
}

registerBackend(jemallocBackend);
