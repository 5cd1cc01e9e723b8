// The --export-json layout. A contract: code outside the project reads it, so fields are only
// ever added, never renamed. Bytes as numbers, unknown as null, times in ms.
import type { MonitorSample } from '../doctor/types';
import type { RunRecord } from './model';
import type { Ranking } from './rank';

/** The doctor's sample figures that the export carries, each as the doctor defines it. */
const JSON_SAMPLE_FIGURES = ['rss', 'rssAnon', 'heapUsed', 'external', 'arrayBuffers', 'allocated', 'resident', 'heldBack', 'releasable', 'elu'] as const;
type JsonSampleFigures = Pick<MonitorSample, (typeof JSON_SAMPLE_FIGURES)[number]>;

export interface JsonSample extends JsonSampleFigures {
  /** ms since the program started. */
  t: number;
}

export interface JsonRun {
  label: string;
  allocator: { name: string; version: string | null; library: string | null; env: Record<string, string> };
  exitCode: number | null;
  wallMs: number;
  rss: { peak: number | null; steady: number | null; final: number | null };
  samples: JsonSample[];
  findings: Array<{ id: string; severity: string; title: string; evidence: Record<string, unknown>; advice: string[] }>;
  /** Added to the layout: whether the allocator was seen serving the program (unverified runs are never ranked). */
  allocatorCheck: { detected: string | null; served: boolean | null; how: string };
}

export interface JsonReport {
  command: string[];
  runs: JsonRun[];
  recommendation: { label: string; reason: string } | null;
}

export function jsonReport(command: string[], runs: readonly RunRecord[], ranking: Ranking | null): JsonReport {
  return {
    command,
    runs: runs.map((r) => ({
      label: r.label,
      allocator: { name: r.allocator.name, version: r.allocator.version, library: r.allocator.library, env: r.allocator.env },
      exitCode: r.exitCode,
      wallMs: Math.round(r.wallMs),
      rss: r.rss,
      samples: r.samples.map((s) => {
        const sample = { t: s.time - r.startTime } as JsonSample;
        for (const k of JSON_SAMPLE_FIGURES) sample[k] = s[k];
        return sample;
      }),
      findings: r.findings.map((f) => ({ id: f.id, severity: f.severity, title: f.title, evidence: f.evidence, advice: f.advice })),
      allocatorCheck: { detected: r.check.detected, served: r.check.served, how: r.check.how },
    })),
    recommendation: ranking?.recommendation ?? null,
  };
}
