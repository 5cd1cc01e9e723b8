// Runs a doctor scenario (test/doctor/fixtures/doctor-*.js) in a fresh node and returns its report.
import type { Diagnosis, Finding, MonitorSample, MonitorTotals, RssParts } from '../../src';
import { runFixture } from '../helpers';

export interface ScenarioReport {
  findings: Finding[];
  notes: Diagnosis['notes'];
  window: Diagnosis['window'];
  lastParts: RssParts;
  totals: MonitorTotals;
  samples?: MonitorSample[];
  [key: string]: unknown;
}

// Each scenario runs about 11–15 s of workload; a slow shared machine may double that.
const SCENARIO_TIMEOUT_MS = 90_000;

export async function runScenario(
  name: string,
  options: { args?: string[]; env?: Record<string, string>; preload?: string | null; cgroupProcs?: string } = {},
): Promise<ScenarioReport> {
  const { value } = await runFixture<ScenarioReport>(`${name}.js`, options.args ?? [], {
    env: options.env,
    preload: options.preload,
    timeoutMs: SCENARIO_TIMEOUT_MS,
    // In a cgroup: the shell moves itself there, then becomes node (same pid, same cgroup).
    prefix: options.cgroupProcs ? ['sh', '-c', 'echo $$ > "$0" && exec "$@"', options.cgroupProcs] : undefined,
  });
  return value;
}

/** Ids of the findings at warning or critical severity. */
export function alarms(r: { findings: Finding[] }): string[] {
  return r.findings.filter((f) => f.severity !== 'info').map((f) => f.id);
}

export function ids(r: { findings: Finding[] }): string[] {
  return r.findings.map((f) => f.id);
}
