// The mimalloc namespace: version, options, process info, collect on every JS thread.
// mimalloc: committed memory from mi_process_info() as resident; release builds do not count
// allocated bytes, so allocated and heldBack are null. Heaps belong to threads, so trim()
// asks every JS thread that loaded this addon to run mi_collect(true) on itself.
import { binding, nativeBackend, type NativeMimallocProcessInfo, type NativeProcessMemory, type NativeSample, type NativeTrim } from './binding';
import { registerBackend } from './backends';
import { backendOver } from './backends/native';
import type { AllocatorNumbers, BackendSample, BackendTrim } from './backends/types';
import { mimallocVersionText, requireAllocator } from './detect';
import { typeError, unsupported, withCode } from './errors';
import { trim as unifiedTrim } from './trim';
import type { RawValue, TrimResult } from './types';
import { integer } from './validate';

// ---- Numbers: what the native records mean ----

const NS_PER_MS = 1e6;

/** Default time a trim waits for other threads to collect. */
const DEFAULT_COLLECT_TIMEOUT_MS = 2000;
let collectTimeoutMs = DEFAULT_COLLECT_TIMEOUT_MS;


// mi_option_t is an enum whose order changed between releases; names are only given for
// versions whose header was checked (2.0.x: mimalloc.h of 2.0.9).
const OPTIONS_2_0 = [
  'show_errors',
  'show_stats',
  'verbose',
  'eager_commit',
  'deprecated_eager_region_commit',
  'deprecated_reset_decommits',
  'large_os_pages',
  'reserve_huge_os_pages',
  'reserve_huge_os_pages_at',
  'reserve_os_memory',
  'deprecated_segment_cache',
  'page_reset',
  'abandoned_page_decommit',
  'deprecated_segment_reset',
  'eager_commit_delay',
  'decommit_delay',
  'use_numa_nodes',
  'limit_os_alloc',
  'os_tag',
  'max_errors',
  'max_warnings',
  'max_segment_reclaim',
  'allow_decommit',
  'segment_decommit_delay',
  'decommit_extend_delay',
  'destroy_on_exit',
] as const;
const STABLE_OPTIONS = ['show_errors', 'show_stats', 'verbose'] as const;

/** mi_version() as "major.minor.patch", or null. */
function mimallocVersion(): string | null {
  const v = binding.mimallocInfo().version;
  return v === null ? null : mimallocVersionText(v);
}

/** Option names for this mimalloc, in enum order (only the stable ones when the version is not known). */
function mimallocOptionNames(): readonly string[] {
  const v = binding.mimallocInfo().version;
  return v !== null && v >= 200 && v < 210 ? OPTIONS_2_0 : STABLE_OPTIONS;
}

// Index of the decommit delay ("decommit_delay" in 2.0.x, "purge_delay" at the same place
// in 2.1+), set to 0 while a trim collects; -1 when the option layout is not known.
function delayOption(): number {
  const v = binding.mimallocInfo().version;
  return v !== null && v >= 200 && v < 210 ? OPTIONS_2_0.indexOf('decommit_delay') : -1;
}

// Whether this build counts allocated bytes (MI_STAT > 0): its statistics then list the
// per-size-class "normal" bins, which release builds leave out.
let counts: boolean | undefined;
function countsAllocated(): boolean {
  if (counts === undefined) {
    const text = binding.mimallocStatsText() ?? '';
    counts = /^\s*normal\b/m.test(text) || /malloc req/.test(text);
  }
  return counts;
}

// The fields read from the native records, by the names native/mimalloc.cc declares.
const PROCESS_INFO = ['elapsedMs', 'userMs', 'systemMs', 'currentRss', 'peakRss', 'currentCommit', 'peakCommit', 'pageFaults'] as const;
const SAMPLE_FIELDS = ['processInfo', ...PROCESS_INFO] as const;
type Field = (typeof SAMPLE_FIELDS)[number];
const native = nativeBackend('mimalloc', {
  sample: SAMPLE_FIELDS,
  sampleArgs: [],
  gauge: SAMPLE_FIELDS,
  trim: ['threads', 'answered', 'unreachable'],
  trimArgs: ['timeoutMs', 'delayOption'],
});

