// Starts one program under one allocator and samples it: from inside when it is Node (the
// injected sampler), through its agent when it is not (native/agent/, preloaded beside the
// allocator), always from outside through /proc/<pid>. Its stdio passes through untouched; the
// samples come back in a file of a private temporary directory, the agent's over its socket there.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { ENV_AGENT, ENV_AGENT_DIR } from '../agent/client';
import { AgentTarget, type ProcessStats } from '../agent/target';
import { isAllocatorVariable } from '../allocators/registry';
import type { AllocatorName } from '../types';
import { resolveAllocator, type Candidate } from './allocators';
import { CliError } from './errors';
import type { AllocatorCheck, RunRecord } from './model';
import { groupRunning, isExiting, mappedAllocators, readStatus, type ProcStatus } from './procstatus';
import { ENV_CLAIMED, ENV_INTERVAL, ENV_SAMPLE_FILE, type WireMessage, type WireSample } from './protocol';
import { rssFigures } from './summary';

/**
 * Signals passed on to the program's process group. The program runs in a session of its own, so
 * the terminal's ^C (SIGINT) and ^\\ (SIGQUIT) reach allocator-stats only, never the program:
 * every one is passed on, whoever sent it.
 */
export const FORWARDED_SIGNALS: readonly NodeJS.Signals[] = ['SIGTERM', 'SIGHUP', 'SIGUSR1', 'SIGUSR2', 'SIGINT', 'SIGQUIT'];

/** Signals that ask the program to stop: a second one, or this long after the first, is SIGKILL of its group. */
export const STOP_SIGNALS: ReadonlySet<NodeJS.Signals> = new Set(['SIGTERM', 'SIGINT']);
/** As long as `docker stop` waits: time enough for a clean shutdown, not for a hang. */
export const STOP_GRACE_MS = 10_000;
/** After SIGKILL, how long the group may take to be reaped before the run is reported anyway. */
const KILLED_REAP_MS = 1000;
const GROUP_POLL_MS = 20;

/** A first outside sample soon after start, so a program shorter than one interval still has one. */
export const FIRST_SAMPLE_MS = 50;

export const OUTSIDE_UNAVAILABLE = [
  'allocated, resident, held back and releasable (the allocator is only visible from inside the process)',
  'the JS heap, external and ArrayBuffer memory, event-loop utilisation (not a Node program, or not its sampler)',
];

/** What a program sampled through its agent does not have. */
export const AGENT_UNAVAILABLE = ['the JS heap, external and ArrayBuffer memory, event-loop utilisation (not a Node program)'];

/** Sampled from /proc although the agent was preloaded: it never started in the program. */
export const AGENT_DID_NOT_LOAD =
  'allocated, resident, held back and releasable (the agent did not start in the program: a statically linked program, ' +
  'or one that drops LD_PRELOAD, cannot load it)';

export interface RunOptions {
  command: string[];
  candidate: Candidate;
  intervalMs: number;
  /** Drop inherited allocator-tuning variables (compare: every candidate starts from the same ground). */
  cleanEnv: boolean;
  samplerPath: string;
  /** The agent library to preload beside the allocator (null: sample programs that are not Node from /proc only). */
  agentPath: string | null;
}

export interface ActiveRun {
  result: Promise<RunRecord>;
  /** Passes a signal on to the program's process group (SIGTERM and SIGINT escalate, see STOP_SIGNALS). */
  kill(signal: NodeJS.Signals): void;
}

/** Signals a process group; false once it has no process left. */
function signalGroup(pgid: number, signal: NodeJS.Signals | 0): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

function emptySample(time: number): WireSample {
  return {
    time, rss: null, rssAnon: null, rssFile: null, peak: null, heapUsed: null, heapTotal: null, external: null,
    arrayBuffers: null, allocated: null, resident: null, heldBack: null, releasable: null, elu: null, threads: null, arenas: null, costMs: null,
  };
}

function nodeOptions(existing: string | undefined, samplerPath: string): string {
  const req = `--require ${JSON.stringify(samplerPath)}`;
  return existing ? `${existing} ${req}` : req;
}

