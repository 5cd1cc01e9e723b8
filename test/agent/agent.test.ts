// The agent in programs that are not Node: a C++ engine with worker-thread retention (compiled
// here with the system compiler) under glibc, jemalloc and tcmalloc, a Python service, a static
// binary that refuses the preload, bad control messages, and an agent that is never asked for
// anything. Every figure is held against what /proc says of the same process.
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { agentPath } from '../../src/agent/locate';
import { AgentTarget } from '../../src/agent/target';
import type { JsonReport } from '../../src/cli/export-json';
import { buildAllocProgram, hasGcc, runCli, tempDir } from '../cli/helpers';
import { ALLOCATOR_LIBRARIES, commandExists, findLibrary, MiB, testIf } from '../helpers';
import { killedAfterEach, socketOf, startWithAgent as startProgram, statusBytes, type Started } from './helpers';

const FIXTURES = path.join(__dirname, 'fixtures');
const AGENT = agentPath();
const hasGxx = commandExists('g++');
// Debian's python3 (a version manager's shim is a shell script, which the agent leaves alone).
const PYTHON = fs.existsSync('/usr/bin/python3') ? '/usr/bin/python3' : null;
const jemalloc = findLibrary(ALLOCATOR_LIBRARIES.jemalloc);
const tcmalloc = findLibrary(ALLOCATOR_LIBRARIES.tcmalloc);

const withEngine = testIf(hasGxx && AGENT !== null, 'needs g++ (apt-get install g++) and the agent (npm run build:native)');
const withEngineAndJemalloc = testIf(hasGxx && AGENT !== null && jemalloc !== null, 'needs g++, the agent and libjemalloc2');
const withEngineAndTcmalloc = testIf(hasGxx && AGENT !== null && tcmalloc !== null, 'needs g++, the agent and libtcmalloc-minimal4');
const withPython = testIf(PYTHON !== null && AGENT !== null, 'needs /usr/bin/python3 (apt-get install python3) and the agent');
const REDIS = fs.existsSync('/usr/bin/redis-server') ? '/usr/bin/redis-server' : null;
const withRedis = testIf(REDIS !== null && AGENT !== null, 'needs redis-server (apt-get install redis-server) and the agent');
const withStatic = testIf(hasGcc && AGENT !== null, 'needs gcc and libc6-dev (a static binary) and the agent');