/** One mimalloc sample: mi_process_info() when mimalloc serves malloc. */
interface MimallocSample {
  serving: boolean;
  process: NativeProcessMemory;
  processInfo: NativeMimallocProcessInfo | null;
  costNs: number;
}

function processInfoOf(f: { readonly [K in Field]: number | null }): NativeMimallocProcessInfo | null {
  if (f.processInfo !== 1) return null;
  const info = {} as Record<(typeof PROCESS_INFO)[number], number>;
  for (const name of PROCESS_INFO) info[name] = f[name] ?? 0;
  return info;
}

const fromNative = (n: NativeSample<Field>): MimallocSample => ({
  serving: n.serving,
  process: n.process,
  processInfo: processInfoOf(n.fields),
  costNs: n.costNs,
});

/** mi_process_info() now, or null when mimalloc does not serve malloc. */
function mimallocProcessInfo(): NativeMimallocProcessInfo | null {
  return fromNative(native.sampleSync({})).processInfo;
}

function mimallocNumbers(s: MimallocSample): AllocatorNumbers {
  const notes: string[] = [];
  const pi = s.processInfo;
  if (!s.serving || pi === null) {
    notes.push('mimalloc does not serve malloc() in this process: its counters are not reported');
    return { allocated: null, resident: null, heldBack: null, releasable: null, mapped: null, raw: {}, notes };
  }
  const raw: Record<string, RawValue> = { ...pi };
  notes.push(
    countsAllocated()
      ? 'this mimalloc counts statistics, but allocated bytes are not read from them yet: allocated and heldBack are unknown'
      : 'this mimalloc is a release build, which does not count allocated bytes: allocated and heldBack are unknown',
  );
  notes.push(
    'resident is the memory mimalloc has committed (mi_process_info current_commit): it includes committed pages ' +
      'never touched, so it can exceed what RSS shows',
  );
  return { allocated: null, resident: pi.currentCommit, heldBack: null, releasable: null, mapped: null, raw, notes };
}

function toSample(n: NativeSample<Field>): BackendSample {
  return { numbers: mimallocNumbers(fromNative(n)), process: n.process };
}

function toTrim(t: NativeTrim<Field, 'threads' | 'answered' | 'unreachable'>): BackendTrim {
  const native = { ...t, threads: t.fields.threads ?? 0, answered: t.fields.answered ?? 0, unreachable: t.fields.unreachable ?? 0 };
  const notes: string[] = [];
  const before = processInfoOf(t.before)?.currentCommit ?? null;
  const after = processInfoOf(t.after)?.currentCommit ?? null;
  if (before !== null && after !== null) notes.push(`mimalloc committed memory went from ${before} to ${after} bytes`);
  notes.push(
    `mi_collect(true) ran on this thread and was asked of ${native.threads} other JS thread(s); ` +
      `${native.answered} answered in time`,
  );
  if (native.answered < native.threads) {
    notes.push(
      `${native.threads - native.answered} JS thread(s) did not collect within ${collectTimeoutMs} ms (busy event loop): ` +
        'their free pages stay until they do',
    );
  }
  if (native.unreachable > 0) notes.push(`${native.unreachable} JS thread(s) were shutting down and could not be asked`);
  const v = binding.mimallocInfo().version;
  if (v !== null && v < 210) {
    notes.push(
      'mimalloc 2.0 decommits pages freed earlier only when their thread allocates from that segment again or exits, ' +
        'which an idle thread never does; mi_collect(true) cannot force it. Run with MIMALLOC_DECOMMIT_DELAY=0 to return ' +
        'pages as they are freed',
    );
  }
  notes.push(
    'threads that never loaded allocator-stats (and native threads) cannot be asked: ' +
      'their free pages go back when they exit or collect',
  );
  return {
    supported: true,
    rssBefore: native.rssBefore,
    rssAfter: native.rssAfter,
    heldBackBefore: null,
    heldBackAfter: null,
    durationMs: native.durationNs / NS_PER_MS,
    notes,
  };
}