function checkFromSampler(expected: AllocatorName, detected: AllocatorName, notes: string[]): AllocatorCheck {
  // A library of unknown kind took effect when the C library's malloc no longer serves.
  const served = expected === 'unknown' ? detected !== 'glibc' && detected !== 'musl' : detected === expected;
  return { expected, detected, served, how: 'sampler', notes };
}

function checkFromAgent(expected: AllocatorName, detected: AllocatorName): AllocatorCheck {
  const served = expected === 'unknown' ? detected !== 'glibc' && detected !== 'musl' : detected === expected;
  return { expected, detected, served, how: 'agent', notes: [] };
}

/** A sample through the agent, with what only the kernel says (the peak, the threads). */
function agentWireSample(s: ProcessStats, status: ProcStatus | null): WireSample {
  return {
    ...emptySample(s.time),
    rss: s.process.rss,
    rssAnon: s.process.rssAnon,
    rssFile: s.process.rssFile === null ? null : s.process.rssFile + (s.process.rssShmem ?? 0),
    peak: status?.peak ?? null,
    allocated: s.allocated,
    resident: s.resident,
    heldBack: s.heldBack,
    releasable: s.releasable,
    threads: status?.threads ?? null,
    arenas: typeof s.raw.arenas === 'number' ? s.raw.arenas : null,
    costMs: s.costMs,
  };
}

/** One process of the program whose agent listens: its samples through the agent. */
interface AgentSeries {
  pid: number;
  target: AgentTarget | null;
  samples: WireSample[];
  exitLine: Extract<WireMessage, { type: 'agent-exit' }> | null;
  inFlight: boolean;
  backgroundThread: boolean | null;
}

function checkFromMaps(expected: AllocatorName, mapped: Array<{ name: AllocatorName; library: string }> | null): AllocatorCheck {
  if (mapped === null) {
    return { expected, detected: null, served: null, how: 'none', notes: ['the program exited before its memory map could be read'] };
  }
  const notes = ['checked from outside: the library is mapped into the program (a mapped, preloaded allocator serves malloc unless the program is statically linked)'];
  const names = [...new Set(mapped.map((m) => m.name))];
  const detected: AllocatorName = names.length === 0 ? 'glibc' : names.length === 1 ? names[0] : names.includes(expected) ? expected : names[0];
  if (names.length > 1) notes.push(`several allocator libraries are mapped: ${mapped.map((m) => m.library).join(', ')}`);
  if (names.length === 0) notes.push('no allocator library is mapped: the C library (or one linked statically into the program) serves malloc');
  const served = expected === 'unknown' ? (names.length > 0 ? null : false) : expected === 'glibc' ? names.length === 0 : names.includes(expected);
  return { expected, detected, served, how: 'maps', notes };
}

