// Shared test helpers: child processes under a real preloaded allocator, and skips that CI
// turns into failures (ALLOCATOR_STATS_REQUIRE_ALL=1).
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { ALLOCATORS, type PreloadedName } from '../src/allocators/registry';

export const ROOT = path.resolve(__dirname, '..');
export const LIB = path.join(ROOT, 'lib', 'index.js');
export const WORKLOAD = path.join(ROOT, 'scripts', 'workload.js');
export const MiB = 1024 * 1024;

/** binding.gyp's target, read as JSON once its comment lines are dropped. */
export function bindingTarget(): { sources: string[]; defines: string[]; cflags_cc: string[]; include_dirs: string[] } {
  const text = fs
    .readFileSync(path.join(ROOT, 'binding.gyp'), 'utf8')
    .split('\n')
    .filter((line) => !/^\s*#/.test(line))
    .join('\n');
  return JSON.parse(text).targets[0];
}

const LIBRARY_DIRS = ['/usr/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu', '/usr/lib64', '/usr/lib', '/lib/x86_64-linux-gnu'];

/** The library each preloaded allocator of the registry is tested with (its most specific file name). */
export const ALLOCATOR_LIBRARIES = Object.fromEntries(
  ALLOCATORS.filter((a) => a.libraries.length > 0).map((a) => [a.name, a.libraries[0]]),
) as Record<PreloadedName, string>;

/** Absolute path of a shared library, or null if this machine lacks it. */
export function findLibrary(file: string): string | null {
  for (const dir of LIBRARY_DIRS) {
    const p = path.join(dir, file);
    if (fs.existsSync(p)) return p;
  }
  return null;
}

/**
 * One case per allocator for describe.each: glibc (nothing preloaded), then every preloaded
 * allocator of the registry as [name, its library or null, whether this machine has it].
 */
export function allocatorCases(): Array<[string, string | null, boolean]> {
  const preloaded = Object.entries(ALLOCATOR_LIBRARIES).map(([name, file]): [string, string | null, boolean] => {
    const lib = findLibrary(file);
    return [name, lib, lib !== null];
  });
  return [['glibc', null, true], ...preloaded];
}

export const requireAll = process.env.ALLOCATOR_STATS_REQUIRE_ALL === '1';

/**
 * `test` when `available`, else `test.skip` with the reason printed. Under
 * ALLOCATOR_STATS_REQUIRE_ALL=1 (CI installs everything) a missing dependency fails instead.
 */
export function testIf(available: boolean, reason: string): jest.It {
  if (available) return test;
  if (requireAll) {
    return ((name: string) =>
      test(name, () => {
        throw new Error(`ALLOCATOR_STATS_REQUIRE_ALL=1 but ${reason}`);
      })) as unknown as jest.It;
  }
  // eslint-disable-next-line no-console
  console.warn(`skipping: ${reason}`);
  return test.skip;
}

export interface ChildResult<T> {
  value: T;
  stderr: string;
  /** How the child ended: its exit code, or the signal that killed it (a hang past timeoutMs is SIGKILL). */
  code: number | null;
  signal: NodeJS.Signals | null;
}

/**
 * Runs `code` (CommonJS, async allowed at top level through an IIFE) in a fresh `node`,
 * with `LIB` and `WORKLOAD` paths available as constants, and returns what it printed last
 * as JSON through `report(value)`.
 */
export function runChild<T = unknown>(
  code: string,
  options: { preload?: string | null; env?: Record<string, string>; timeoutMs?: number; execArgv?: string[] } = {},
): Promise<ChildResult<T>> {
  const script = `
const LIB = ${JSON.stringify(LIB)};
const WORKLOAD = ${JSON.stringify(WORKLOAD)};
const report = (v) => process.stdout.write('\\n@@RESULT@@' + JSON.stringify(v, (k, x) => typeof x === 'bigint' ? x.toString() + 'n' : x) + '\\n');
(async () => {
${code}
})().catch((e) => { report({ __error: { message: e.message, code: e.code, name: e.name, stack: e.stack } }); process.exitCode = 3; });
`;
  return runNode<T>([...(options.execArgv ?? []), '-e', script], options);
}

/** How a child `node` ended and what it printed. A run that outlives its time limit is killed (SIGKILL) and marked timedOut. */
export interface NodeRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  stdout: string;
  stderr: string;
}

export interface NodeRunOptions {
  preload?: string | null;
  env?: Record<string, string>;
  timeoutMs?: number;
  /** A command that runs `node` with its arguments (e.g. valgrind, or unshare for another namespace). */
  prefix?: string[];
  /** The working directory; the package root by default. */
  cwd?: string;
}

/** Runs a fresh `node` with `args` (nothing preloaded unless `preload` says so) from the package root. */
export function spawnNode(args: readonly string[], options: NodeRunOptions & { timeoutMs: number }): Promise<NodeRun> {
  const env: Record<string, string> = { ...(process.env as Record<string, string>), ...options.env };
  delete env.LD_PRELOAD;
  if (options.preload) env.LD_PRELOAD = options.preload;
  return new Promise((resolve, reject) => {
    const [command, ...before] = options.prefix ?? [process.execPath];
    const child = spawn(command, options.prefix ? [...before, process.execPath, ...args] : [...args], { env, cwd: options.cwd ?? ROOT });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, options.timeoutMs);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, timedOut, stdout, stderr });
    });
  });
}

