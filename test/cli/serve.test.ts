// `allocator-stats serve --pid`: the diagnostic endpoint of a C++ engine, read through its agent,
// with the endpoint's own rules (Host check, token for POST /trim), and a trim that /proc sees.
import { execFileSync, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { agentPath } from '../../src/agent/locate';
import { commandExists, MiB, testIf } from '../helpers';
import { runCli, startCli, tempDir } from './helpers';
import { killedAfterEach, socketOf, startWithAgent, statusBytes, type Started } from '../agent/helpers';

const ENGINE_SOURCE = path.join(__dirname, '..', 'agent', 'fixtures', 'engine.cc');
const AGENT = agentPath();
const withEngine = testIf(commandExists('g++') && AGENT !== null, 'needs g++ (apt-get install g++) and the agent (npm run build:native)');
const hasPromtool = fs.existsSync('/usr/bin/promtool');
const TOKEN = 'serve-test-token-0123456789';

let dir: string;
let engine: string;
beforeAll(() => {
  dir = tempDir();
  fs.chmodSync(dir, 0o700);
  if (commandExists('g++')) {
    engine = path.join(dir, 'engine');
    execFileSync('g++', ['-O1', '-pthread', '-o', engine, ENGINE_SOURCE]);
  }
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const children = killedAfterEach();

/** The engine with the agent listening, once it holds ~120 MiB retained by glibc. */
const startEngine = (): Promise<Started> => startWithAgent(engine, ['--idle=60'], 'engine: idle', { agent: AGENT!, dir, children });

const rssAnon = (pid: number): number => statusBytes(pid, 'RssAnon');

interface Reply {
  status: number;
  type: string;
  body: string;
}

function request(url: string, options: { method?: string; headers?: Record<string, string> } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: options.method ?? 'GET', headers: options.headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode!, type: String(res.headers['content-type']), body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Resolves with the first line of the child's stdout. */
function firstLine(child: ChildProcess): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const nl = out.indexOf('\n');
      if (nl >= 0) resolve(out.slice(0, nl));
    });
    child.on('exit', (code) => reject(new Error(`serve exited (${code}) before printing its URL`)));
  });
}

const SERVING = /^allocator-stats: serving pid (\d+) \(.*engine.*\) at (http:\/\/127\.0\.0\.1:(\d+)\/debug\/memory\/)$/;

/** `serve --pid` on a fresh engine, once it printed its URL. */
async function serving(args: string[] = []): Promise<{ engine: ChildProcess; pid: number; serve: ReturnType<typeof startCli>; line: string; url: string; port: string }> {
  const { child, pid } = await startEngine();
  await socketOf(pid);
  const serve = startCli(['serve', '--pid', String(pid), ...args]);
  children.push(serve.child);
  const line = await firstLine(serve.child);
  const m = SERVING.exec(line);
  if (!m) throw new Error(`not the serving line: ${line}`);
  return { engine: child, pid, serve, line, url: m[2], port: m[3] };
}

