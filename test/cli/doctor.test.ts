// allocator-stats doctor <url>: the client of the diagnostic endpoint's doctor route, against a
// running service with serveDiagnostics() and its monitor, and against an endpoint that is not to
// be trusted: escape sequences in its text, endless or broken bodies, slow drips and redirects
// elsewhere (a real server on 127.0.0.1 in this process plays each part).
import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { doctorUrl } from '../../src/cli/cmd-doctor';
import type { Diagnosis } from '../../src/doctor/types';
import { FIXTURES, runCli, type CliResult } from './helpers';

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

const HOSTILE = {
  findings: [
    {
      severity: 'warn\x1b[2J',
      id: 'id\x1b]0;retitled\x07',
      title: 'Title \x1b]52;c;ZWNobyBvd25lZA==\x07with a clipboard write',
      summary: 'line one\nline two \x9b31mred\u202eexe.txt',
      advice: ['advice \x1b[31mred\x1b[0m', 'isolate \u2066x\u2069'],
    },
  ],
  window: { start: 0, end: 60_000, samples: '7\x1b[H' },
  notes: ['note \x1b]8;;http://evil\x1b\\link\x1b]8;;\x1b\\ end', 'bell\x07'],
};
const RAW = /[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]/;

let server: http.Server;
let origin: string;
let port: number;
let bigSent = 0;
let elsewhereHits = 0;
const sockets = new Set<net.Socket>();

