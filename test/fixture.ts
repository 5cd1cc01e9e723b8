// Runs a scenario (see fixture() in ./helpers) in a fresh `node`, optionally under a preloaded allocator,
// and reports how it ended: for scenarios judged by their exit and output rather than by a
// reported value (see runFixture in ./helpers for those).
import { fixture, spawnNode, type NodeRun, type NodeRunOptions } from './helpers';

export type FixtureRun = NodeRun;

export function runFixture(
  file: string,
  args: readonly string[] = [],
  options: NodeRunOptions & { execArgv?: string[] } = {},
): Promise<FixtureRun> {
  const script = fixture(file);
  return spawnNode([...(options.execArgv ?? []), script, ...args], { ...options, timeoutMs: options.timeoutMs ?? 60_000 });
}

/** The last line a scenario printed, parsed as JSON. */
export function lastJson<T>(run: FixtureRun): T {
  const lines = run.stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]) as T;
}
