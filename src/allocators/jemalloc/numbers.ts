// jemalloc: stats.* after an epoch refresh (rate-limited: it merges every arena), dirty and
// muzzy pages for what a purge returns. What the native records mean.
import type { NativeProcessMemory } from '../../core/binding';
import type { RawValue } from '../../core/types';
import type { NativeSample, NativeTrim } from '../../core/wire';
import type { AllocatorNumbers, BackendSample, BackendTrim } from '../types';

export const NS_PER_MS = 1e6;
const MiB = 1024 * 1024;

/** Default minimum time between two epoch refreshes (stats are at most this old). */
export const DEFAULT_EPOCH_INTERVAL_MS = 100;
// One string per interval, not one per sample (the age itself is raw.epochAgeMs).
let staleNote = { intervalMs: -1, text: '' };
function staleStatsNote(epochIntervalMs: number): string {
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

// The fields read from the native records, by the names native/jemalloc/jemalloc.cc declares.
export const SAMPLE_FIELDS = [
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
export type Field = (typeof SAMPLE_FIELDS)[number];

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

export function jemallocNumbers(s: JemallocSample, epochIntervalMs: number): AllocatorNumbers {
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
  if (!s.refreshed && s.epochAgeNs !== null) notes.push(staleStatsNote(epochIntervalMs));
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

export function jemallocToSample(n: NativeSample<Field>, epochIntervalMs: number): BackendSample {
  return { numbers: jemallocNumbers(fromNative(n), epochIntervalMs), process: n.process };
}

export function jemallocTrimOutcome(t: NativeTrim<Field, never>, action: string, epochIntervalMs: number): BackendTrim {
  const noProcess: NativeProcessMemory = { rss: null, rssAnon: null, rssFile: null, rssShmem: null, swap: null };
  const before = jemallocNumbers(jemallocSample(true, t.before, noProcess, 0), epochIntervalMs);
  const after = jemallocNumbers(jemallocSample(true, t.after, noProcess, 0), epochIntervalMs);
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

export const action = (decay: boolean): string => (decay ? 'arena.4096.decay' : 'arena.4096.purge');
