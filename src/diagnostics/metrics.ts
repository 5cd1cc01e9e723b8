// The exported metrics, defined once for the Prometheus text, prom-client and OpenTelemetry.
// A value that is unknown (null) produces no point at all: never a 0 that looks like a measurement.
// Another process has no V8 figures here: those families are left out.
import { SKIP_REASONS } from '../autotrim';
import type { DiagnosticSnapshot } from './snapshot';

export type Labels = Record<string, string>;

export interface MetricPoint {
  labels: Labels;
  value: number;
}

export interface MetricDefinition {
  /** Prometheus name without the prefix, e.g. 'held_back_bytes'. */
  prom: string;
  /** OpenTelemetry name without the prefix, e.g. 'held_back'. */
  otel: string;
  /** UCUM unit for OpenTelemetry ('By', 's', '1', '{trim}'). */
  unit: string;
  type: 'gauge' | 'counter';
  help: string;
  /** Label names besides `allocator`. */
  labels: readonly string[];
  points(s: DiagnosticSnapshot): MetricPoint[];
}

const MS_PER_S = 1000;
const SEVERITIES = ['info', 'warning', 'critical'] as const;

function one(s: DiagnosticSnapshot, value: number | null | undefined, extra: Labels = {}): MetricPoint[] {
  if (value === null || value === undefined || !Number.isFinite(value)) return [];
  return [{ labels: { allocator: s.stats.allocator.name, ...extra }, value }];
}

function gauge(prom: string, otel: string, unit: string, help: string, get: (s: DiagnosticSnapshot) => number | null | undefined): MetricDefinition {
  return { prom, otel, unit, type: 'gauge', help, labels: [], points: (s) => one(s, get(s)) };
}

function counter(prom: string, otel: string, unit: string, help: string, get: (s: DiagnosticSnapshot) => number | null | undefined): MetricDefinition {
  return { prom, otel, unit, type: 'counter', help, labels: [], points: (s) => one(s, get(s)) };
}

