// jemalloc: stats.* after an epoch refresh (rate-limited: it merges every arena), dirty and
// muzzy pages for what a purge returns, arena.4096.purge (4096 = all arenas) for trim().
import {
  binding,
  type MallctlType,
  type MallctlValue,
  type NativeJemallocSample,
  type NativeJemallocTrim,
} from '../binding';
import { describe, keepCallerStack, rangeError, typeError, unsupported, withCode } from '../errors';
import type { RawValue } from '../types';
import type { AllocatorNumbers, Backend, BackendSample, BackendTrim } from './types';

const NS_PER_MS = 1e6;
const MiB = 1024 * 1024;

/** Default minimum time between two epoch refreshes (stats are at most this old). */
export const DEFAULT_EPOCH_INTERVAL_MS = 100;
let epochIntervalMs = DEFAULT_EPOCH_INTERVAL_MS;

export function getEpochInterval(): number {
  return epochIntervalMs;
}

export function setEpochInterval(ms: number): void {
  epochIntervalMs = ms;
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
export function mallctlType(name: string): MallctlType | undefined {
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

export function mallctlRead(name: unknown): MallctlValue {
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

export function mallctlWrite(name: unknown, value: unknown): void {
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

export function jemallocNumbers(s: NativeJemallocSample): AllocatorNumbers {
  const notes: string[] = [];
  const nulls = { allocated: null, resident: null, heldBack: null, releasable: null, mapped: null };
  if (!s.serving) {
    notes.push('jemalloc does not serve malloc() in this process: its counters are not reported');
    return { ...nulls, raw: {}, notes };
  }
  const raw: Record<string, RawValue> = { statsEnabled: s.statsEnabled, backgroundThread: s.backgroundThread };
  if (!s.statsEnabled) {
    notes.push('this jemalloc was built without statistics (config.stats is false): its numbers are unknown');
    return { ...nulls, raw, notes };
  }
  Object.assign(raw, {
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
  });
  if (!s.refreshed && s.epochAgeNs !== null) {
    notes.push(
      `jemalloc stats are ${(s.epochAgeNs / NS_PER_MS).toFixed(1)} ms old: the epoch is refreshed at most every ` +
        `${epochIntervalMs} ms (jemalloc.setEpochInterval())`,
    );
  }
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

function toSample(native: NativeJemallocSample): BackendSample {
  return { numbers: jemallocNumbers(native), process: native.process };
}

export function jemallocTrimOutcome(native: NativeJemallocTrim, action: string): BackendTrim {
  const before = jemallocNumbers(native.before);
  const after = jemallocNumbers(native.after);
  const notes: string[] = [];
  if (native.result !== 0) notes.push(`mallctl ${action} failed (errno ${native.result})`);
  if (before.releasable !== null) notes.push(`dirty+muzzy pages before: ${before.releasable} bytes, after: ${after.releasable} bytes`);
  return {
    supported: true,
    rssBefore: native.rssBefore,
    rssAfter: native.rssAfter,
    heldBackBefore: before.heldBack,
    heldBackAfter: after.heldBack,
    durationMs: native.durationNs / NS_PER_MS,
    notes,
  };
}

/** decay: only what the decay curves allow now; purge (default): every dirty and muzzy page. */
export function jemallocTrimSync(decay = false): BackendTrim {
  const action = decay ? 'arena.4096.decay' : 'arena.4096.purge';
  return jemallocTrimOutcome(binding.jemallocTrimSync(decay), action);
}

export function jemallocTrim(decay = false, caller: Function = jemallocTrim): Promise<BackendTrim> {
  const action = decay ? 'arena.4096.decay' : 'arena.4096.purge';
  return keepCallerStack(binding.jemallocTrim(decay), caller).then((t) => jemallocTrimOutcome(t, action));
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

export function jemallocConfig(): Record<string, RawValue> {
  const out: Record<string, RawValue> = {};
  const info = binding.jemallocInfo();
  if (!info.serving) return out;
  out.symbolPrefix = info.prefix;
  for (const name of CONFIG) out[name] = readOrNull(name);
  out.epochIntervalMs = epochIntervalMs;
  return out;
}

export const jemallocBackend: Backend = {
  name: 'jemalloc',
  canTrim: true,
  sampleSync() {
    return toSample(binding.jemallocSampleSync(epochIntervalMs));
  },
  sample() {
    return keepCallerStack(binding.jemallocSample(epochIntervalMs), jemallocBackend.sample).then(toSample);
  },
  trimSync() {
    return jemallocTrimSync(false);
  },
  trim() {
    return jemallocTrim(false, jemallocBackend.trim);
  },
  config: jemallocConfig,
};