async function runNode<T>(args: string[], options: NodeRunOptions): Promise<ChildResult<T>> {
  const { code, signal, stdout, stderr } = await spawnNode(args, { ...options, timeoutMs: options.timeoutMs ?? 100000 });
  const at = stdout.lastIndexOf('@@RESULT@@');
  if (at < 0) throw new Error(`child exited (${code ?? signal}) without a result\nstdout: ${stdout}\nstderr: ${stderr}`);
  const value = JSON.parse(stdout.slice(at + '@@RESULT@@'.length).split('\n')[0]);
  if (value && value.__error) {
    const e = new Error(`child failed: ${value.__error.message}\n${value.__error.stack}\nstderr: ${stderr}`);
    throw Object.assign(e, { code: value.__error.code });
  }
  return { value: value as T, stderr, code, signal };
}

export function nodeVersionOk(): boolean {
  return Number(process.versions.node.split('.')[0]) >= 20;
}

export function commandExists(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

interface UnifiedNumbers {
  allocated: number | null;
  resident: number | null;
  heldBack: number | null;
  releasable: number | null;
  mapped: number | null;
}

/** The unified numbers of an allocator that knows all of them, and how they relate. */
export function expectKnownInvariants(s: UnifiedNumbers): void {
  for (const k of ['allocated', 'resident', 'heldBack', 'releasable', 'mapped'] as const) {
    expect(typeof s[k]).toBe('number');
    expect(s[k]).toBeGreaterThanOrEqual(0);
  }
  expect(s.allocated!).toBeLessThanOrEqual(s.resident!);
  expect(s.heldBack).toBe(s.resident! - s.allocated!);
  expect(s.releasable!).toBeLessThanOrEqual(s.heldBack!);
}

/**
 * A glibc trim of churned worker arenas: what the OS got back (RSS) agrees with what the sample
 * before it said was held back and releasable, within 20 % or 16 MiB, and held back falls to
 * under 15 % of what it was.
 */
export function expectGlibcTrimAgrees(
  before: { heldBack: number; releasable: number },
  trim: { supported: boolean; releasedBytes: number; rssBefore: number; rssAfter: number },
  after: { heldBack: number },
): void {
  expect(trim.supported).toBe(true);
  const tolerance = Math.max(0.2 * before.heldBack, 16 * MiB);
  expect(Math.abs(trim.releasedBytes - before.heldBack)).toBeLessThanOrEqual(tolerance);
  expect(Math.abs(before.releasable - trim.releasedBytes)).toBeLessThanOrEqual(tolerance);
  expect(trim.releasedBytes).toBe(trim.rssBefore - trim.rssAfter);
  expect(after.heldBack).toBeLessThan(0.15 * before.heldBack);
}

let fixtureDirs: string[] | null = null;

/**
 * Absolute path of a child scenario: each layer keeps its own in `test/<layer>/fixtures/`
 * (`test/allocators/<name>/fixtures/`), the ones several layers share in `test/fixtures/`.
 * Names are unique across them.
 */
export function fixture(name: string): string {
  fixtureDirs ??= fs
    .readdirSync(path.join(ROOT, 'test'), { recursive: true, encoding: 'utf8' })
    .filter((p) => path.basename(p) === 'fixtures')
    .map((p) => path.join(ROOT, 'test', p));
  const found = fixtureDirs.map((d) => path.join(d, name)).find((p) => fs.existsSync(p));
  if (!found) throw new Error(`no fixture ${name} in ${fixtureDirs.join(', ')}`);
  return found;
}

/**
 * Runs the child scenario `<name>` (see fixture()) with `args` in a fresh `node` (under
 * `preload` when given) and returns the result it reported (see test/fixtures/common.js).
 */
export function runFixture<T = unknown>(
  name: string,
  args: string[] = [],
  options: {
    preload?: string | null;
    env?: Record<string, string>;
    timeoutMs?: number;
    execArgv?: string[];
    /** A command that runs `node` with its arguments (e.g. in another namespace). */
    prefix?: string[];
  } = {},
): Promise<ChildResult<T>> {
  return runNode<T>([...(options.execArgv ?? []), fixture(name), ...args], options);
}

/**
 * A raw HTTP request on 127.0.0.1, for what fetch() will not send (Host headers, dot segments,
 * chunked bodies, odd methods); resolves with everything the server sent once the connection
 * has closed. `endAfterWrite` half-closes our side after the request; otherwise it stays open
 * until the server closes (send `Connection: close`).
 */
export function rawHttp(port: number, request: string, endAfterWrite = false): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => (endAfterWrite ? socket.end(request) : socket.write(request)));
    let out = '';
    socket.on('data', (d) => (out += d));
    socket.on('close', () => resolve(out));
    socket.on('error', reject);
  });
}
