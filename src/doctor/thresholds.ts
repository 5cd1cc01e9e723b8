// The doctor's thresholds, each with the reason for its value. diagnose() options override them.
import type { DiagnoseThresholds } from './types';

const MiB = 1024 * 1024;

/** Start-up fills heaps, JIT code, pools and caches: growth in the first 30 s is not a trend. */
export const GRACE_MS = 30_000;
/** A trend needs time to be told from one burst: less than a minute of samples yields no verdict. */
export const MIN_WINDOW_MS = 60_000;
/** With fewer than 12 samples, 8 buckets hold one or two points each and GC saw-teeth show through. */
export const MIN_SAMPLES = 12;
/** Growth below 16 MiB is within what caches, JIT code and arenas do in a healthy process. */
export const GROWTH_MIN_BYTES = 16 * MiB;
/** ... and a part must grow by 10 % of where it started (Redis's "ratio above 1.1 and above 10 MB"). */
export const GROWTH_MIN_RATIO = 0.1;
/** Mann–Kendall p below 0.01 on the bucket minima: a rise that chance would give once in a hundred windows. */
export const TREND_MAX_P = 0.01;
/** Held back below 64 MiB is not worth a trim's arena locks (the same floor as startAutoTrim()). */
export const RETENTION_MIN_BYTES = 64 * MiB;
/** ... and below a quarter of RSS it is not what makes the process big (startAutoTrim()'s ratio). */
export const RETENTION_MIN_SHARE = 0.25;
/** A part that fell back by half of its rise or more drained: "most of the rise". */
export const DRAIN_MIN_FRACTION = 0.5;
/** A growth that reaches the container's limit within an hour is an OOM kill to come: critical. */
export const CRITICAL_HORIZON_MS = 3_600_000;
/** Event-loop utilisation above this over the rise of a part means the JS thread was saturated. */
export const BUSY_ELU = 0.9;
/** A tracked gauge "follows" a part when their Spearman rank correlation is at least this. */
export const FOLLOW_MIN_CORRELATION = 0.7;
/**
 * glibc gives each thread that mallocs its own arena (up to 8 per core, or MALLOC_ARENA_MAX), and
 * each arena keeps its own freed pages. A plain Node process already runs 11 threads (main, 4
 * libuv pool, 4 V8 platform workers, inspector, signal) and glibc has 10 arenas in it (measured:
 * an HTTP server doing zlib, fs and crypto, Node 20, glibc 2.36). Only arenas beyond these come
 * from the program's own threads (worker_threads, addon pools).
 */
export const NODE_BASELINE_ARENAS = 11;
/**
 * jemalloc's default dirty_decay_ms and muzzy_decay_ms: an arena that decays returns freed pages
 * within this time. Pages held longer were not decayed: no thread touched their arena.
 */
export const JEMALLOC_DECAY_MS = 10_000;

export type Thresholds = Required<DiagnoseThresholds>;

export const DEFAULT_THRESHOLDS: Readonly<Thresholds> = Object.freeze({
  graceMs: GRACE_MS,
  minWindowMs: MIN_WINDOW_MS,
  minSamples: MIN_SAMPLES,
  growthMinBytes: GROWTH_MIN_BYTES,
  growthMinRatio: GROWTH_MIN_RATIO,
  trendMaxP: TREND_MAX_P,
  retentionMinBytes: RETENTION_MIN_BYTES,
  retentionMinShare: RETENTION_MIN_SHARE,
  drainMinFraction: DRAIN_MIN_FRACTION,
  criticalHorizonMs: CRITICAL_HORIZON_MS,
});
