// The doctor's public types: what a monitor records, what diagnose() reads and what it returns.
// The sample is flat and every number may be null, so samples taken from outside a process
// (RSS only) are diagnosable too, for what their numbers allow.
import type { DoctorEnvName } from '../allocators/registry';
import type { AllocatorName } from '../types';

/** One point in time, flat. Every number may be null (unknown / not observable from outside). */
export interface MonitorSample {
  /** Milliseconds since the epoch. */
  time: number;
  rss: number | null;
  rssAnon: number | null;
  heapUsed: number | null;
  heapTotal: number | null;
  external: number | null;
  arrayBuffers: number | null;
  allocated: number | null;
  resident: number | null;
  heldBack: number | null;
  releasable: number | null;
  /** Event-loop utilisation over the interval before this sample, 0..1. */
  elu: number | null;
  /** Who served malloc when sampled. */
  allocator: AllocatorName;
  /** monitor.track(name, fn) values. */
  gauges?: Record<string, number>;
  /** The container's memory limit and usage (cgroup v2 or v1); null limit when unlimited. */
  cgroup?: { limit: number | null; usage: number | null } | null;
  /** RSS released by a trim since the previous sample, if one ran. */
  trimmedBytes?: number | null;
  /** Milliseconds spent in garbage collection since the previous sample, if observed. */
  gcMs?: number | null;
  /** glibc: the arenas it has (the main arena and one per thread arena found); null elsewhere. */
  arenas?: number | null;
}

/** Facts about the process, not the samples. */
export interface DiagnoseContext {
  allocator?: { name: AllocatorName; version: string | null };
  /**
   * The variables the doctor reads (the registry rows' env.doctor): LD_PRELOAD, MALLOC_ARENA_MAX,
   * MALLOC_CONF, TCMALLOC_RELEASE_RATE, MIMALLOC_PURGE_DELAY and MIMALLOC_DECOMMIT_DELAY
   * (mimalloc 2.0's name for the purge delay).
   */
  env?: { [K in DoctorEnvName]?: string };
  /** JS/worker threads if known. */
  threads?: number | null;
  /** jemalloc background_thread in effect, if known. */
  backgroundThread?: boolean | null;
  /** An auto-trimmer (startAutoTrim) runs in the process, if known. */
  autoTrim?: boolean | null;
}

export type Severity = 'info' | 'warning' | 'critical';

/** The stable finding ids (code outside the project relies on them). */
export type FindingId =
  | 'js-heap-growth'
  | 'arraybuffer-growth'
  | 'native-growth'
  | 'backlog'
  | 'allocator-retention'
  | 'unaccounted-growth'
  | 'preload-not-effective'
  | 'glibc-many-threads'
  | 'jemalloc-no-background-thread';

export interface Finding {
  id: string;
  severity: Severity;
  title: string;
  summary: string;
  evidence: Record<string, unknown>;
  advice: string[];
}

/**
 * RSS of one sample split into parts that add up to `rss` (each null when unknown):
 * v8Heap + arrayBuffers + nativeInUse + heldBack + other = rss.
 */
export interface RssParts {
  time: number;
  rss: number | null;
  /** The V8 heap (heapTotal): JS objects, not allocated through malloc. */
  v8Heap: number | null;
  /** ArrayBuffers and Buffers held from JS (allocated through malloc). */
  arrayBuffers: number | null;
  /** Malloc in use that V8 does not account for as ArrayBuffers: addons, Node internals, queued messages. */
  nativeInUse: number | null;
  /** Freed memory the allocator keeps resident. */
  heldBack: number | null;
  /** The rest: code, thread stacks, other mappings (rss − the parts above). */
  other: number | null;
  /** RSS released by a trim since the previous sample, when one ran. */
  trimmedBytes: number | null;
}

export interface Diagnosis {
  findings: Finding[];
  /** Per-sample split of RSS, oldest first. */
  parts: RssParts[];
  window: { start: number; end: number; samples: number };
  /** Why some rules could not judge (too short a window, unknown numbers), in words. */
  notes: string[];
}

/** Thresholds of diagnose(); every one has a default (see docs/doctor.md for the reasons). */
export interface DiagnoseThresholds {
  /** Samples in the first graceMs of the window are ignored (start-up, JIT, pools filling). */
  graceMs?: number;
  /** No trend verdict on a window (after the grace period) shorter than this. */
  minWindowMs?: number;
  /** No trend verdict on fewer samples than this (after the grace period). */
  minSamples?: number;
  /** A part must rise by at least this many bytes over the window to count as growing. */
  growthMinBytes?: number;
  /** ... and by at least this fraction of its starting value. */
  growthMinRatio?: number;
  /** Largest p-value of the Mann–Kendall test that still counts as a trend. */
  trendMaxP?: number;
  /** allocator-retention: held back at least this many bytes ... */
  retentionMinBytes?: number;
  /** ... and at least this share of RSS. */
  retentionMinShare?: number;
  /** backlog: the part fell back by at least this fraction of its rise. */
  drainMinFraction?: number;
  /** A growth whose projected time to the cgroup limit is below this becomes critical. */
  criticalHorizonMs?: number;
}

export interface DiagnoseOptions extends DiagnoseThresholds {
  context?: DiagnoseContext;
  /** The time the diagnosis is for (ms since the epoch); default: the last sample's time. */
  now?: number;
}

export interface MonitorOptions {
  /** Milliseconds between samples. Default 5000. Stretched when sampling costs more than the budget. */
  intervalMs?: number;
  /** How much history the ring buffer keeps, in milliseconds. Default 3600000 (one hour). */
  windowMs?: number;
  /** Fraction of one core that sampling may use. Default 0.001 (0.1 %). */
  budget?: number;
  /** Compute `releasable` in every sample (glibc: a malloc_info walk). Default true. */
  releasable?: boolean;
  /** Stops the monitor when aborted. */
  signal?: AbortSignal;
}

export interface MonitorTotals {
  running: boolean;
  startedAt: number;
  /** Current time between samples (intervalMs, or longer when the budget requires it). */
  intervalMs: number;
  baseIntervalMs: number;
  /** How far back the samples go (options.windowMs, or its default). */
  windowMs: number;
  samples: number;
  /** What sampling cost in total (wall time of each sample, threadpool included), in ms. */
  sampleTimeMs: number;
  lastSampleMs: number | null;
  /** sampleTimeMs / time since start: the share of one core spent sampling. */
  costShare: number;
  budget: number;
  errors: number;
  lastError: string | null;
}

/** The handle createMonitor() returns. */
export interface Monitor {
  readonly running: boolean;
  /** The samples in the window, oldest first (a copy). */
  samples(): MonitorSample[];
  /** Facts about this process for diagnose(): allocator, environment, jemalloc background thread. */
  context(): DiagnoseContext;
  /** Records fn() as gauge `name` in every sample from now on (a queue depth, jobs in flight). */
  track(name: string, fn: () => number): this;
  /** Stops recording gauge `name`. */
  untrack(name: string): this;
  /** Takes a sample now (within the budget: resolves with null when one was taken too recently or is in flight). */
  sampleNow(): Promise<MonitorSample | null>;
  totals(): MonitorTotals;
  /** Stops sampling. Idempotent; the samples stay readable. */
  stop(): void;
}