export const METRICS: readonly MetricDefinition[] = [
  {
    prom: 'info',
    otel: 'info',
    unit: '1',
    type: 'gauge',
    help: 'The allocator serving malloc() in this process (value always 1).',
    labels: ['version'],
    points: (s) => one(s, 1, { version: s.stats.allocator.version ?? '' }),
  },
  gauge('allocated_bytes', 'allocated', 'By', 'Bytes the program holds through malloc.', (s) => s.stats.allocated),
  gauge('resident_bytes', 'resident', 'By', "Bytes of the allocator's memory that are in RAM.", (s) => s.stats.resident),
  gauge('held_back_bytes', 'held_back', 'By', 'Freed memory the allocator keeps in RAM instead of returning it (resident - allocated).', (s) => s.stats.heldBack),
  gauge('held_back_ratio', 'held_back.ratio', '1', 'held_back_bytes / resident_bytes.', (s) => s.stats.heldBackRatio),
  gauge('releasable_bytes', 'releasable', 'By', 'Bytes a trim would give back to the OS now (the rest of held_back is fragmentation).', (s) => s.stats.releasable),
  gauge('mapped_bytes', 'mapped', 'By', 'Bytes of address space the allocator has mapped.', (s) => s.stats.mapped),
  gauge('process_rss_bytes', 'process.rss', 'By', 'Resident set size of the process (VmRSS).', (s) => s.stats.process.rss),
  gauge('process_rss_anon_bytes', 'process.rss_anon', 'By', 'Anonymous resident memory of the process (RssAnon).', (s) => s.stats.process.rssAnon),
  gauge('process_rss_file_bytes', 'process.rss_file', 'By', 'File-backed resident memory of the process (RssFile).', (s) => s.stats.process.rssFile),
  gauge('process_rss_shmem_bytes', 'process.rss_shmem', 'By', 'Shared resident memory of the process (RssShmem).', (s) => s.stats.process.rssShmem),
  gauge('process_swap_bytes', 'process.swap', 'By', 'Swapped-out memory of the process (VmSwap).', (s) => s.stats.process.swap),
  gauge('v8_heap_physical_bytes', 'v8.heap.physical', 'By', 'Physical memory of the V8 heap (not allocated through malloc).', (s) => s.stats.v8?.physical),
  gauge('v8_heap_used_bytes', 'v8.heap.used', 'By', 'Bytes in use in the V8 heap.', (s) => s.stats.v8?.heapUsed),
  gauge('v8_external_bytes', 'v8.external', 'By', 'Memory of C++ objects bound to JS objects, ArrayBuffers included (allocated through malloc).', (s) => s.stats.v8?.external),
  gauge('stats_duration_seconds', 'stats.duration', 's', 'What taking the last sample cost (wall time).', (s) => s.stats.costMs / MS_PER_S),
  counter('trims_total', 'trims', '{trim}', 'Trims completed in this thread, whoever asked for them.', (s) => s.trims.trims),
  counter('trim_released_bytes_total', 'trim.released', 'By', 'Bytes the trims released, measured from RSS.', (s) => s.trims.releasedBytes),
  counter('trim_duration_seconds_total', 'trim.duration', 's', "Time spent in the allocator's trim calls.", (s) => s.trims.durationMs / MS_PER_S),
  gauge('autotrim_running', 'autotrim.running', '1', '1 while the auto-trimmer runs, 0 once stopped (absent when never started).', (s) =>
    s.autoTrim ? Number(s.autoTrim.running) : null,
  ),
  gauge('autotrim_interval_seconds', 'autotrim.interval', 's', 'Current time between auto-trim checks.', (s) => (s.autoTrim ? s.autoTrim.intervalMs / MS_PER_S : null)),
  counter('autotrim_trims_total', 'autotrim.trims', '{trim}', 'Trims the auto-trimmer ran.', (s) => s.autoTrim?.trims),
  {
    prom: 'autotrim_skips_total',
    otel: 'autotrim.skips',
    unit: '{check}',
    type: 'counter',
    help: 'Auto-trim checks that did not trim, by reason.',
    labels: ['reason'],
    points: (s) => (s.autoTrim ? SKIP_REASONS.flatMap((reason) => one(s, s.autoTrim!.skips[reason] ?? 0, { reason })) : []),
  },
  counter('autotrim_released_bytes_total', 'autotrim.released', 'By', 'Bytes the auto-trimmer released, measured from RSS.', (s) => s.autoTrim?.releasedBytes),
  counter('autotrim_trim_duration_seconds_total', 'autotrim.trim.duration', 's', 'Time the auto-trimmer spent trimming.', (s) =>
    s.autoTrim ? s.autoTrim.trimTimeMs / MS_PER_S : null,
  ),
  counter('autotrim_sample_duration_seconds_total', 'autotrim.sample.duration', 's', 'Time the auto-trimmer spent sampling.', (s) =>
    s.autoTrim ? s.autoTrim.sampleTimeMs / MS_PER_S : null,
  ),
  {
    prom: 'doctor_findings',
    otel: 'doctor.findings',
    unit: '{finding}',
    type: 'gauge',
    help: "The doctor's current findings by severity (absent when no monitor runs).",
    labels: ['severity'],
    points: (s) => (s.doctor ? SEVERITIES.flatMap((severity) => one(s, s.doctor!.findings.filter((f) => f.severity === severity).length, { severity })) : []),
  },
  {
    prom: 'doctor_finding',
    otel: 'doctor.finding',
    unit: '1',
    type: 'gauge',
    help: 'One point (value 1) per current finding of the doctor, by id and severity.',
    labels: ['id', 'severity'],
    points: (s) => (s.doctor ? s.doctor.findings.flatMap((f) => one(s, 1, { id: f.id, severity: f.severity })) : []),
  },
];
