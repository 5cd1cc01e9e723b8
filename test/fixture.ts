// Runs a scenario from test/fixtures/ in a fresh `node`, optionally under a preloaded allocator,
// and reports how it ended. A run that outlives its time limit is killed and marked timedOut.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { ROOT } from './helpers';

export interface FixtureRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  stdout: string;
  stderr: string;
}

export function runFixture(
  file: string,
  args: readonly string[] = [],
  options: { preload?: string | null; env?: Record<string, string>; timeoutMs?: number; command?: string[] } = {},
): Promise<FixtureRun> {
  const env: Record<string, string> = { ...(process.env as Record<string, string>), ...options.env };
  delete env.LD_PRELOAD;
  if (options.preload) env.LD_PRELOAD = options.preload;
  const script = path.join(ROOT, 'test', 'fixtures', file);
  const [cmd, ...pre] = options.command ?? [process.execPath];
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, [...pre, script, ...args], { env, cwd: ROOT });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, options.timeoutMs ?? 60_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, timedOut, stdout, stderr });
    });
  });
}

/** The last line a scenario printed, parsed as JSON. */
export function lastJson<T>(run: FixtureRun): T {
  const lines = run.stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]) as T;
}
