// The doctor's findings on one run: the CLI's samples as MonitorSamples, the run's facts as a
// DiagnoseContext.
import { DOCTOR_ENV_NAMES, PRELOAD_VARIABLE } from '../allocators/registry';
import { diagnose } from '../doctor/diagnose';
import { GRACE_MS, MIN_WINDOW_MS } from '../doctor/thresholds';
import type { DiagnoseContext, MonitorSample, RssParts } from '../doctor/types';
import type { AllocatorName } from '../types';
import type { CliFinding, RunRecord } from './model';

/**
 * A CLI run is a whole program's life, often seconds, where the doctor's server-sized start-up
 * grace (30 s) and shortest window (60 s) would leave no verdict at all. Scaled to the run: its
 * first tenth counts as start-up, and a window of half the run is long enough. The minimum
 * number of samples and the trend test stay as the doctor has them, so a short run still needs
 * enough samples (a shorter --interval) and a significant trend.
 */
export const RUN_GRACE_FRACTION = 0.1;
export const RUN_MIN_WINDOW_FRACTION = 0.5;

export function monitorSamples(run: RunRecord): MonitorSample[] {
  const allocator: AllocatorName = run.check.detected ?? 'unknown';
  const trims = [...run.trims];
  // A program the agent sampled is not a Node program: it has no V8 heap and no ArrayBuffers, so
  // those parts are zero (not unknown) and in-use memory is what malloc holds for it.
  const v8 = (v: number | null): number | null => (run.source === 'agent' && v === null ? 0 : v);
  return run.samples.map((s, i) => {
    const previous = i > 0 ? run.samples[i - 1].time : -Infinity;
    const released = trims.filter((t) => t.time > previous && t.time <= s.time);
    return {
      time: s.time,
      rss: s.rss,
      rssAnon: s.rssAnon,
      heapUsed: v8(s.heapUsed),
      heapTotal: v8(s.heapTotal),
      external: v8(s.external),
      arrayBuffers: v8(s.arrayBuffers),
      allocated: s.allocated,
      resident: s.resident,
      heldBack: s.heldBack,
      releasable: s.releasable,
      elu: s.elu,
      allocator,
      arenas: s.arenas ?? null,
      trimmedBytes: released.length ? released.reduce((a, t) => a + (t.releasedBytes ?? 0), 0) : null,
    };
  });
}

export function diagnoseRun(run: RunRecord): { findings: CliFinding[]; parts: RssParts[]; notes: string[] } {
  const env: NonNullable<DiagnoseContext['env']> = {};
  for (const key of DOCTOR_ENV_NAMES) {
    const v = key === PRELOAD_VARIABLE ? (run.allocator.library ?? undefined) : run.allocator.env[key];
    if (v !== undefined) env[key] = v;
  }
  const context: DiagnoseContext = {
    allocator: run.check.detected ? { name: run.check.detected, version: run.allocator.version } : undefined,
    env,
    threads: run.threads,
    backgroundThread: run.backgroundThread,
  };
  const samples = monitorSamples(run);
  const span = samples.length ? samples[samples.length - 1].time - run.startTime : 0;
  const d = diagnose(samples, {
    context,
    graceMs: Math.min(GRACE_MS, Math.round(span * RUN_GRACE_FRACTION)),
    minWindowMs: Math.min(MIN_WINDOW_MS, Math.round(span * RUN_MIN_WINDOW_FRACTION)),
  });
  return {
    findings: d.findings.map((f) => ({ id: f.id, severity: f.severity, title: f.title, summary: f.summary, evidence: f.evidence, advice: f.advice })),
    parts: d.parts,
    notes: d.notes ?? [],
  };
}
