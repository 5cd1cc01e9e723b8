// One sample shared by every reader (endpoint, prom-client, OpenTelemetry): a burst of scrapes
// reuses the cached sample or joins the one in flight instead of walking the allocator again.
// One cache per source: this process's, and one per other process an endpoint serves.
import { autoTrimTotals, type AutoTrimTotals } from '../autotrim';
import { currentDiagnosis } from '../doctor/endpoint';
import type { Diagnosis } from '../doctor/types';
import { SELF_SOURCE, type SourceStats, type StatsSource } from '../api/source';
import { trimEvents, trimTotals, type TrimTotals } from '../api/trim';
import type { TrimResult } from '../types';

export interface DiagnosticSnapshot {
  stats: SourceStats;
  /** Every trim in this thread, whoever asked for it (another process: the trims made through this package). */
  trims: TrimTotals;
  /** null when no auto-trimmer was started in this thread (or the source is another process). */
  autoTrim: AutoTrimTotals | null;
  /** The diagnosis of the monitor watching the source; null when none runs. */
  doctor: Diagnosis | null;
}

interface Cache {
  last: { stats: SourceStats; at: number } | null;
  inFlight: Promise<SourceStats> | null;
  // Bumped by every trim: a sample that started before a trim must not be cached after it.
  generation: number;
  // Another process's trims, counted here: trimTotals() counts this thread's.
  trims: TrimTotals;
}

const caches = new WeakMap<StatsSource, Cache>();

function cacheOf(source: StatsSource): Cache {
  let c = caches.get(source);
  if (!c) {
    c = { last: null, inFlight: null, generation: 0, trims: { trims: 0, releasedBytes: 0, durationMs: 0 } };
    caches.set(source, c);
  }
  return c;
}

/** A sample no older than maxAgeMs (0: a new one, or the one already being taken). */
export function sharedStats(maxAgeMs: number, source: StatsSource = SELF_SOURCE): Promise<SourceStats> {
  const c = cacheOf(source);
  if (c.last && performance.now() - c.last.at < maxAgeMs) return Promise.resolve(c.last.stats);
  if (!c.inFlight) {
    const started = c.generation;
    c.inFlight = source.stats().then(
      (stats) => {
        if (started === c.generation) c.last = { stats, at: performance.now() };
        c.inFlight = null;
        return stats;
      },
      (error: unknown) => {
        c.inFlight = null;
        throw error;
      },
    );
  }
  return c.inFlight;
}

/** After a trim (any caller) the cached numbers are stale. */
export function invalidateSharedStats(source: StatsSource = SELF_SOURCE): void {
  const c = cacheOf(source);
  c.last = null;
  c.generation++;
}
trimEvents.on('trim', () => invalidateSharedStats(SELF_SOURCE));

/**
 * Trims the source and makes its cached numbers stale. This process's trims are counted and
 * invalidate through trimEvents; another process's here.
 */
export async function trimSource(source: StatsSource): Promise<TrimResult> {
  if (source.self) return source.trim();
  const c = cacheOf(source);
  c.generation++;
  try {
    const r = await source.trim();
    if (r.supported) {
      c.trims.trims++;
      c.trims.releasedBytes += r.releasedBytes ?? 0;
      c.trims.durationMs += r.durationMs;
    }
    return r;
  } finally {
    invalidateSharedStats(source);
  }
}

/**
 * The source's sample with the totals around it. `diagnosis` gives the doctor's view of another
 * process (the endpoint's monitor); this process's is the monitor running in this thread.
 */
export async function snapshot(maxAgeMs: number, source: StatsSource = SELF_SOURCE, diagnosis?: () => Diagnosis | null): Promise<DiagnosticSnapshot> {
  const stats = await sharedStats(maxAgeMs, source);
  // Totals are cheap counters: always current, even when the sample is cached.
  if (source.self) return { stats, trims: trimTotals(), autoTrim: autoTrimTotals(), doctor: currentDiagnosis() };
  return { stats, trims: { ...cacheOf(source).trims }, autoTrim: null, doctor: diagnosis ? diagnosis() : null };
}
