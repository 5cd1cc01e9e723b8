// Another process as a StatsSource: what the diagnostic endpoint and the doctor's monitor read
// from it, through its agent (`allocator-stats serve --pid`).
import fs from 'node:fs';
import { PRELOAD_VARIABLE } from '../allocators/registry';
import { preloadEntriesOf } from '../api/detect';
import type { StatsSource } from '../api/source';
import type { AllocatorInfo } from '../types';
import type { AgentTarget } from './target';

/** The environment the program was started with, or {} when /proc/PID/environ cannot be read. */
function environOf(pid: number): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  let text: string;
  try {
    text = fs.readFileSync(`/proc/${pid}/environ`, 'utf8');
  } catch {
    return env;
  }
  for (const entry of text.split('\0')) {
    const eq = entry.indexOf('=');
    if (eq > 0) env[entry.slice(0, eq)] = entry.slice(eq + 1);
  }
  return env;
}

export function agentSource(target: AgentTarget): StatsSource {
  // Read once: a program's environment as it started is what /proc shows for its whole life.
  const env = environOf(target.pid);
  const preload = env[PRELOAD_VARIABLE] ?? null;
  const info: AllocatorInfo = {
    name: target.allocator.name,
    version: target.allocator.version,
    method: `reported by the agent of process ${target.pid}`,
    library: null,
    inactive: [],
    preload: {
      value: preload,
      entries: preloadEntriesOf(preload, target.pid),
    },
    notes: [`the numbers are those of process ${target.pid} (${target.argv.join(' ')}), read through its agent`],
  };
  return Object.freeze({
    pid: target.pid,
    self: false,
    // The agent always computes `releasable` (on its own thread): the option changes nothing.
    stats: () => target.stats(),
    trim: () => target.trim(),
    allocator: () => info,
    // The allocator's settings live in the other process: the agent does not report them.
    settings: () => null,
    env: () => env,
  });
}
