// allocator-stats run: real programs under real preloaded allocators. A Node workload sampled
// from inside, a C program sampled from outside, exit codes and signals passed through, and
// the figures held against what /proc said inside the same program.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { JsonReport } from '../../src/cli/export-json';
import { STOP_GRACE_MS } from '../../src/cli/runner';
import { buildAllocProgram, CLI, FIXTURES, hasGcc, procLines, runCli, startCli, tempDir } from './helpers';
import { ALLOCATOR_LIBRARIES, commandExists, findLibrary, MiB, ROOT, testIf } from '../helpers';

const jemalloc = findLibrary(ALLOCATOR_LIBRARIES.jemalloc);
const withJemalloc = testIf(jemalloc !== null, 'libjemalloc2 not installed (apt-get install libjemalloc2)');
const withGcc = testIf(hasGcc, 'no C compiler (apt-get install gcc libc6-dev)');
const withGccAndJemalloc = testIf(hasGcc && jemalloc !== null, 'needs gcc and libjemalloc2');
const withScript = testIf(commandExists('script'), 'needs script(1) for a terminal (apt-get install bsdutils)');
// Cores are written as files named by core_pattern in the dumping process's working directory
// unless it pipes them to a program (`|…`) or names another directory: only then does "no core
// file in the working directory" say something.
const corePattern = ((): string => {
  try {
    return fs.readFileSync('/proc/sys/kernel/core_pattern', 'utf8').trim();
  } catch {
    return '|';
  }
})();
const corePrefix = corePattern.split('%')[0];
const withCoresHere = testIf(!corePattern.startsWith('|') && !corePattern.includes('/') && corePrefix !== '', `core_pattern ${JSON.stringify(corePattern)} does not write cores into the working directory`);
const withPermission = testIf(process.allowedNodeEnvironmentFlags.has('--experimental-permission'), 'this Node has no permission model');

/**
 * Runs a shell command line on a pseudo-terminal (script(1) copies what reaches it to `out`);
 * `onOutput` sees the output as it comes, with the child to signal. `code` is the command's.
 */
function onTerminal(line: string, onOutput?: (out: string, type: (keys: string) => void) => void): Promise<{ out: string; code: number | null }> {
  return new Promise((resolve) => {
    // What is written to script's stdin is typed on the terminal (^C included).
    const child = spawn('script', ['-qefc', line, '/dev/null'], { stdio: ['pipe', 'pipe', 'inherit'] });
    const type = (keys: string): void => void child.stdin!.write(keys);
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      onOutput?.(out, type);
    });
    child.on('close', (code) => {
      child.stdin!.destroy();
      resolve({ out, code });
    });
  });
}

const SAMPLE_KEYS = ['t', 'rss', 'rssAnon', 'heapUsed', 'external', 'arrayBuffers', 'allocated', 'resident', 'heldBack', 'releasable', 'elu'];
const RUN_KEYS = ['label', 'allocator', 'exitCode', 'wallMs', 'rss', 'samples', 'findings', 'allocatorCheck'];