function mimallocConfig(): Record<string, RawValue> {
  const info = binding.mimallocInfo();
  if (!info.serving) return {};
  const out: Record<string, RawValue> = { version: mimallocVersion(), registeredThreads: info.registeredThreads };
  mimallocOptionNames().forEach((name, i) => {
    if (!name.startsWith('deprecated_')) out[name] = binding.mimallocOptionGet(i);
  });
  out.collectTimeoutMs = collectTimeoutMs;
  return out;
}

const mimallocBackend = backendOver('mimalloc', native, {
  sampleArgs: () => ({}),
  trimArgs: () => ({ timeoutMs: collectTimeoutMs, delayOption: delayOption() }),
  toSample,
  toTrim,
  config: mimallocConfig,
});

// ---- The public namespace ----

export type MimallocProcessInfo = NativeMimallocProcessInfo;

const requireMimalloc = (what: string): void => requireAllocator('mimalloc', what);

/** mi_version() as "major.minor.patch". */
export function version(): string | null {
  requireMimalloc('mimalloc.version()');
  return mimallocVersion();
}

function optionIndex(name: unknown): number {
  if (typeof name !== 'string') throw typeError('a mimalloc option name', 'name', name);
  const names = mimallocOptionNames();
  const i = names.indexOf(name);
  if (i < 0 || name.startsWith('deprecated_')) {
    throw withCode(
      new TypeError(`Expected one of ${names.filter((n) => !n.startsWith('deprecated_')).join(', ')} for name but received ${JSON.stringify(name)}`),
      'ERR_MIMALLOC_OPTION',
    );
  }
  return i;
}

/** mi_option_get(name); with a value, mi_option_set(name, value) first. Returns the value in effect. */
export function option(name: string, value?: number): number | null {
  const i = optionIndex(name);
  if (value !== undefined) integer(value, 'value', -(2 ** 31), 2 ** 31 - 1);
  requireMimalloc('mimalloc.option()');
  if (value !== undefined) binding.mimallocOptionSet(i, value);
  return binding.mimallocOptionGet(i);
}

/** mi_process_info(). */
export function processInfo(): MimallocProcessInfo {
  requireMimalloc('mimalloc.processInfo()');
  const info = mimallocProcessInfo();
  if (info === null) throw unsupported('mi_process_info() is not available');
  return info;
}

/** mimalloc's own statistics text (what it counts depends on how it was built). */
export function statsText(): string | null {
  requireMimalloc('mimalloc.statsText()');
  return binding.mimallocStatsText();
}

/** mi_collect(true) on every JS thread that loaded allocator-stats, measured like trim(). */
export function collect(): Promise<TrimResult> {
  try {
    requireMimalloc('mimalloc.collect()');
  } catch (error) {
    return Promise.reject(error);
  }
  return unifiedTrim();
}

/** How long a trim waits for other JS threads to collect (default 2000 ms). */
export function setCollectTimeout(ms: number): void {
  collectTimeoutMs = integer(ms, 'ms', 0, 600_000);
}

export function collectTimeout(): number {
  return collectTimeoutMs;
}

export function config(): Record<string, RawValue> {
  requireMimalloc('mimalloc.config()');
  return mimallocConfig();
}

registerBackend(mimallocBackend);

// A thread that is exiting will never collect: say so as its exit begins, so that trims that
// asked it stop waiting (process.exit() stops worker threads before the main thread's
// environment is torn down, and a worker blocked in trimSync() waits for the main thread).
if (binding.mimallocInfo().version !== null) process.once('exit', () => binding.mimallocClosing());