let dir: string;
let engine: string;
beforeAll(() => {
  dir = tempDir();
  if (hasGxx) {
    engine = path.join(dir, 'engine');
    execFileSync('g++', ['-O1', '-pthread', '-o', engine, path.join(FIXTURES, 'engine.cc')]);
  }
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const children = killedAfterEach();

/** Starts `file` with the agent (and `preload` before it) listening; resolves once stderr shows `ready`. */
const startWithAgent = (file: string, args: string[], ready: string, env: Record<string, string> = {}, preload: string[] = []): Promise<Started> =>
  startProgram(file, args, ready, { agent: AGENT!, dir, env, preload, children });

/**
 * What /proc shows a trim returns, against the agent's releasable figure just before (and under
 * glibc its held-back figure: glibc keeps no caches a trim leaves), within max(10 %, 8 MiB).
 */
async function expectTrimMatches(target: AgentTarget, pid: number, heldBackToo: boolean): Promise<{ heldBack: number; returned: number }> {
  const before = await target.stats();
  expect(before.heldBack).not.toBeNull();
  const anonBefore = statusBytes(pid, 'RssAnon');
  const trim = await target.trim();
  const anonAfter = statusBytes(pid, 'RssAnon');
  expect(trim.supported).toBe(true);
  const returned = anonBefore - anonAfter;
  const tolerance = Math.max(0.1 * returned, 8 * MiB);
  expect(Math.abs(before.releasable! - returned)).toBeLessThanOrEqual(tolerance);
  if (heldBackToo) expect(Math.abs(before.heldBack! - returned)).toBeLessThanOrEqual(tolerance);
  // The trim's own account is /proc's too.
  expect(Math.abs(trim.releasedBytes! - (trim.rssBefore! - trim.rssAfter!))).toBe(0);
  return { heldBack: before.heldBack!, returned };
}

const readJson = (file: string): JsonReport => JSON.parse(fs.readFileSync(file, 'utf8')) as JsonReport;

describe('a C++ engine through the agent', () => {
  withEngine('allocator-stats run gives every sample the allocator figures and finds retention after a drained backlog', async () => {
    const out = path.join(dir, 'engine.json');
    // A load phase of 3 s: enough samples on the rise even when the machine is busy.
    const r = await runCli(['run', '--interval', '250', '--export-json', out, '--', engine, '--load=3']);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('engine: drained backlog=12000');
    expect(r.stderr).toMatch(/verified by agent\), exit 0, [\d.]+ s, \d+ samples from inside \(agent\)/);
    expect(r.stderr).toContain('not available: the JS heap, external and ArrayBuffer memory, event-loop utilisation (not a Node program)');
    const run = readJson(out).runs[0];
    expect(run.allocatorCheck).toEqual({ detected: 'glibc', served: true, how: 'agent' });
    expect(run.samples.length).toBeGreaterThanOrEqual(12);
    for (const s of run.samples) {
      for (const k of ['allocated', 'resident', 'heldBack', 'releasable'] as const) expect(typeof s[k]).toBe('number');
      expect(s.heapUsed).toBeNull();
      // Resident is part of RSS: the agent read both in the same process at the same moment.
      expect(s.resident!).toBeLessThanOrEqual(s.rss! + MiB);
    }
    const ids = run.findings.map((f) => f.id);
    expect(ids).toContain('allocator-retention');
    expect(ids).toContain('backlog');
    // Nothing grew and stayed: no leak of any kind, and none blamed on V8, which is not there.
    for (const id of ['js-heap-growth', 'array-buffer-growth', 'native-growth']) expect(ids).not.toContain(id);
    // The last sample was taken as the program began to exit, when it still held its peak's pages.
    const last = run.samples[run.samples.length - 1];
    expect(last.heldBack!).toBeGreaterThan(64 * MiB);
  });

  withEngine('held back matches what /proc shows a trim returns (glibc)', async () => {
    const p = await startWithAgent(engine, ['--idle=60'], 'engine: idle');
    const target = await AgentTarget.open(await socketOf(p.pid));
    try {
      expect(target.allocator.name).toBe('glibc');
      expect(target.argv[0]).toBe(engine);
      const { heldBack, returned } = await expectTrimMatches(target, p.pid, true);
      expect(heldBack).toBeGreaterThan(64 * MiB);
      expect(returned).toBeGreaterThan(64 * MiB);
    } finally {
      target.close();
    }
    p.child.kill('SIGTERM');
    expect((await p.exited).signal).toBe('SIGTERM');
  });

  withEngineAndJemalloc('under jemalloc it gets jemalloc numbers, and a purge returns what it said', async () => {
    const p = await startWithAgent(engine, ['--idle=60'], 'engine: idle', {}, [jemalloc!]);
    const target = await AgentTarget.open(await socketOf(p.pid));
    try {
      expect(target.allocator.name).toBe('jemalloc');
      expect(target.allocator.version).toMatch(/^5\./);
      const s = await target.stats();
      expect(s.allocated!).toBeGreaterThan(0);
      expect(s.resident!).toBeGreaterThan(s.allocated!);
      expect(s.raw).toHaveProperty('pdirty');
      expect(s.raw).toHaveProperty('retained');
      await expectTrimMatches(target, p.pid, false);
    } finally {
      target.close();
    }
  });

  withEngineAndTcmalloc('under tcmalloc it gets tcmalloc numbers, and a release returns what it said', async () => {
    const p = await startWithAgent(engine, ['--idle=60'], 'engine: idle', {}, [tcmalloc!]);
    const target = await AgentTarget.open(await socketOf(p.pid));
    try {
      expect(target.allocator.name).toBe('tcmalloc');
      const s = await target.stats();
      expect(s.allocated!).toBeGreaterThan(0);
      expect(s.heldBack!).toBeGreaterThan(32 * MiB);
      expect(s.raw).toHaveProperty(['generic.current_allocated_bytes']);
      await expectTrimMatches(target, p.pid, false);
    } finally {
      target.close();
    }
  });
});

describe('allocator-stats compare on a program that is not Node', () => {
  withEngineAndJemalloc('ranks glibc against jemalloc by the rule it uses for Node, and the HTML report splits RSS into its parts', async () => {
    const json = path.join(dir, 'compare.json');
    const html = path.join(dir, 'compare.html');
    const r = await runCli(['compare', '--only', 'glibc,jemalloc', '--runs', '1', '--interval', '250', '--export-json', json, '--export-html', html, '--', engine]);
    const report = readJson(json);
    expect(report.runs.map((run) => run.label).sort()).toEqual(['glibc', 'jemalloc']);
    for (const run of report.runs) {
      expect(run.allocatorCheck).toEqual({ detected: run.label, served: true, how: 'agent' });
      expect(run.samples.every((s) => typeof s.heldBack === 'number')).toBe(true);
    }
    // The same rule as for Node: lowest steady RSS wins when it is clear of the noise (here one
    // run each, so the difference must be large); else nothing is recommended and exit 1.
    const steady = Object.fromEntries(report.runs.map((run) => [run.label, run.rss.steady!]));
    if (report.recommendation) {
      expect(r.code).toBe(0);
      const other = report.recommendation.label === 'glibc' ? 'jemalloc' : 'glibc';
      expect(steady[report.recommendation.label]).toBeLessThan(steady[other]);
    } else {
      expect(r.code).toBe(1);
    }
    const page = fs.readFileSync(html, 'utf8');
    // Each chart splits RSS into malloc in use, held back and the rest; a program without V8 has
    // no V8 layer (an empty layer is not drawn), and none is the outside view's anonymous/file split.
    for (const layer of ['nativeInUse', 'heldBack', 'other']) expect(page.split(`data-layer="${layer}"`).length - 1).toBe(2);
    for (const layer of ['v8Heap', 'arrayBuffers', 'anon', 'file']) expect(page).not.toContain(`data-layer="${layer}"`);
  });
});

describe('a Python service through the agent', () => {
  withPython('gets glibc numbers, and its trim returns what they said', async () => {
    const p = await startWithAgent(PYTHON!, [path.join(FIXTURES, 'py-workers.py'), '--idle=60'], 'py: idle');
    const target = await AgentTarget.open(await socketOf(p.pid));
    try {
      expect(target.allocator.name).toBe('glibc');
      const s = await target.stats();
      expect(s.allocated!).toBeGreaterThan(MiB);
      expect(s.v8).toBeNull();
      // Python's kept objects leave free space inside partly used pages: held back counts it,
      // a trim cannot return it, releasable says so.
      const { returned } = await expectTrimMatches(target, p.pid, false);
      expect(s.heldBack!).toBeGreaterThanOrEqual(s.releasable!);
      expect(returned).toBeGreaterThan(32 * MiB);
    } finally {
      target.close();
    }
  });
});

describe('allocator-stats agent-path, stats, trim and doctor on a running program', () => {
  withEngine('agent-path prints the library; stats, trim and doctor reach the engine by its process id', async () => {
    expect((await runCli(['agent-path'])).stdout).toBe(`${AGENT}\n`);
    const p = await startWithAgent(engine, ['--idle=60'], 'engine: idle');
    await socketOf(p.pid);
    const stats = await runCli(['stats', '--json', String(p.pid)]);
    expect(stats.code).toBe(0);
    const s = JSON.parse(stats.stdout) as { pid: number; allocator: { name: string }; heldBack: number; releasable: number; v8: null };
    expect(s).toMatchObject({ pid: p.pid, allocator: { name: 'glibc' }, v8: null });
    expect(s.heldBack).toBeGreaterThan(64 * MiB);

    const anonBefore = statusBytes(p.pid, 'RssAnon');
    const trim = await runCli(['trim', String(p.pid)]);
    const returned = anonBefore - statusBytes(p.pid, 'RssAnon');
    expect(trim.code).toBe(0);
    expect(trim.stdout).toMatch(new RegExp(`^allocator-stats: trimmed pid ${p.pid} \\(glibc\\) in [\\d.]+ ms: RSS [\\d.]+ MiB → [\\d.]+ MiB, [\\d.]+ MiB back to the OS`));
    expect(Math.abs(s.releasable - returned)).toBeLessThanOrEqual(Math.max(0.1 * returned, 8 * MiB));

    // After the trim, nothing is held back and nothing moves: a verdict of no findings, with the window said.
    const doctor = await runCli(['doctor', '--duration', '3', '--interval', '200', '--json', String(p.pid)]);
    expect(doctor.code).toBe(0);
    expect(doctor.stderr).toContain(`sampling pid ${p.pid} every 200 ms for 3 s`);
    const d = JSON.parse(doctor.stdout) as { pid: number; samples: unknown[]; findings: Array<{ id: string }>; window: { samples: number } };
    expect(d.pid).toBe(p.pid);
    expect(d.samples.length).toBeGreaterThanOrEqual(12);
    expect(d.window.samples).toBe(d.samples.length);
    expect(d.findings.map((f) => f.id)).not.toContain('allocator-retention');
  });
});

describe('redis-server through the agent', () => {
  withRedis('Debian\'s redis-server, which links jemalloc itself, gets jemalloc numbers', async () => {
    // Debian's redis-server is a link to redis-check-rdb, which starts the server when named so:
    // the agent must not take it for a launcher.
    // On a Unix socket of its own, no TCP port: nothing else on the machine can collide with it.
    const child = spawn(REDIS!, ['--port', '0', '--unixsocket', path.join(dir, 'redis.sock'), '--save', '', '--appendonly', 'no', '--daemonize', 'no'], {
      stdio: ['ignore', 'ignore', 'ignore'],
      env: { ...process.env, LD_PRELOAD: AGENT!, ALLOCATOR_STATS_AGENT: '1', ALLOCATOR_STATS_AGENT_DIR: dir },
    });
    children.push(child);
    const target = await AgentTarget.open(await socketOf(child.pid!));
    try {
      expect(target.allocator.name).toBe('jemalloc');
      const s = await target.stats();
      expect(s.allocated!).toBeGreaterThan(0);
      expect(s.resident!).toBeGreaterThanOrEqual(s.allocated!);
      expect(s.resident!).toBeLessThanOrEqual(s.process.rssAnon!);
      expect(typeof s.heldBack).toBe('number');
      expect((await target.trim()).supported).toBe(true);
    } finally {
      target.close();
    }
  });
});

describe('where the agent cannot be', () => {
  withStatic('a static binary ignores the preload: the run falls back to /proc and says why', async () => {
    const program = buildAllocProgram(dir, true);
    const out = path.join(dir, 'static.json');
    const r = await runCli(['run', '--interval', '100', '--export-json', out, '--', program, '32', '600', '0']);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('samples from /proc');
    expect(r.stderr).toContain('the agent did not start in the program: a statically linked program');
    const run = readJson(out).runs[0];
    expect(run.allocatorCheck.how).toBe('maps');
    expect(run.samples.every((s) => s.allocated === null)).toBe(true);
  });
});

/** Sends `data` on a fresh connection and collects what comes back until the agent closes or `lines` replies. */
function exchange(socket: string, data: Buffer | string, lines: number): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const c = net.connect(socket);
    let got = '';
    const done = (): void => {
      c.destroy();
      resolve(got.split('\n').filter(Boolean));
    };
    c.on('data', (d) => {
      got += d.toString();
      if (got.split('\n').filter(Boolean).length >= lines) done();
    });
    c.on('close', done);
    c.on('error', reject);
    c.write(data);
  });
}

