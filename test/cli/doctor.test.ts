// allocator-stats doctor <url>: the client of the diagnostic endpoint's doctor route, against a
// running service with serveDiagnostics() and its monitor.
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { doctorUrl } from '../../src/cli/cmd-doctor';
import type { Diagnosis } from '../../src/doctor/types';
import { FIXTURES, runCli } from './helpers';

let service: ChildProcess;
let base: string;
beforeAll(async () => {
  service = spawn(process.execPath, [path.join(FIXTURES, 'cli-doctor-service.js')], { stdio: ['ignore', 'pipe', 'inherit'] });
  const url = await new Promise<string>((resolve) => service.stdout!.once('data', (d: Buffer) => resolve(d.toString().trim())));
  base = new URL(url).origin;
  // Until its doctor sees the heap growth (it needs a window of samples first).
  for (let i = 0; i < 120; i++) {
    const d = (await (await fetch(`${base}/debug/memory/doctor`)).json()) as Diagnosis;
    if (d.findings.some((f) => f.id === 'js-heap-growth')) break;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
});
afterAll(() => service.kill('SIGKILL'));

describe('allocator-stats doctor', () => {
  test('finds the /doctor route from the endpoint, its route, or a bare origin', () => {
    expect(doctorUrl('http://h:1').href).toBe('http://h:1/debug/memory/doctor');
    expect(doctorUrl('http://h:1/debug/memory/').href).toBe('http://h:1/debug/memory/doctor');
    expect(doctorUrl('http://h:1/ops/mem').href).toBe('http://h:1/ops/mem/doctor');
    expect(doctorUrl('https://h/debug/memory/doctor').href).toBe('https://h/debug/memory/doctor');
    expect(() => doctorUrl('ftp://h/')).toThrow(/Expected an http\(s\) URL for allocator-stats doctor but received "ftp:\/\/h\/"/);
  });

  test('prints the findings of a running service, and its answer with --json', async () => {
    const text = await runCli(['doctor', `${base}/debug/memory`]);
    expect(text.stderr).toBe('');
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(new RegExp(`^allocator-stats doctor: ${base}/debug/memory/doctor\n  \\d+ samples over \\d+ s; sampling cost \\d+\\.\\d+ % of a core\n  RSS \\d+\\.\\d MiB → \\d+\\.\\d MiB \\(highest \\d+\\.\\d MiB\\); held back \\d+\\.\\d MiB → \\d+\\.\\d MiB\n`));

    const json = await runCli(['doctor', '--json', base]);
    expect(json.code).toBe(0);
    const answer = JSON.parse(json.stdout) as Diagnosis;
    expect(Array.isArray(answer.findings)).toBe(true);
    expect(answer.window.samples).toBeGreaterThan(3);
    expect(answer.findings.map((f) => f.id)).toContain('js-heap-growth');
    for (const f of answer.findings) expect(text.stdout).toContain(`[${f.severity}] ${f.id}: ${f.title}`);
  });

  test('a route that is not the doctor, and a service that is down: a message and exit 1', async () => {
    const missing = await runCli(['doctor', `${base}/elsewhere`]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain(`${base}/elsewhere/doctor answered 404: not found (ERR_NOT_FOUND)`);
    // A port that was free a moment ago: nothing listens there.
    const probe = net.createServer();
    const port = await new Promise<number>((resolve) => probe.listen(0, '127.0.0.1', () => resolve((probe.address() as net.AddressInfo).port)));
    await new Promise((resolve) => probe.close(resolve));
    const down = await runCli(['doctor', `http://127.0.0.1:${port}/debug/memory`]);
    expect(down.code).toBe(1);
    expect(down.stderr).toBe(`allocator-stats: cannot reach http://127.0.0.1:${port}/debug/memory/doctor: ECONNREFUSED\n`);
  });
});
