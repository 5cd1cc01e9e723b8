// mimalloc: committed memory from mi_process_info() as resident; release builds do not count
// allocated bytes, so allocated and heldBack are null. What the native records mean.
import { addon, type BackendBinding, type NativeMimallocProcessInfo, type NativeProcessMemory } from '../../core/binding';
import type { RawValue } from '../../core/types';
import type { NativeSample, NativeTrim } from '../../core/wire';
import type { AllocatorNumbers, BackendSample, BackendTrim } from '../types';

export const NS_PER_MS = 1e6;

/** Default time a trim waits for other threads to collect. */
export const DEFAULT_COLLECT_TIMEOUT_MS = 2000;


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

type Reader = Pick<BackendBinding, 'mimallocInfo' | 'mimallocStatsText'>;

/** mi_version() as "major.minor.patch", or null. */
export function mimallocVersion(): string | null {
  const v = addon().mimallocInfo().version;
  return v === null ? null : mimallocVersionText(v);
}

/** Option names for this mimalloc, in enum order (only the stable ones when the version is not known). */
export function mimallocOptionNames(): readonly string[] {
  const v = addon().mimallocInfo().version;
  return v !== null && v >= 200 && v < 210 ? OPTIONS_2_0 : STABLE_OPTIONS;
}

// Index of the decommit delay ("decommit_delay" in 2.0.x, "purge_delay" at the same place
// in 2.1+), set to 0 while a trim collects; -1 when the option layout is not known.
export function delayOption(binding: Reader = addon()): number {
  const v = binding.mimallocInfo().version;
  return v !== null && v >= 200 && v < 210 ? OPTIONS_2_0.indexOf('decommit_delay') : -1;
}

// Whether this build counts allocated bytes (MI_STAT > 0): its statistics then list the
// per-size-class "normal" bins, which release builds leave out.
const counts = new WeakMap<Reader, boolean>();
function countsAllocated(binding: Reader): boolean {
  let yes = counts.get(binding);
  if (yes === undefined) {
    const text = binding.mimallocStatsText() ?? '';
    counts.set(binding, (yes = /^\s*normal\b/m.test(text) || /malloc req/.test(text)));
  }
  return yes;
}

// The fields read from the native records, by the names native/mimalloc/mimalloc.cc declares.
const PROCESS_INFO = ['elapsedMs', 'userMs', 'systemMs', 'currentRss', 'peakRss', 'currentCommit', 'peakCommit', 'pageFaults'] as const;
export const TRIM_FIELDS = ['threads', 'answered', 'unreachable'] as const;
export const SAMPLE_FIELDS = ['processInfo', ...PROCESS_INFO] as const;
export type Field = (typeof SAMPLE_FIELDS)[number];
interface MimallocSample {
  serving: boolean;
  process: NativeProcessMemory;
  processInfo: NativeMimallocProcessInfo | null;
  costNs: number;
}

/** mi_process_info() as the sample read it; null when it was not read (mimalloc does not serve malloc, or lacks it). */
export function processInfoOf(f: { readonly [K in Field]: number | null }): NativeMimallocProcessInfo | null {
  if (f.processInfo !== 1) return null;
  const info = {} as Record<(typeof PROCESS_INFO)[number], number>;
  for (const name of PROCESS_INFO) info[name] = f[name] ?? 0;
  return info;
}

export const fromNative = (n: NativeSample<Field>): MimallocSample => ({
  serving: n.serving,
  process: n.process,
  processInfo: processInfoOf(n.fields),
  costNs: n.costNs,
});

/** The unified numbers from one sample's process info (resident and committed memory only). */
function mimallocNumbers(s: MimallocSample, binding: Reader): AllocatorNumbers {
  const notes: string[] = [];
  const pi = s.processInfo;
  if (!s.serving || pi === null) {
    notes.push('mimalloc does not serve malloc() in this process: its counters are not reported');
    return { allocated: null, resident: null, heldBack: null, releasable: null, mapped: null, raw: {}, notes };
  }
  const raw: Record<string, RawValue> = { ...pi };
  notes.push(
    countsAllocated(binding)
      ? 'this mimalloc counts statistics, but allocated bytes are not read from them yet: allocated and heldBack are unknown'
      : 'this mimalloc is a release build, which does not count allocated bytes: allocated and heldBack are unknown',
  );
  notes.push(
    'resident is the memory mimalloc has committed (mi_process_info current_commit): it includes committed pages ' +
      'never touched, so it can exceed what RSS shows',
  );
  return { allocated: null, resident: pi.currentCommit, heldBack: null, releasable: null, mapped: null, raw, notes };
}

/** `binding`: the addon by default, or an agent's (another process). */
export function mimallocToSample(n: NativeSample<Field>, binding: Reader = addon()): BackendSample {
  return { numbers: mimallocNumbers(fromNative(n), binding), process: n.process };
}

export function mimallocToTrim(
  t: NativeTrim<Field, 'threads' | 'answered' | 'unreachable'>,
  collectTimeoutMs: number,
  binding: Reader = addon(),
): BackendTrim {
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


/** mi_version() (major*100 + minor*10 + patch) as "major.minor.patch". */
export function mimallocVersionText(v: number): string {
  return `${Math.floor(v / 100)}.${Math.floor((v % 100) / 10)}.${v % 10}`;
}
