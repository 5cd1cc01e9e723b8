// mallctl by name: the type of each name, and every argument checked before the addon sees it
// (native/jemalloc/jemalloc.cc guards only against undefined behaviour).
import { addon, type MallctlType, type MallctlValue } from '../../core/binding';
import { describe, rangeError, typeError, unsupported, withCode } from '../../core/errors';
import { cName } from '../../core/validate';

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

export function requireServing(what: string): void {
  if (!addon().jemallocInfo().serving) {
    throw unsupported(`${what} needs jemalloc serving malloc(), but it does not in this process`);
  }
}

const checkName = (name: unknown): string => cName(name, 'a mallctl name (non-empty string)', 'name');

function typeOf(name: string): MallctlType {
  const type = mallctlType(name);
  if (type !== undefined) return type;
  const exists = addon().jemallocExists(name);
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
  const type = typeOf(n);
  if (type === 'void') throw withCode(new Error(`mallctl ${n} is an action: it has no value to read`), 'ERR_MALLCTL_ACCESS');
  return addon().jemallocRead(n, type);
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
  // jemalloc reads a C string: what follows a NUL would be dropped without a word.
  if (typeof value === 'string' && value.includes('\0')) {
    throw withCode(new TypeError(`Expected a string without NUL characters for the value of ${n} but received ${describe(value)}`), 'ERR_INVALID_ARG_VALUE');
  }
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
  addon().jemallocWrite(n, type, value as MallctlValue);
}

/** Reads a value, or null when this jemalloc lacks the name (older version, no stats). */
export function readOrNull(name: string): MallctlValue {
  try {
    return addon().jemallocRead(name, typeOf(name));
  } catch {
    return null;
  }
}
