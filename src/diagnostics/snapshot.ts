// One sample shared by every reader (endpoint, prom-client, OpenTelemetry): a burst of scrapes
// reuses the cached sample or joins the one in flight instead of walking the allocator again.
import { autoTrimTotals, type AutoTrimTotals } from '../autotrim';
import { currentDiagnosis } from '../doctor/endpoint';
import type { Diagnosis } from '../doctor/types';
import { allocatorStats } from '../api/stats';
import { trimEvents, trimTotals, type TrimTotals } from '../api/trim';
import type { MemoryStats } from '../types';

export interface DiagnosticSnapshot {
  stats: MemoryStats;
  /** Every trim in this thread, whoever asked for it. */
  trims: TrimTotals;
  /** null when no auto-trimmer was started in this thread. */
  autoTrim: AutoTrimTotals | null;
  /** The diagnosis of the monitor running in this thread; null when none runs. */
  doctor: Diagnosis | null;
}

let last: { stats: MemoryStats; at: number } | null = null;
let inFlight: Promise<MemoryStats> | null = null;
// Bumped by every trim: a sample that started before a trim must not be cached after it.
let generation = 0;

/** A sample no older than maxAgeMs (0: a new one, or the one already being taken). */
export function sharedStats(maxAgeMs: number): Promise<MemoryStats> {
  if (last && performance.now() - last.at < maxAgeMs) return Promise.resolve(last.stats);
  if (!inFlight) {
    const started = generation;
    inFlight = allocatorStats().then(
      (stats) => {
        if (started === generation) last = { stats, at: performance.now() };
        inFlight = null;
        return stats;
      },
      (error: unknown) => {
        inFlight = null;
        throw error;
      },
    );
  }
  return inFlight;
}

/** After a trim (any caller) the cached numbers are stale. */
export function invalidateSharedStats(): void {
  last = null;
  generation++;
}
trimEvents.on('trim', invalidateSharedStats);

export async function snapshot(maxAgeMs: number): Promise<DiagnosticSnapshot> {
  const stats = await sharedStats(maxAgeMs);
  // Totals are cheap counters: always current, even when the sample is cached.
  return { stats, trims: trimTotals(), autoTrim: autoTrimTotals(), doctor: currentDiagnosis() };
}
