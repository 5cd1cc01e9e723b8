// The agent built against musl (scripts/build-musl-agent.sh) and preloaded into a musl program:
// it detects musl, reports only the process figures with notes saying why, refuses to trim,
// answers bad requests with errors, and leaves the program to run and exit as it would.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { AgentTarget } from '../../src/agent/target';
import { commandExists, ROOT, testIf } from '../helpers';
import { killedAfterEach, socketOf, startWithAgent, type Started } from './helpers';

const withMusl = testIf(commandExists('musl-gcc') && commandExists('g++'), 'needs musl-gcc (apt-get install musl-tools) and g++');

let dir: string;
let agent: string;
let host: string;
let sockets: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'allocator-stats-musl-agent-'));
  sockets = path.join(dir, 'sockets');
  fs.mkdirSync(sockets, { mode: 0o700 });
  if (!commandExists('musl-gcc') || !commandExists('g++')) return;
  const printed = execFileSync('bash', [path.join(ROOT, 'scripts', 'build-musl-agent.sh'), path.join(dir, 'build')], { encoding: 'utf8' });
  agent = printed.trim().split('\n').pop()!;
  host = path.join(dir, 'build', 'host');
}, 180_000);
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const children = killedAfterEach();

/** Starts the musl host (sleeping `seconds`) with the musl agent listening; resolves on "host: ready". */
const startHost = (seconds: number): Promise<Started> => startWithAgent(host, [String(seconds)], 'host: ready', { agent, dir: sockets, children });

/** One request on a fresh connection; resolves with the first line of the reply. */
function request(socket: string, data: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = net.connect(socket);
    let got = '';
    c.on('data', (d) => {
      got += d.toString();
      const newline = got.indexOf('\n');
      if (newline >= 0) {
        c.destroy();
        resolve(got.slice(0, newline));
      }
    });
    c.on('close', () => resolve(got));
    c.on('error', reject);
    c.write(data);
  });
}

describe('the agent built against musl', () => {
  withMusl('links against musl only', () => {
    const dynamic = commandExists('readelf')
      ? execFileSync('readelf', ['-d', agent], { encoding: 'utf8' })
      : execFileSync('objdump', ['-p', agent], { encoding: 'utf8' });
    const needed = [...dynamic.matchAll(/NEEDED\)?\s+(?:Shared library: \[)?([^\]\s]+)/g)].map((m) => m[1]);
    expect(needed).toEqual(['libc.so']);
  });

  withMusl('detects musl, reports the process figures only, refuses to trim and survives bad requests', async () => {
    const h = await startHost(60);
    const socket = await socketOf(h.pid);
    const target = await AgentTarget.open(socket);
    try {
      expect(target.pid).toBe(h.pid);
      expect(target.allocator.name).toBe('musl');
      expect(target.canTrim).toBe(false);

      const stats = await target.stats();
      for (const k of ['allocated', 'resident', 'heldBack', 'releasable'] as const) expect(stats[k]).toBeNull();
      expect(stats.notes.length).toBeGreaterThan(0);
      expect(stats.notes.some((n) => /musl/.test(n) && /no statistics/.test(n))).toBe(true);
      expect(typeof stats.process.rss).toBe('number');
      expect(stats.process.rss!).toBeGreaterThan(0);
      expect(typeof stats.process.rssAnon).toBe('number');
      expect(stats.v8).toBeNull();

      const trim = await target.trim();
      expect(trim.supported).toBe(false);
      expect(trim.allocator.name).toBe('musl');
      expect(trim.notes.some((n) => /musl/.test(n))).toBe(true);
      expect(typeof trim.rssBefore).toBe('number');
    } finally {
      target.close();
    }

    for (const [line, code] of [
      ['bogus\n', 'ERR_AGENT_REQUEST'],
      ['call nosuchfunction\n', 'ERR_AGENT_REQUEST'],
      ['sample 99\n', 'ERR_OUT_OF_RANGE'],
      ['\n', 'ERR_AGENT_REQUEST'],
    ] as const) {
      const reply = JSON.parse(await request(socket, line)) as { ok: boolean; code: string };
      expect([line, reply.ok, reply.code]).toEqual([line, false, code]);
    }
    // Still answering after them.
    expect(JSON.parse(await request(socket, 'hello\n'))).toMatchObject({ ok: true, pid: h.pid, detect: { name: 'musl' } });

    h.child.kill('SIGTERM');
    expect(await h.exited).toEqual({ code: null, signal: 'SIGTERM' });
    expect(h.stderr()).not.toContain('allocator-stats agent');
  });

  withMusl('the program exits normally with the agent listening', async () => {
    const h = await startHost(2);
    const target = await AgentTarget.open(await socketOf(h.pid));
    expect(target.allocator.name).toBe('musl');
    expect((await target.stats()).process.rss).toBeGreaterThan(0);
    target.close();
    expect(await h.exited).toEqual({ code: 0, signal: null });
  });
});
