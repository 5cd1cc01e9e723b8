// Running the allocator-stats command as a user would: `node lib/cli/main.js …` in a child.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { commandExists, ROOT } from '../helpers';

export const CLI = path.join(ROOT, 'lib', 'cli', 'main.js');
export const FIXTURES = path.join(__dirname, 'fixtures');

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export function startCli(args: string[], env: Record<string, string> = {}): { child: ChildProcess; done: Promise<CliResult> } {
  const childEnv: Record<string, string> = { ...(process.env as Record<string, string>), ...env };
  delete childEnv.LD_PRELOAD;
  const child = spawn(process.execPath, [CLI, ...args], { cwd: ROOT, env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  const done = new Promise<CliResult>((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })));
  return { child, done };
}

export function runCli(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  return startCli(args, env).done;
}

export function tempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'allocator-stats-cli-'));
}

export const hasGcc = commandExists('gcc');

/** Builds test/cli/fixtures/cli-alloc.c into `dir` (dynamically and, when `static`, statically linked). */
export function buildAllocProgram(dir: string, linkStatic = false): string {
  const out = path.join(dir, linkStatic ? 'cli-alloc-static' : 'cli-alloc');
  execFileSync('gcc', ['-O1', ...(linkStatic ? ['-static'] : []), '-o', out, path.join(FIXTURES, 'cli-alloc.c')]);
  return out;
}

/** The `@@PROC {…}` lines a fixture printed: what /proc said about it at its end. */
export function procLines(stdout: string): Array<{ rss?: number; hwm: number }> {
  return stdout
    .split('\n')
    .filter((l) => l.startsWith('@@PROC '))
    .map((l) => JSON.parse(l.slice('@@PROC '.length)) as { rss?: number; hwm: number });
}