function json(res: http.ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

/** Exit 1 with one `allocator-stats: …` line on stderr and no stack. */
function expectOneLine(r: CliResult, message: RegExp): void {
  expect(r.code).toBe(1);
  expect(r.stdout).toBe('');
  expect(r.stderr).toMatch(/^allocator-stats: [^\n]*\n$/);
  expect(r.stderr).not.toMatch(/^\s+at /m);
  expect(r.stderr).toMatch(message);
  expect(r.stderr).not.toMatch(RAW);
}

describe('allocator-stats doctor against a hostile endpoint', () => {
  beforeAll(async () => {
    server = http.createServer((req, res) => {
      const route = (req.url ?? '').replace(/\/doctor$/, '');
      switch (route) {
        case '/hostile':
          return json(res, 200, HOSTILE);
        case '/hostile-error':
          return json(res, 503, { error: 'down\x1b]0;owned\x07 for now', code: 'ERR_\x1b[2J' });
        case '/big': {
          // 50 MiB, streamed in chunks as the client takes them, never declared up front.
          const chunk = Buffer.alloc(64 * 1024, 0x20);
          res.writeHead(200, { 'content-type': 'application/json' });
          res.write('{"findings":[], "pad": "');
          const pump = (): void => {
            while (bigSent < 50 * 1024 * 1024) {
              bigSent += chunk.length;
              if (!res.write(chunk)) return void res.once('drain', pump);
            }
            res.end('"}');
          };
          res.on('close', () => res.removeAllListeners('drain'));
          return pump();
        }
        case '/declared-big':
          res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(50 * 1024 * 1024) });
          return void res.write('{"findings":[');
        case '/reset':
          res.writeHead(200, { 'content-type': 'application/json', 'content-length': '1000' });
          res.write('{"findings":[');
          return void setTimeout(() => req.socket.resetAndDestroy(), 50);
        case '/drip': {
          res.writeHead(200, { 'content-type': 'application/json' });
          const timer = setInterval(() => res.write(' '), 50);
          return void res.on('close', () => clearInterval(timer));
        }
        case '/not-json':
          res.writeHead(200, { 'content-type': 'text/html' });
          return void res.end('<html>hello</html>');
        case '/null':
          return json(res, 200, null);
        case '/cross-origin':
          // localhost is the same server under another origin: the CLI must not go there.
          res.writeHead(302, { location: `http://localhost:${port}/elsewhere/doctor` });
          return void res.end();
        case '/elsewhere':
          elsewhereHits++;
          return json(res, 200, { findings: [] });
        case '/same-origin':
          res.writeHead(307, { location: '/hostile/doctor' });
          return void res.end();
        case '/loop':
          res.writeHead(302, { location: '/loop/doctor' });
          return void res.end();
        default:
          return json(res, 404, { error: 'not found', code: 'ERR_NOT_FOUND' });
      }
    });
    server.on('connection', (s) => {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
    });
    port = await new Promise<number>((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port)));
    origin = `http://127.0.0.1:${port}`;
  });
  afterAll(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((resolve) => server.close(resolve));
  });

  test('escape sequences and bidi controls in its text never reach the terminal', async () => {
    const r = await runCli(['doctor', `${origin}/hostile`]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).not.toMatch(RAW);
    for (const c of ['\x1b', '\x07', '\x9b', '\u202e', '\u2066']) expect(r.stdout).not.toContain(c);
    expect(r.stdout).toContain('  7 samples over 60 s\n');
    expect(r.stdout).toContain('  [warn] id: Title with a clipboard write\n');
    expect(r.stdout).toContain('    line one line two redexe.txt\n');
    expect(r.stdout).toContain('    - advice red\n    - isolate x\n');
    expect(r.stdout).toContain('  note: note link end\n  note: bell\n');
  });

  test('--json is safe as it is: JSON.stringify escapes every control character', async () => {
    const r = await runCli(['doctor', '--json', `${origin}/hostile`]);
    expect(r.code).toBe(0);
    expect(r.stdout).not.toMatch(/[\x00-\x09\x0b-\x1f\x7f]/);
    expect(r.stdout).toContain('\\u001b]0;retitled\\u0007');
    // The answer itself is kept whole for a program to read.
    expect(JSON.parse(r.stdout)).toEqual(HOSTILE);
  });

  test('its error answers are printed safely too', async () => {
    expectOneLine(await runCli(['doctor', `${origin}/hostile-error`]), new RegExp(`^allocator-stats: ${origin}/hostile-error/doctor answered 503: down for now \\(ERR_\\)\n$`));
  });

  test('a 50 MiB body is refused without being read to its end', async () => {
    const r = await runCli(['doctor', `${origin}/big`]);
    expectOneLine(r, new RegExp(`^allocator-stats: ${origin}/big/doctor answered more than 4194304 bytes \\(--max-bytes\\): not read\n$`));
    // The CLI hung up: the server got to send little more than the limit and the socket buffers.
    expect(bigSent).toBeLessThan(20 * 1024 * 1024);
  });

  test('a body declared larger than --max-bytes is refused at once; a small limit refuses a small body', async () => {
    expectOneLine(await runCli(['doctor', `${origin}/declared-big`]), /answered more than 4194304 bytes \(--max-bytes\): not read/);
    expectOneLine(await runCli(['doctor', '--max-bytes', '100', `${origin}/hostile`]), /hostile\/doctor answered more than 100 bytes \(--max-bytes\): not read/);
  });

  test('a connection reset in the middle of the body: one line, exit 1', async () => {
    expectOneLine(await runCli(['doctor', `${origin}/reset`]), new RegExp(`^allocator-stats: ${origin}/reset/doctor broke off its answer: ECONNRESET\n$`));
  });

  test('a body that drips slower than the deadline ends in the timeout', async () => {
    expectOneLine(await runCli(['doctor', '--timeout', '400', `${origin}/drip`]), new RegExp(`^allocator-stats: no answer from ${origin}/drip/doctor within 400 ms\n$`));
  });

  test('an answer that is not JSON, or JSON that is not a diagnosis', async () => {
    expectOneLine(await runCli(['doctor', `${origin}/not-json`]), /not-json\/doctor did not answer with JSON\n$/);
    expectOneLine(await runCli(['doctor', `${origin}/null`]), /null\/doctor answered JSON without findings: not the doctor route\n$/);
  });

  test('a redirect to another origin is refused and not followed', async () => {
    const r = await runCli(['doctor', `${origin}/cross-origin`]);
    expectOneLine(r, new RegExp(`^allocator-stats: ${origin}/cross-origin/doctor redirected to another origin, not followed: http://localhost:${port}/elsewhere/doctor\n$`));
    expect(elsewhereHits).toBe(0);
  });

  test('same-origin redirects are followed a few times, a loop is not', async () => {
    const r = await runCli(['doctor', `${origin}/same-origin`]);
    expect(r.code).toBe(0);
    expect(r.stdout.split('\n')[0]).toBe(`allocator-stats doctor: ${origin}/hostile/doctor`);
    expectOneLine(await runCli(['doctor', `${origin}/loop`]), /loop\/doctor redirected more than 3 times\n$/);
  });
});