describe('allocator-stats serve --pid', () => {
  withEngine('serves the endpoint of a C++ engine: JSON, metrics, Host check, a token-guarded trim /proc sees, the page, the doctor', async () => {
    const { pid, serve, line, url, port } = await serving(['--token', TOKEN, '--allow-trim', '--interval', '200']);
    expect(Number(SERVING.exec(line)![1])).toBe(pid);

    const json = await request(url, { headers: { Accept: 'application/json' } });
    expect(json.status).toBe(200);
    const body = JSON.parse(json.body) as {
      pid: number;
      stats: { allocator: { name: string }; heldBack: number; v8: unknown };
      allocator: { name: string; preload: { entries: Array<{ entry: string; loaded: boolean | null }> } };
      configuration: { env: Record<string, string | null> };
    };
    expect(body.pid).toBe(pid);
    expect(body.stats.allocator.name).toBe('glibc');
    expect(body.allocator.name).toBe('glibc');
    expect(body.stats.heldBack).toBeGreaterThan(64 * MiB);
    expect(body.stats.v8).toBeNull();
    // The program's own environment and mappings, not this process's.
    expect(body.configuration.env.LD_PRELOAD).toBe(AGENT);
    expect(body.allocator.preload.entries).toEqual([{ entry: AGENT, loaded: true }]);

    const metrics = await request(`${url}metrics`);
    expect(metrics.status).toBe(200);
    const values = new Map(
      metrics.body
        .split('\n')
        .filter((l) => l && !l.startsWith('#'))
        .map((l) => [l.slice(0, l.lastIndexOf(' ')), Number(l.slice(l.lastIndexOf(' ') + 1))] as const),
    );
    expect(values.get('allocator_held_back_bytes{allocator="glibc"}')).toBeGreaterThan(64 * MiB);
    expect(values.get('allocator_info{allocator="glibc",version=' + JSON.stringify(/version="([^"]*)"/.exec(metrics.body)![1]) + '}')).toBe(1);
    // No V8 in the engine: those families are absent, not 0.
    expect(metrics.body).not.toContain('allocator_v8_');

    expect((await request(url, { headers: { Host: `evil.example:${port}` } })).status).toBe(421);

    const noToken = await request(`${url}trim`, { method: 'POST' });
    expect(noToken.status).toBe(401);
    const before = rssAnon(pid);
    const trim = await request(`${url}trim`, { method: 'POST', headers: { Authorization: `Bearer ${TOKEN}` } });
    expect(trim.status).toBe(200);
    expect((JSON.parse(trim.body) as { supported: boolean }).supported).toBe(true);
    expect(before - rssAnon(pid)).toBeGreaterThan(64 * MiB);
    // The trim is counted, and the next sample is taken after it.
    const after = JSON.parse((await request(url)).body) as { trims: { trims: number }; stats: { heldBack: number } };
    expect(after.trims.trims).toBe(1);
    expect(after.stats.heldBack).toBeLessThan(body.stats.heldBack - 64 * MiB);

    const page = await request(url, { headers: { Accept: 'text/html' } });
    expect(page.status).toBe(200);
    expect(page.type).toContain('text/html');

    const doctor = await request(`${url}doctor`);
    expect(doctor.status).toBe(200);
    const d = JSON.parse(doctor.body) as { findings: unknown[]; notes: string[]; parts: Array<{ v8Heap: number | null }>; monitor: { samples: number } };
    expect(Array.isArray(d.findings)).toBe(true);
    expect(d.monitor.samples).toBeGreaterThanOrEqual(1);
    // A program that is not Node: its V8 part is zero; it ran before the monitor: no start-up grace.
    expect(d.parts[0].v8Heap).toBe(0);
    expect(d.notes.join(' ')).not.toMatch(/[1-9]\d* s start-up grace/);

    serve.child.kill('SIGTERM');
    const done = await serve.done;
    expect({ code: done.code, signal: done.signal }).toEqual({ code: 0, signal: null });
  });

  withEngine('stops, exit 0, when the program exits', async () => {
    const { engine: child, pid, serve } = await serving();
    child.kill('SIGKILL');
    const done = await serve.done;
    expect(done.code).toBe(0);
    expect(done.stderr).toContain(`allocator-stats: stopped serving pid ${pid}: the connection to its agent closed`);
  });

  test('a process without an agent: exit 1 with the reason', async () => {
    const r = await runCli(['serve', '--pid', '1']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^allocator-stats: process 1 has no agent listening .*LD_PRELOAD=/);
  });

  test('no --pid, or --allow-trim without --token: usage, exit 2', async () => {
    const none = await runCli(['serve']);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('Expected --pid <pid>');
    const trim = await runCli(['serve', '--pid', '1', '--allow-trim']);
    expect(trim.code).toBe(2);
    expect(trim.stderr).toContain('Expected --token with --allow-trim');
  });

  testIf(hasPromtool && commandExists('g++') && AGENT !== null, 'needs promtool (apt-get install prometheus), g++ and the agent')('promtool check metrics accepts GET /metrics', async () => {
    const { url } = await serving();
    const metrics = await request(`${url}metrics`);
    expect(metrics.status).toBe(200);
    const check = spawnSync('/usr/bin/promtool', ['check', 'metrics'], { input: metrics.body, encoding: 'utf8' });
    expect({ status: check.status, out: check.stdout + check.stderr }).toEqual({ status: 0, out: '' });
  });
});