describe('the control channel', () => {
  withEngine('bad requests get error replies and the program runs on', async () => {
    const p = await startWithAgent(engine, ['--idle=60'], 'engine: idle');
    const socket = await socketOf(p.pid);
    const codeOf = (line: string): string => (JSON.parse(line) as { code: string }).code;
    const hello = JSON.parse((await exchange(socket, 'hello\n', 1))[0]) as { wire: { backends: Array<{ name: string }> } };
    const glibc = hello.wire.backends.findIndex((b) => b.name === 'glibc');
    const jemallocIndex = hello.wire.backends.findIndex((b) => b.name === 'jemalloc');
    expect(glibc).toBeGreaterThanOrEqual(0);
    const bad: Array<[string | Buffer, string]> = [
      ['bogus\n', 'ERR_AGENT_REQUEST'],
      // A backend the agent does not have: the core's own range check answers.
      ['sample 99\n', 'ERR_OUT_OF_RANGE'],
      ['sample -1 x y\n', 'ERR_OUT_OF_RANGE'],
      [`trim ${glibc} 1e400\n`, 'ERR_INVALID_ARG_TYPE'],
      [`trim ${glibc} x\n`, 'ERR_INVALID_ARG_TYPE'],
      [`trim ${glibc} 0 0 0 0 0 0 0 0\n`, 'ERR_OUT_OF_RANGE'],
      // A backend whose allocator does not serve this program.
      [`trim ${jemallocIndex} 0\n`, 'ERR_ALLOCATOR_UNSUPPORTED'],
      ['call system rm\n', 'ERR_AGENT_REQUEST'],
      ['call jemallocRead stats.allocated\n', 'ERR_ALLOCATOR_UNSUPPORTED'],
      ['call mallopt 1 2\n', 'ERR_AGENT_REQUEST'],
      [Buffer.from([0xff, 0x00, 0x1b, 0x5b, 0x0a]), 'ERR_AGENT_REQUEST'],
      ['\n', 'ERR_AGENT_REQUEST'],
    ];
    for (const [request, code] of bad) {
      const replies = await exchange(socket, request, 1);
      expect(replies).toHaveLength(1);
      expect(JSON.parse(replies[0])).toMatchObject({ ok: false });
      expect([code, request]).toEqual([codeOf(replies[0]), request]);
    }
    // A line longer than the limit is refused and the connection closed.
    const long = await exchange(socket, `hello ${'x'.repeat(10_000)}\n`, 1);
    expect(codeOf(long[0])).toBe('ERR_AGENT_REQUEST');
    // A flood of connections: the ninth at once is turned away, the others still answer.
    const open = await Promise.all(Array.from({ length: 9 }, () => new Promise<net.Socket>((resolve) => {
      const c = net.connect(socket, () => resolve(c));
    })));
    const busy = await new Promise<string>((resolve) => {
      let seen = '';
      for (const c of open) c.on('data', (d) => {
        seen += d.toString();
        if (seen.includes('ERR_AGENT_BUSY')) resolve(seen);
      });
    });
    expect(busy).toContain('ERR_AGENT_BUSY');
    for (const c of open) c.destroy();
    // Still alive, and still answering.
    expect(() => process.kill(p.pid, 0)).not.toThrow();
    const target = await AgentTarget.open(socket);
    expect((await target.stats()).heldBack!).toBeGreaterThan(0);
    target.close();
    expect(p.child.exitCode).toBeNull();
  });

  withStatic('an agent preloaded but never asked to listen starts no thread, opens no file or socket', async () => {
    const program = buildAllocProgram(dir);
    // The same program without the agent, started the same way, is the baseline.
    const look = async (env: NodeJS.ProcessEnv): Promise<{ pid: number; maps: string; tasks: number; fds: string[] }> => {
      const child = spawn(program, ['8', '3000', '0'], { stdio: ['ignore', 'ignore', 'ignore'], env });
      children.push(child);
      await new Promise((r) => setTimeout(r, 500));
      const pid = child.pid!;
      const seen = {
        pid,
        maps: fs.readFileSync(`/proc/${pid}/maps`, 'utf8'),
        tasks: fs.readdirSync(`/proc/${pid}/task`).length,
        fds: fs.readdirSync(`/proc/${pid}/fd`).map((fd) => fs.readlinkSync(`/proc/${pid}/fd/${fd}`).replace(/\[\d+\]$/, '')),
      };
      child.kill('SIGKILL');
      return seen;
    };
    const { ALLOCATOR_STATS_AGENT: _a, ALLOCATOR_STATS_AGENT_INHERIT: _i, ...env } = process.env;
    const without = await look(env);
    const dormant = await look({ ...env, LD_PRELOAD: AGENT! });
    expect(dormant.maps).toContain(path.basename(AGENT!));
    expect(without.maps).not.toContain(path.basename(AGENT!));
    expect(dormant.tasks).toBe(1);
    expect(dormant.fds).toEqual(without.fds);
    // And no socket file anywhere it could have made one.
    const where = [process.env.XDG_RUNTIME_DIR && path.join(process.env.XDG_RUNTIME_DIR, 'allocator-stats'), `/tmp/allocator-stats-${process.getuid!()}`, dir];
    for (const d of where) if (d && fs.existsSync(d)) expect(fs.readdirSync(d)).not.toContain(`agent.${dormant.pid}.sock`);
  });

  withStatic('it removes itself from the environment that the program\'s children inherit', () => {
    const env = execFileSync('/bin/sh', ['-c', 'env'], { env: { ...process.env, LD_PRELOAD: `${AGENT!}` } }).toString();
    expect(env).not.toContain(path.basename(AGENT!));
    // Unless asked to stay.
    const kept = execFileSync('/bin/sh', ['-c', 'env'], { env: { ...process.env, LD_PRELOAD: `${AGENT!}`, ALLOCATOR_STATS_AGENT_INHERIT: '1' } }).toString();
    expect(kept).toContain(`LD_PRELOAD=${AGENT!}`);
  });
});
