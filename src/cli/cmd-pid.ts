// Commands on a running program through its agent: `agent-path`, `stats <pid>`, `trim <pid>`,
// `doctor <pid>`. The program was started with the agent preloaded and listening
// (LD_PRELOAD=<agent-path> ALLOCATOR_STATS_AGENT=1); any program, Node or not.
import fs from 'node:fs';
import { agentPath, agentSocketOf } from '../agent/locate';
import { AgentTarget, type ProcessStats } from '../agent/target';
import { ENV_AGENT } from '../agent/client';
import { diagnose } from '../doctor/diagnose';
import { MIN_SAMPLES } from '../doctor/thresholds';
import { toSample } from '../doctor/monitor';
import { CliError } from './errors';
import { mib } from './export-markdown';
import { RUN_MIN_WINDOW_FRACTION } from './findings';

/** How the user starts a program so that these commands can reach it. */
export function agentHint(): string {
  const file = agentPath() ?? '$(allocator-stats agent-path)';
  return `start it with LD_PRELOAD=${file} ${ENV_AGENT}=1`;
}

export function agentPathCommand(): string {
  const file = agentPath();
  if (file === null) throw new CliError('allocator-stats has no agent library here: run `npm rebuild allocator-stats` to build it (it builds with the addon)', 1);
  return `${file}\n`;
}

export function pidOf(text: string, command: string): number {
  const pid = /^\d+$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(pid) || pid < 1 || pid > 4_194_304) throw new CliError(`Expected a process id for allocator-stats ${command} but received ${JSON.stringify(text)}`);
  return pid;
}

/** Connects to the agent of `pid`, or says in one line why it cannot. */
export async function openPid(pid: number): Promise<AgentTarget> {
  if (!fs.existsSync(`/proc/${pid}`)) throw new CliError(`no process ${pid}`, 1);
  const socket = agentSocketOf(pid);
  if (socket === null) throw new CliError(`process ${pid} has no agent listening (or it is another user's): ${agentHint()}`, 1);
  try {
    return await AgentTarget.open(socket);
  } catch (error) {
    throw new CliError(`cannot reach the agent of process ${pid}: ${(error as Error).message}`, 1);
  }
}

function describeStats(s: ProcessStats, pid: number): string {
  const a = s.allocator;
  return [
    `allocator-stats: pid ${pid}, ${a.name}${a.version ? ` ${a.version}` : ''}`,
    `  RSS ${mib(s.process.rss)} (anonymous ${mib(s.process.rssAnon)}); allocated ${mib(s.allocated)}, resident ${mib(s.resident)}`,
    `  held back ${mib(s.heldBack)}, a trim would return about ${mib(s.releasable)}`,
    ...s.notes.map((n) => `  note: ${n}`),
  ].join('\n');
}

export async function statsCommand(pid: number, json: boolean): Promise<string> {
  const target = await openPid(pid);
  try {
    const s = await target.stats();
    return json ? `${JSON.stringify({ pid, argv: target.argv, ...s }, null, 2)}\n` : `${describeStats(s, pid)}\n`;
  } finally {
    target.close();
  }
}

export async function trimCommand(pid: number, json: boolean): Promise<string> {
  const target = await openPid(pid);
  try {
    const t = await target.trim();
    if (json) return `${JSON.stringify({ pid, ...t }, null, 2)}\n`;
    const head = t.supported
      ? `allocator-stats: trimmed pid ${pid} (${t.allocator.name}) in ${t.durationMs.toFixed(1)} ms: RSS ${mib(t.rssBefore)} → ${mib(t.rssAfter)}, ${mib(t.releasedBytes)} back to the OS`
      : `allocator-stats: pid ${pid}: ${t.allocator.name} cannot be trimmed`;
    return `${[head, ...t.notes.map((n) => `  note: ${n}`)].join('\n')}\n`;
  } finally {
    target.close();
  }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Samples the program every `intervalMs` for `durationMs` and gives the doctor's findings on that
 * window, judged as a CLI run is (half the window is long enough; no start-up grace: the program
 * was running before).
 */
export async function doctorPidCommand(pid: number, options: { durationMs: number; intervalMs: number; json: boolean; progress: (line: string) => void }): Promise<{ text: string; ok: boolean }> {
  if (Math.floor(options.durationMs / options.intervalMs) + 1 < MIN_SAMPLES) {
    throw new CliError(`Expected at least ${MIN_SAMPLES} samples but --duration ${options.durationMs / 1000} s at --interval ${options.intervalMs} ms gives fewer: lengthen --duration or shorten --interval`);
  }
  const target = await openPid(pid);
  const stats: ProcessStats[] = [];
  try {
    options.progress(`allocator-stats: sampling pid ${pid} every ${options.intervalMs} ms for ${(options.durationMs / 1000).toFixed(0)} s…`);
    const end = Date.now() + options.durationMs;
    for (;;) {
      try {
        stats.push(await target.stats());
      } catch (error) {
        // The program exited during the window: judge what there is.
        if (stats.length === 0) throw new CliError(`cannot sample process ${pid}: ${(error as Error).message}`, 1);
        break;
      }
      const left = end - Date.now();
      if (left <= 0) break;
      await sleep(Math.min(options.intervalMs, left));
    }
  } finally {
    target.close();
  }
  // toSample counts the V8 parts of a program without V8 as zero, not unknown.
  const samples = stats.map((s) => toSample(s, null));
  const span = samples[samples.length - 1].time - samples[0].time;
  const d = diagnose(samples, {
    context: { allocator: target.allocator },
    graceMs: 0,
    minWindowMs: Math.round(span * RUN_MIN_WINDOW_FRACTION),
  });
  if (options.json) return { text: `${JSON.stringify({ pid, argv: target.argv, allocator: target.allocator, samples: stats, ...d }, null, 2)}\n`, ok: true };
  const first = stats[0];
  const last = stats[stats.length - 1];
  const lines = [
    `allocator-stats doctor: pid ${pid} (${target.argv.join(' ')}), ${target.allocator.name}${target.allocator.version ? ` ${target.allocator.version}` : ''}`,
    `  ${stats.length} samples over ${(span / 1000).toFixed(1)} s; RSS ${mib(first.process.rss)} → ${mib(last.process.rss)}; held back ${mib(first.heldBack)} → ${mib(last.heldBack)}`,
  ];
  for (const f of d.findings) lines.push(`  [${f.severity}] ${f.id}: ${f.title}. ${f.summary}`);
  if (d.findings.length === 0) lines.push(`  no findings${d.notes?.length ? ` (${d.notes.join('; ')})` : ''}`);
  return { text: `${lines.join('\n')}\n`, ok: true };
}
