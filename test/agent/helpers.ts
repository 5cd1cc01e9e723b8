// Shared by the tests of programs read through the agent: starting a program with the agent
// listening, finding its socket, reading /proc, and killing what a test left running.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import { agentSocketOf } from '../../src/agent/locate';

/** The children a test starts; every one still running is killed (SIGKILL) after each test. */
export function killedAfterEach(): ChildProcess[] {
  const children: ChildProcess[] = [];
  afterEach(() => {
    for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  });
  return children;
}

export interface Started {
  child: ChildProcess;
  pid: number;
  /** Everything the program wrote on stderr so far. */
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export interface AgentStart {
  /** The agent library, preloaded after `preload`. */
  agent: string;
  /** The 0700 directory its socket goes in. */
  dir: string;
  /** Added to the program's environment. */
  env?: Record<string, string>;
  /** Libraries preloaded before the agent (an allocator). */
  preload?: string[];
  /** Pushed here, to be killed after the test (killedAfterEach()). */
  children: ChildProcess[];
}

/** Starts `file` with the agent listening; resolves once its stderr shows `ready`. */
export function startWithAgent(file: string, args: string[], ready: string, o: AgentStart): Promise<Started> {
  const child = spawn(file, args, {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, ...o.env, LD_PRELOAD: [...(o.preload ?? []), o.agent].join(':'), ALLOCATOR_STATS_AGENT: '1', ALLOCATOR_STATS_AGENT_DIR: o.dir },
  });
  o.children.push(child);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  let err = '';
  return new Promise((resolve, reject) => {
    child.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
      if (err.includes(ready)) resolve({ child, pid: child.pid!, stderr: () => err, exited });
    });
    child.on('exit', (code, signal) => reject(new Error(`${file} exited (${code ?? signal}) before "${ready}": ${err}`)));
  });
}

/** The agent's socket, once it is listening (the agent starts before main, but asynchronously to the test). */
export async function socketOf(pid: number): Promise<string> {
  for (let i = 0; i < 100; i++) {
    const s = agentSocketOf(pid);
    if (s) return s;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`no agent socket in process ${pid} after 2 s`);
}

/** A `… kB` line of /proc/<pid>/status, in bytes. */
export function statusBytes(pid: number, key: string): number {
  const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no ${key} in /proc/${pid}/status`);
  return Number(m[1]) * 1024;
}