export function startRun(options: RunOptions): ActiveRun {
  const { candidate, command } = options;
  const resolved = resolveAllocator(candidate.allocator, '--allocator');
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v === undefined) continue;
    if (k === 'LD_PRELOAD' || (options.cleanEnv && isAllocatorVariable(k))) continue;
    env[k] = v;
  }
  Object.assign(env, candidate.env);
  // The allocator first: the first preloaded library that defines malloc serves it.
  const preload = [resolved.library, options.agentPath].filter((f): f is string => Boolean(f));
  if (preload.length) env.LD_PRELOAD = preload.join(' ');
  // Private (0700) directory: only this user can read the samples or put lines into them.
  let dir: string;
  try {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'allocator-stats-'));
  } catch (error) {
    throw new CliError(`cannot create a directory for the samples in ${os.tmpdir()} (TMPDIR): ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`, 1);
  }
  const sampleFile = path.join(dir, 'samples.ndjson');
  fs.writeFileSync(sampleFile, '', { mode: 0o600 });
  delete env[ENV_CLAIMED];
  env.NODE_OPTIONS = nodeOptions(env.NODE_OPTIONS, options.samplerPath);
  env[ENV_SAMPLE_FILE] = sampleFile;
  env[ENV_INTERVAL] = String(options.intervalMs);
  if (options.agentPath) {
    env[ENV_AGENT] = 'run';
    env[ENV_AGENT_DIR] = dir;
  }
  const allocatorEnv: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (isAllocatorVariable(k) && k !== 'LD_PRELOAD') allocatorEnv[k] = v;
  const agents = new Map<number, AgentSeries>();

  const startTime = Date.now();
  const started = performance.now();
  // detached: the program leads a process group (and, as Node can only make one that way, a
  // session) of its own, so a signal passed on reaches all of it: a shell and what it started.
  const child = spawn(command[0], command.slice(1), { stdio: 'inherit', env, detached: true });
  let stopAsked = false;
  let killedAt: number | null = null;
  let grace: NodeJS.Timeout | null = null;
  let reported = false;
  const killGroup = (): void => {
    if (grace) clearTimeout(grace);
    grace = null;
    killedAt ??= performance.now();
    if (child.pid !== undefined) signalGroup(child.pid, 'SIGKILL');
  };
  // Asked to stop, the run ends once no process of the program runs any more (in its group), or
  // a moment after SIGKILL if some never end (stuck in the kernel).
  const groupEnded = (): Promise<void> =>
    new Promise((resolve) => {
      const poll = (): void => {
        const pgid = child.pid;
        if (pgid === undefined || !groupRunning(pgid) || (killedAt !== null && performance.now() - killedAt > KILLED_REAP_MS)) return resolve();
        setTimeout(poll, GROUP_POLL_MS);
      };
      poll();
    });

  const inside: WireSample[] = [];
  const outside: WireSample[] = [];
  const trims: RunRecord['trims'] = [];
  let hello: Extract<WireMessage, { type: 'hello' }> | null = null;
  let unavailable: Extract<WireMessage, { type: 'unavailable' }> | null = null;
  let mapped: Array<{ name: AllocatorName; library: string }> | null = null;
  let hwm: number | null = null;
  let threads: number | null = null;

  // The process to watch from outside: the Node process that samples itself (it may be a
  // grandchild, under a shell or a launcher) or would have but could not load the package, else
  // the child.
  const target = (): number | undefined => hello?.pid ?? unavailable?.pid ?? child.pid;
  const sampleOutside = (): void => {
    readSamples();
    const pid = target();
    if (pid === undefined) return;
    sampleAgents();
    const s = readStatus(pid);
    // A figure read while the process is torn down is no figure of the program.
    if (!s || isExiting(pid)) return;
    mapped = mappedAllocators(pid) ?? mapped;
    hwm = s.peak ?? hwm;
    threads = s.threads ?? threads;
    const sample: WireSample = { ...emptySample(Date.now()), rss: s.rss, rssAnon: s.rssAnon, rssFile: s.rssFile, peak: s.peak, threads: s.threads };
    outside.push(sample);
  };
  // Each listening agent is asked for a sample per interval, one request at a time.
  function sampleAgents(): void {
    for (const series of agents.values()) {
      const t = series.target;
      if (!t || series.inFlight || t.binding.connection.closed || series.exitLine) continue;
      series.inFlight = true;
      t.stats().then(
        (stats) => {
          series.inFlight = false;
          if (series.exitLine) return;
          series.samples.push(agentWireSample(stats, readStatus(series.pid)));
          if (series.backgroundThread === null) {
            const bg = stats.raw['opt.background_thread'] ?? stats.raw.backgroundThread ?? stats.raw.background_thread;
            if (typeof bg === 'boolean') series.backgroundThread = bg;
          }
        },
        () => {
          series.inFlight = false;
        },
      );
    }
  }
  const openAgent = (m: Extract<WireMessage, { type: 'agent' }>): void => {
    if (agents.has(m.pid)) return;
    const series: AgentSeries = { pid: m.pid, target: null, samples: [], exitLine: null, inFlight: false, backgroundThread: null };
    agents.set(m.pid, series);
    AgentTarget.open(m.socket).then(
      (t) => {
        series.target = t;
        if (exited) t.close();
      },
      () => {
        // Gone before it could answer (a short-lived helper of the program): nothing of it is kept.
      },
    );
  };
  let exited = false;
  let offset = 0;
  let partial = '';
  const handle = (line: string): void => {
    let m: WireMessage;
    try {
      m = JSON.parse(line) as WireMessage;
    } catch {
      return;
    }
    if (m.type === 'hello') hello = m;
    else if (m.type === 'unavailable') unavailable = m;
    else if (m.type === 'agent') openAgent(m);
    else if (m.type === 'agent-exit') {
      const series = agents.get(m.pid);
      if (series) series.exitLine = m;
    }
    else if (m.type === 'sample' || m.type === 'exit') {
      inside.push(m.sample);
      if (m.sample.peak !== null && (hwm === null || m.sample.peak > hwm)) hwm = m.sample.peak;
    } else if (m.type === 'trim') trims.push({ time: m.time, releasedBytes: m.releasedBytes });
  };
  // Reads what the sampler appended since the last read (a few hundred bytes per interval).
  function readSamples(): void {
    let data: Buffer;
    try {
      const fd = fs.openSync(sampleFile, 'r');
      try {
        const size = fs.fstatSync(fd).size;
        data = Buffer.alloc(Math.max(0, size - offset));
        if (data.length) fs.readSync(fd, data, 0, data.length, offset);
      } finally {
        fs.closeSync(fd);
      }
    } catch {
      return;
    }
    offset += data.length;
    const lines = (partial + data.toString('utf8')).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) if (line) handle(line);
  }

  const first = setTimeout(sampleOutside, Math.min(FIRST_SAMPLE_MS, options.intervalMs));
  const timer = setInterval(sampleOutside, options.intervalMs);

  const result = new Promise<RunRecord>((resolve, reject) => {
    child.once('error', (error: NodeJS.ErrnoException) => {
      clearTimeout(first);
      clearInterval(timer);
      fs.rmSync(dir, { recursive: true, force: true });
      const reason = error.code === 'ENOENT' ? 'command not found' : error.code === 'EACCES' ? 'permission denied' : error.message;
      reject(new CliError(`cannot start ${JSON.stringify(command[0])}: ${reason}`, error.code === 'ENOENT' ? 127 : 126));
    });
    child.once('exit', (code, signal) => {
      const wallMs = performance.now() - started;
      // Left to run when it ended on its own (a daemon it started on purpose, as timeout(1) does);
      // after a stop was asked, what it started is waited for (and killed with the group).
      void (stopAsked ? groupEnded() : Promise.resolve()).then(() => {
        if (grace) clearTimeout(grace);
        reported = true;
        finish(code, signal, wallMs);
      });
    });
    const finish = (code: number | null, signal: NodeJS.Signals | null, wallMs: number): void => {
      exited = true;
      clearTimeout(first);
      clearInterval(timer);
      // The sampler's and the agents' exit samples were written before the program exited: they are in the file now.
      readSamples();
      void agentsAtExit().then((main) => {
        fs.rmSync(dir, { recursive: true, force: true });
        const source: RunRecord['source'] = inside.length > 0 ? 'node' : main ? 'agent' : 'proc';
        const samples = source === 'node' ? inside : source === 'agent' && main ? main.samples : outside;
        const check = hello
          ? checkFromSampler(resolved.name, hello.allocator.name as AllocatorName, hello.allocator.notes)
          : source === 'agent' && main?.target
            ? checkFromAgent(resolved.name, main.target.allocator.name)
            : checkFromMaps(resolved.name, mapped);
        const rss = rssFigures(samples, hwm);
        const last = samples[samples.length - 1];
        const measured = hello ?? unavailable ?? (source === 'agent' && main?.target ? { pid: main.pid, argv: [...main.target.argv] } : null);
        const costs = (source === 'agent' ? samples : inside).map((s) => s.costMs).filter((c): c is number => c !== null);
        resolve({
          label: candidate.label,
          command,
          allocator: {
            name: resolved.name,
            version: hello?.allocator.version ?? (source === 'agent' ? (main?.target?.allocator.version ?? null) : null),
            library: resolved.library ?? (hello?.allocator.library ?? null),
            env: allocatorEnv,
          },
          check,
          exitCode: code,
          signal,
          startTime,
          wallMs,
          source,
          measured: measured && measured.pid !== child.pid ? { pid: measured.pid, argv: measured.argv } : null,
          samplerFailure: unavailable ? { pid: unavailable.pid, error: unavailable.error } : null,
          samples,
          trims,
          hwm,
          backgroundThread: hello?.backgroundThread ?? main?.backgroundThread ?? null,
          threads,
          unavailable:
            source === 'agent'
              ? AGENT_UNAVAILABLE
              : source === 'proc'
                ? options.agentPath && !unavailable
                  ? [AGENT_DID_NOT_LOAD, OUTSIDE_UNAVAILABLE[1]]
                  : OUTSIDE_UNAVAILABLE
                : [],
          rss,
          heldBackFinal: last?.heldBack ?? null,
          samplerCost: costs.length ? { meanMs: costs.reduce((a, b) => a + b, 0) / costs.length, maxMs: Math.max(...costs), samples: costs.length } : null,
          findings: [],
          findingsNote: null,
          parts: [],
        });
      });
    };
  });

  /**
   * Each agent's exit line decoded into its last sample, every connection closed; then the
   * process whose series is the program: the one with the highest RSS (a shell's helpers and
   * short tools before or after it are smaller), or null when no agent answered.
   */
  async function agentsAtExit(): Promise<AgentSeries | null> {
    let main: AgentSeries | null = null;
    let highest = -1;
    for (const series of agents.values()) {
      const t = series.target;
      if (t && series.exitLine) {
        try {
          const last = await t.exitStats(series.exitLine);
          if (last) series.samples.push(agentWireSample(last, { rss: null, rssAnon: null, rssFile: null, peak: hwm, threads: null }));
        } catch {
          // Its periodic samples stand.
        }
      }
      t?.close();
      const top = Math.max(-1, ...series.samples.map((s) => s.rss ?? -1));
      if (series.samples.length > 0 && top > highest) {
        main = series;
        highest = top;
      }
    }
    return main;
  }

  return {
    result,
    kill(signal) {
      if (reported || child.pid === undefined) return;
      if (!signalGroup(child.pid, signal)) return;
      if (!STOP_SIGNALS.has(signal)) return;
      if (stopAsked) return killGroup();
      stopAsked = true;
      grace = setTimeout(killGroup, STOP_GRACE_MS);
    },
  };
}

/** Installs forwarding of signals to whatever run is active; returns the uninstaller. */
export function forwardSignals(active: () => ActiveRun | null, onSignal?: (signal: NodeJS.Signals) => void): () => void {
  // allocator-stats itself does not die of them: it ends as the program does.
  const handlers = FORWARDED_SIGNALS.map((signal) => {
    const handler = (): void => {
      onSignal?.(signal);
      active()?.kill(signal);
    };
    process.on(signal, handler);
    return [signal, handler] as const;
  });
  // ^Z stops allocator-stats alone: the program is in a session of its own (where a SIGTSTP would
  // be discarded, its group being orphaned). Stop the program too, then this process; `fg` or
  // `bg` continues this process, which continues the program.
  const stop = (): void => {
    active()?.kill('SIGSTOP');
    process.kill(process.pid, 'SIGSTOP');
  };
  const resume = (): void => active()?.kill('SIGCONT');
  process.on('SIGTSTP', stop);
  process.on('SIGCONT', resume);
  return () => {
    for (const [signal, handler] of handlers) process.off(signal, handler);
    process.off('SIGTSTP', stop);
    process.off('SIGCONT', resume);
  };
}

export function samplerPath(): string {
  return path.join(__dirname, 'sampler.js');
}
