// Runs a doctor scenario (test/fixtures/doctor-*.js) in a fresh node and returns its report.
import { spawn } from 'node:child_process';
import path from 'node:path';
import type { Diagnosis, Finding, MonitorSample, MonitorTotals, RssParts } from '../src';
import { ROOT } from './helpers';

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

export function runScenario(
  name: string,
  options: { args?: string[]; env?: Record<string, string>; preload?: string | null; cgroupProcs?: string } = {},
): Promise<ScenarioReport> {
  const env: Record<string, string> = { ...(process.env as Record<string, string>), ...options.env };
  delete env.LD_PRELOAD;
  if (options.preload) env.LD_PRELOAD = options.preload;
  const file = path.join(ROOT, 'test', 'fixtures', `${name}.js`);
  return new Promise((resolve, reject) => {
    const argv = [file, ...(options.args ?? [])];
    // In a cgroup: the shell moves itself there, then becomes node (same pid, same cgroup).
    const child = options.cgroupProcs
      ? spawn('sh', ['-c', 'echo $$ > "$0" && exec "$@"', options.cgroupProcs, process.execPath, ...argv], { env, cwd: ROOT })
      : spawn(process.execPath, argv, { env, cwd: ROOT });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), SCENARIO_TIMEOUT_MS);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const at = stdout.lastIndexOf('@@RESULT@@');
      if (at < 0) {
        reject(new Error(`${name} exited (${code ?? signal}) without a report\nstdout: ${stdout}\nstderr: ${stderr}`));
        return;
      }
      resolve(JSON.parse(stdout.slice(at + '@@RESULT@@'.length).split('\n')[0]) as ScenarioReport);
    });
  });
}

/** Ids of the findings at warning or critical severity. */
export function alarms(r: { findings: Finding[] }): string[] {
  return r.findings.filter((f) => f.severity !== 'info').map((f) => f.id);
}

export function ids(r: { findings: Finding[] }): string[] {
  return r.findings.map((f) => f.id);
}