let dir: string;
let program: string;
let staticProgram: string;
beforeAll(() => {
  dir = tempDir();
  if (hasGcc) {
    program = buildAllocProgram(dir);
    staticProgram = buildAllocProgram(dir, true);
  }
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const readJson = (file: string): JsonReport => JSON.parse(fs.readFileSync(file, 'utf8')) as JsonReport;

describe('allocator-stats run', () => {
  withJemalloc('samples a Node program under jemalloc from inside; its stdout, stderr and exit code pass through; figures agree with /proc', async () => {
    const out = path.join(dir, 'node.json');
    const r = await runCli(['run', '--allocator', 'jemalloc', '--interval', '200', '--export-json', out, '--', process.execPath, path.join(FIXTURES, 'cli-churn.js'), '24', '1200', '7']);
    expect(r.code).toBe(7);
    // The program's own output, byte for byte, and nothing of ours on stdout.
    expect(r.stdout).toMatch(/^churn: start\nchurn: done\n@@PROC \{[^\n]*\}\n$/);
    expect(r.stderr.startsWith('churn: to stderr\n')).toBe(true);
    expect(r.stderr).toContain('jemalloc');
    expect(r.stderr).not.toContain('\r'); // nothing drawn over the program's output

    const report = readJson(out);
    expect(Object.keys(report)).toEqual(['command', 'runs', 'recommendation']);
    expect(report.command.slice(-3)).toEqual(['24', '1200', '7']);
    expect(report.recommendation).toBeNull();
    expect(report.runs).toHaveLength(1);
    const run = report.runs[0];
    expect(Object.keys(run)).toEqual(RUN_KEYS);
    expect(run.allocator.name).toBe('jemalloc');
    expect(run.allocator.library).toBe(jemalloc);
    expect(run.allocator.version).toMatch(/^5\./);
    expect(run.allocatorCheck).toEqual({ detected: 'jemalloc', served: true, how: 'sampler' });
    expect(run.exitCode).toBe(7);
    expect(run.samples.length).toBeGreaterThanOrEqual(3);
    for (const s of run.samples) expect(Object.keys(s)).toEqual(SAMPLE_KEYS);
    const last = run.samples[run.samples.length - 1];
    // Inside a Node program every number is known.
    for (const k of ['allocated', 'resident', 'heldBack', 'releasable', 'heapUsed'] as const) expect(typeof last[k]).toBe('number');
    expect(run.samples.every((s, i) => i === 0 || s.t >= run.samples[i - 1].t)).toBe(true);
    expect(run.rss.final).toBe(last.rss);

    // The fixture read /proc/self/status in its exit handler, right after the sampler's last sample.
    const [proc] = procLines(r.stdout);
    expect(Math.abs(run.rss.final! - proc.rss!)).toBeLessThanOrEqual(2 * MiB);
    expect(Math.abs(run.rss.peak! - proc.hwm)).toBeLessThanOrEqual(2 * MiB);
    expect(run.rss.steady!).toBeGreaterThan(0);
    expect(run.rss.steady!).toBeLessThanOrEqual(run.rss.peak!);
    expect(run.wallMs).toBeGreaterThan(1200);
  });

  test('judges a run of seconds: glibc keeping the memory of idle workers is allocator-retention', async () => {
    const out = path.join(dir, 'retention.json');
    const r = await runCli(['run', '--interval', '200', '--export-json', out, '--', process.execPath, path.join(ROOT, 'scripts', 'churn-idle.js'), '4', '48', '4']);
    expect(r.code).toBe(0);
    const run = readJson(out).runs[0];
    const retention = run.findings.find((f) => f.id === 'allocator-retention');
    expect(retention).toBeDefined();
    expect(r.stderr).toContain(`[${retention!.severity}] allocator-retention: ${retention!.title}`);
  });

  test('finds the Node program under a shell that forks it, and measures that process', async () => {
    const out = path.join(dir, 'sh.json');
    const fixture = path.join(FIXTURES, 'cli-churn.js');
    // `; true` keeps sh from exec'ing node: node is a grandchild of allocator-stats.
    const r = await runCli(['run', '--interval', '200', '--export-json', out, '--', 'sh', '-c', `"${process.execPath}" "${fixture}" 16 600 0; true`]);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/measured: pid \d+ \(.*cli-churn\.js 16 600 0\), started by sh/);
    const run = readJson(out).runs[0];
    expect(run.allocatorCheck).toEqual({ detected: 'glibc', served: true, how: 'sampler' });
    expect(typeof run.samples[run.samples.length - 1].allocated).toBe('number');
    const [proc] = procLines(r.stdout);
    expect(Math.abs(run.rss.final! - proc.rss!)).toBeLessThanOrEqual(2 * MiB);
  });

  withGcc('samples a C program from outside through /proc: RSS known, allocator numbers null, peak equal to its VmHWM', async () => {
    const out = path.join(dir, 'c.json');
    const r = await runCli(['run', '--no-agent', '--interval', '100', '--export-json', out, '--', program, '48', '600', '5']);
    expect(r.code).toBe(5);
    expect(r.stdout.startsWith('alloc: start\n')).toBe(true);
    expect(r.stderr).toContain('not available from outside');
    const run = readJson(out).runs[0];
    expect(run.allocatorCheck).toEqual({ detected: 'glibc', served: true, how: 'maps' });
    expect(run.samples.length).toBeGreaterThanOrEqual(3);
    for (const s of run.samples) {
      expect(typeof s.rss).toBe('number');
      for (const k of ['allocated', 'resident', 'heldBack', 'releasable', 'heapUsed', 'elu'] as const) expect(s[k]).toBeNull();
    }
    const [proc] = procLines(r.stdout);
    expect(proc.hwm).toBeGreaterThan(48 * MiB);
    expect(Math.abs(run.rss.peak! - proc.hwm)).toBeLessThanOrEqual(MiB);
  });

  withGccAndJemalloc('sees a preloaded allocator in a C program’s maps, and marks a static program that ignored it', async () => {
    const ok = path.join(dir, 'c-je.json');
    const r1 = await runCli(['run', '--no-agent', '--allocator', 'jemalloc', '--env', 'MALLOC_CONF=background_thread:true', '--interval', '100', '--export-json', ok, '--', program, '16', '400', '0']);
    expect(r1.code).toBe(0);
    const run = readJson(ok).runs[0];
    expect(run.allocatorCheck).toEqual({ detected: 'jemalloc', served: true, how: 'maps' });
    expect(run.allocator).toEqual({ name: 'jemalloc', version: null, library: jemalloc, env: { MALLOC_CONF: 'background_thread:true' } });

    const bad = path.join(dir, 'c-static.json');
    const r2 = await runCli(['run', '--allocator', 'jemalloc', '--interval', '100', '--export-json', bad, '--', staticProgram, '16', '400', '0']);
    expect(r2.code).toBe(0);
    expect(readJson(bad).runs[0].allocatorCheck).toEqual({ detected: 'glibc', served: false, how: 'maps' });
    expect(r2.stderr).toContain('NOT serving');
  });

  withScript('on a terminal, never writes over the program’s output: a prompt without a newline stays', async () => {
    const r = await onTerminal(`"${process.execPath}" "${CLI}" run --interval 100 -- "${process.execPath}" "${path.join(FIXTURES, 'cli-prompt.js')}"`);
    expect(r.out).toMatch(/prompt> answer\r?\n/);
    expect(r.out).not.toContain('\x1b[');
    expect(r.out).toContain('allocator-stats: glibc');
  });

  test('forwards SIGTERM to the program and exits with its exit code', async () => {
    const { child, done } = startCli(['run', '--interval', '200', '--', process.execPath, path.join(FIXTURES, 'cli-signal.js'), 'trap']);
    await new Promise<void>((resolve) => child.stdout!.on('data', (d: Buffer) => d.toString().includes('ready') && resolve()));
    child.kill('SIGTERM');
    const r = await done;
    expect(r.stdout).toContain('got SIGTERM');
    expect(r.code).toBe(43);
  });

  test('dies of the same signal as the program', async () => {
    const { child, done } = startCli(['run', '--interval', '200', '--', process.execPath, path.join(FIXTURES, 'cli-signal.js')]);
    await new Promise<void>((resolve) => child.stdout!.on('data', (d: Buffer) => d.toString().includes('ready') && resolve()));
    child.kill('SIGTERM');
    const r = await done;
    expect([r.code, r.signal]).toEqual([null, 'SIGTERM']);
    expect(r.stderr).toContain('killed by SIGTERM');
  });

  test('passes SIGTERM to the whole program and reports only once none of it runs', async () => {
    // sh dies of SIGTERM at once; the Node process it started takes 300 ms to end after its own.
    const line = `"${process.execPath}" "${path.join(FIXTURES, 'cli-signal.js')}" trap; echo after`;
    const { child, done } = startCli(['run', '--interval', '200', '--', 'sh', '-c', line]);
    const ready = await new Promise<RegExpExecArray>((resolve) => {
      let out = '';
      child.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /ready \d+ (\d+)/.exec(out);
        if (m) resolve(m);
      });
    });
    const grandchild = Number(ready[1]);
    // A zombie left for init to reap runs nothing: only a process that still runs counts.
    const running = (): boolean => {
      try {
        return !/^\d+ \(.*\) [ZX] /.test(fs.readFileSync(`/proc/${grandchild}/stat`, 'utf8'));
      } catch {
        return false;
      }
    };
    let runningAtReport: boolean | null = null;
    child.stderr!.on('data', (d: Buffer) => {
      if (runningAtReport === null && d.toString().includes('allocator-stats:')) runningAtReport = running();
    });
    child.kill('SIGTERM');
    const r = await done;
    expect(r.stdout).toContain('got SIGTERM');
    expect(r.stdout).not.toContain('after');
    expect(r.stderr).toContain('killed by SIGTERM');
    expect(runningAtReport).toBe(false);
    expect(running()).toBe(false);
    expect([r.code, r.signal]).toEqual([null, 'SIGTERM']);
  });

  test('a second SIGTERM kills a program that ignores SIGTERM, and all of its group, with SIGKILL', async () => {
    // An ignored signal stays ignored across exec: sleep ignores SIGTERM, and so does the sleep
    // in the background, a second process of the group.
    const { child, done } = startCli(['run', '--interval', '200', '--', 'sh', '-c', 'trap "" TERM; sleep 30 & echo "ready $!"; exec sleep 30']);
    const helper = await new Promise<number>((resolve) => child.stdout!.on('data', (d: Buffer) => {
      const m = /ready (\d+)/.exec(d.toString());
      if (m) resolve(Number(m[1]));
    }));
    let exited = false;
    void done.then(() => (exited = true));
    child.kill('SIGTERM');
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(exited).toBe(false);
    const second = performance.now();
    child.kill('SIGTERM');
    const r = await done;
    // Well before the grace period (STOP_GRACE_MS) would have killed it.
    expect(performance.now() - second).toBeLessThan(STOP_GRACE_MS / 2);
    expect(r.stderr).toContain('killed by SIGKILL');
    expect([r.code, r.signal]).toEqual([null, 'SIGKILL']);
    expect(fs.existsSync(`/proc/${helper}`) && !/\) [ZX] /.test(fs.readFileSync(`/proc/${helper}/stat`, 'utf8'))).toBe(false);
  });

  test('SIGTSTP (^Z) stops the program with allocator-stats, and SIGCONT continues both', async () => {
    const { child, done } = startCli(['run', '--quiet', '--interval', '200', '--', process.execPath, path.join(FIXTURES, 'cli-signal.js'), 'trap']);
    const pid = await new Promise<number>((resolve) => child.stdout!.on('data', (d: Buffer) => {
      const m = /ready \d+ (\d+)/.exec(d.toString());
      if (m) resolve(Number(m[1]));
    }));
    const state = (p: number): string => /\) (\S)/.exec(fs.readFileSync(`/proc/${p}/stat`, 'utf8'))![1];
    const until = async (p: number, want: (s: string) => boolean): Promise<string> => {
      for (let i = 0; i < 100 && !want(state(p)); i++) await new Promise((resolve) => setTimeout(resolve, 20));
      return state(p);
    };
    child.kill('SIGTSTP');
    expect(await until(pid, (s) => s === 'T')).toBe('T');
    expect(await until(child.pid!, (s) => s === 'T')).toBe('T');
    child.kill('SIGCONT');
    expect(await until(pid, (s) => s !== 'T')).not.toBe('T');
    child.kill('SIGTERM');
    const r = await done;
    expect(r.stdout).toContain('got SIGTERM');
    expect(r.code).toBe(43);
  });

  for (const [signal, key] of [['SIGINT', '\x03'], ['SIGQUIT', '\x1c']] as const) {
    withScript(`in a terminal's foreground, ${signal} typed there reaches the program once, not again from allocator-stats`, async () => {
      // exec: allocator-stats itself leads the terminal's session, in its foreground group.
      const cli = `exec "${process.execPath}" "${CLI}" run --quiet --interval 200 -- "${process.execPath}" "${path.join(FIXTURES, 'cli-signal.js')}" trap ${signal}`;
      let typed = false;
      const r = await onTerminal(cli, (out, type) => {
        if (/ready \d+/.test(out) && !typed) {
          typed = true;
          type(key);
        }
      });
      expect(r.out.split(`got ${signal}`).length - 1).toBe(1);
      expect(r.code).toBe(43);
    });

    withScript(`with a terminal but in a session of its own, passes ${signal} sent with kill to allocator-stats on to the program`, async () => {
      // setsid: standard streams still on the terminal, yet not its foreground: the program
      // cannot have had a typed one, so one sent to allocator-stats alone must be passed on.
      const cli = `exec setsid -w "${process.execPath}" "${CLI}" run --quiet --interval 200 -- "${process.execPath}" "${path.join(FIXTURES, 'cli-signal.js')}" trap ${signal}`;
      let sent = false;
      const r = await onTerminal(cli, (out) => {
        // `ready <ppid>`: the program's parent is allocator-stats; only it gets the signal.
        const m = /ready (\d+)/.exec(out);
        if (m && !sent) {
          sent = true;
          process.kill(Number(m[1]), signal);
        }
      });
      expect(r.out.split(`got ${signal}`).length - 1).toBe(1);
      expect(r.code).toBe(43);
    });
  }

  test('exits 128 + the signal when the program dies of a signal Node cannot die of (SIGPIPE, SIGXFSZ)', async () => {
    // `yes` writes until the reader of a real pipe goes away, then dies of SIGPIPE (a pipe from
    // spawn() is a socket pair, where a closed reader gives ECONNRESET instead): bash reports how
    // allocator-stats ended.
    const line = `"${process.execPath}" "${CLI}" run --quiet -- yes | head -c 1 >/dev/null; echo "status \${PIPESTATUS[0]}"`;
    const pipe = execFileSync('bash', ['-c', line], { encoding: 'utf8' });
    expect(pipe.trim()).toBe(`status ${128 + os.constants.signals.SIGPIPE}`);

    const xfsz = await runCli(['run', '--', 'sh', '-c', 'kill -XFSZ $$']);
    expect([xfsz.code, xfsz.signal]).toEqual([128 + os.constants.signals.SIGXFSZ, null]);
    expect(xfsz.stderr).toContain('killed by SIGXFSZ');
  });

  withCoresHere('dies of SIGSEGV as the program did, leaving no core of Node behind', () => {
    const cwd = fs.mkdtempSync(path.join(dir, 'core-'));
    const env = { ...(process.env as Record<string, string>) };
    delete env.LD_PRELOAD;
    const cores = (): string[] => fs.readdirSync(cwd).filter((f) => f.startsWith(corePrefix));
    // Control: with the limit raised, a process dying of SIGSEGV leaves a core here (else this
    // machine's hard limit forbids cores, and their absence below would prove nothing).
    const control = spawnSync('sh', ['-c', 'ulimit -c unlimited && sh -c "kill -SEGV \\$\\$"; true'], { cwd, env });
    expect(control.status).toBe(0);
    expect(cores().length).toBe(1);
    for (const f of cores()) fs.rmSync(path.join(cwd, f));
    // The program keeps no core of its own; allocator-stats raises its SIGSEGV on itself.
    const line = `ulimit -c unlimited && exec "${process.execPath}" "${CLI}" run --quiet -- sh -c 'ulimit -c 0; kill -SEGV $$'`;
    const r = spawnSync('sh', ['-c', line], { cwd, env });
    expect([r.status, r.signal]).toEqual([null, 'SIGSEGV']);
    expect(cores()).toEqual([]);
  });

  test('leaves the program’s helper processes and worker threads alone: nothing of the package loaded, no addon mapped', async () => {
    const r = await runCli(['run', '--quiet', '--', process.execPath, path.join(FIXTURES, 'cli-helpers-spawn.js'), ROOT]);
    expect(r.code).toBe(0);
    const loaded = r.stdout
      .split('\n')
      .filter((l) => l.startsWith('@@LOADED '))
      .map((l) => JSON.parse(l.slice('@@LOADED '.length)) as { where: string; modules: string[]; addonMapped?: boolean });
    expect(loaded.map((l) => l.where).sort()).toEqual(['helper', 'worker']);
    // The injected file itself, and the names it reads the environment with.
    for (const l of loaded) expect(l.modules.sort()).toEqual(['lib/cli/protocol.js', 'lib/cli/sampler.js']);
    expect(loaded.find((l) => l.where === 'helper')!.addonMapped).toBe(false);
  });

  test('runs a Node program that cannot load addons untouched, samples it from outside and says why', async () => {
    const out = path.join(dir, 'no-addons.json');
    const r = await runCli(['run', '--interval', '100', '--export-json', out, '--', process.execPath, '--no-addons', path.join(FIXTURES, 'cli-outerr.js')]);
    expect(r.code).toBe(3);
    expect(r.stdout).toBe('out\n');
    expect(r.stderr.startsWith('err\nallocator-stats: glibc')).toBe(true);
    expect(r.stderr).toMatch(/the sampler could not load in pid \d+ \(ERR_ADDON_LOAD: [^)]*disabled[^)]*\): sampled from \/proc instead/);
    const run = readJson(out).runs[0];
    expect(run.allocatorCheck.how).toBe('maps');
    expect(run.samples.every((s) => s.heapUsed === null)).toBe(true);
  });

  withPermission('runs a Node program under the permission model untouched', async () => {
    const r = await runCli(['run', '--quiet', '--', process.execPath, '--experimental-permission', '--allow-fs-read=*', path.join(FIXTURES, 'cli-outerr.js')]);
    expect(r.code).toBe(3);
    expect(r.stdout).toBe('out\n');
    expect(r.stderr).not.toContain('ERR_');
    expect(r.stderr).toContain('err\n');
  });

  test('recommends nothing in any export of a single run', async () => {
    const files = { json: path.join(dir, 'one.json'), md: path.join(dir, 'one.md'), html: path.join(dir, 'one.html') };
    const r = await runCli(['run', '--quiet', '--export-json', files.json, '--export-markdown', files.md, '--export-html', files.html, '--', process.execPath, '-e', 'setTimeout(() => {}, 300)']);
    expect(r.code).toBe(0);
    expect(readJson(files.json).recommendation).toBeNull();
    expect(fs.readFileSync(files.md, 'utf8')).toContain('| glibc |');
    for (const file of [files.md, files.html]) expect(fs.readFileSync(file, 'utf8')).not.toMatch(/recommend/i);
  });

  test('a temporary directory it cannot create is one line on stderr and exit 1', async () => {
    const r = await runCli(['run', '--', 'true'], { TMPDIR: path.join(dir, 'missing') });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^allocator-stats: cannot create a directory for the samples in \S+missing \(TMPDIR\): ENOENT\n$/);
  });
});
