// The endpoint under attack, on real servers on 127.0.0.1 and in real headless Chromium:
// DNS rebinding (Host), cross-site requests (CSRF), script injection through environment
// strings, rewritten URLs behind express, slow clients (slowloris) and scrape storms.
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { chromium, type Browser } from 'playwright-core';
import { createDiagnosticHandler, serveDiagnostics, type DiagnosticServer } from '../../src';
import { REQUEST_TIMEOUT_MS } from '../../src/diagnostics/server';
import { rawHttp, testIf } from '../helpers';

const CHROMIUM = '/usr/bin/chromium';
const browserTest = testIf(fs.existsSync(CHROMIUM), 'chromium not installed (apt-get install chromium)');
const TOKEN = 'security-token-0123456789';
// Names the browser resolves to 127.0.0.1 and nothing else: every other name fails to resolve,
// so no request leaves the machine.
const RESOLVER = '--host-resolver-rules=MAP rebind.test 127.0.0.1, MAP evil.test 127.0.0.1, MAP * ~NOTFOUND, EXCLUDE 127.0.0.1';

let browser: Browser | null = null;
async function launch(): Promise<Browser> {
  browser ??= await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', RESOLVER],
  });
  return browser;
}
afterAll(async () => {
  await browser?.close();
});

// A raw request, for Host headers fetch() will not send. It asks for Connection: close, so the
// server ends the connection once it has answered.
const raw = (port: number, request: string): Promise<string> => rawHttp(port, request);
const status = (response: string): number => Number(response.split(' ')[1]);
const body = (response: string): { code?: string } => JSON.parse(response.slice(response.indexOf('\r\n\r\n') + 4));

async function trims(server: DiagnosticServer): Promise<number> {
  return ((await (await fetch(server.url)).json()) as { trims: { trims: number } }).trims.trims;
}

describe('Host header (DNS rebinding)', () => {
  let server: DiagnosticServer;
  beforeAll(async () => {
    server = await serveDiagnostics({ allowTrim: 'unauthenticated', minIntervalMs: 0 });
  });
  afterAll(() => server.close());

  test('a foreign Host gets 421 on every route, trims included; the server\'s own address and localhost pass', async () => {
    const before = await trims(server);
    for (const host of [`rebind.test:${server.port}`, 'rebind.test', `127.0.0.1.nip.io:${server.port}`, `localhost.evil.test:${server.port}`, '[::2]', 'a b', '']) {
      for (const [method, path] of [['GET', '/debug/memory/'], ['GET', '/debug/memory/metrics'], ['GET', '/debug/memory/dashboard'], ['POST', '/debug/memory/trim']]) {
        const out = await raw(server.port, `${method} ${path} HTTP/1.1\r\nHost: ${host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`);
        expect([host, path, status(out)]).toEqual([host, path, 421]);
        expect(body(out).code).toBe('ERR_HOST_NOT_ALLOWED');
      }
    }
    // HTTP/1.0 without any Host header.
    expect(status(await raw(server.port, 'GET /debug/memory/ HTTP/1.0\r\n\r\n'))).toBe(421);
    expect(await trims(server)).toBe(before);
    for (const host of [`127.0.0.1:${server.port}`, '127.0.0.1', `localhost:${server.port}`, `LOCALHOST:${server.port}`]) {
      const out = await raw(server.port, `GET /debug/memory/metrics HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
      expect([host, status(out)]).toEqual([host, 200]);
    }
    const trimmed = await raw(server.port, `POST /debug/memory/trim HTTP/1.1\r\nHost: localhost:${server.port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`);
    expect(status(trimmed)).toBe(200);
    expect(await trims(server)).toBe(before + 1);
  });

  test('a port in Host must be the port the connection reached; a Host without one is judged by its name', async () => {
    const other = server.port === 1 ? 2 : server.port - 1;
    for (const host of [`127.0.0.1:${other}`, `localhost:${other}`, 'localhost:1', `127.0.0.1:${server.port + 65536}`, '127.0.0.1:99999', '127.0.0.1:0', `127.0.0.1:0${server.port}`]) {
      const out = await raw(server.port, `GET /debug/memory/metrics HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
      expect([host, status(out)]).toEqual([host, 421]);
      expect(body(out).code).toBe('ERR_HOST_NOT_ALLOWED');
    }
    // What clients send for port 80, or for 443 through a proxy that terminates TLS.
    for (const host of ['127.0.0.1', 'localhost']) {
      const out = await raw(server.port, `GET /debug/memory/metrics HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
      expect([host, status(out)]).toEqual([host, 200]);
    }
    // Mounted on an application's own server the port is that server's.
    const app = http.createServer(createDiagnosticHandler({ monitor: false }));
    await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve));
    const port = (app.address() as AddressInfo).port;
    try {
      const at = (host: string): Promise<number> => raw(port, `GET /debug/memory/metrics HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`).then(status);
      expect(await at(`127.0.0.1:${port}`)).toBe(200);
      expect(await at(`localhost:${port}`)).toBe(200);
      expect(await at(`127.0.0.1:${server.port}`)).toBe(421);
    } finally {
      app.close();
      app.closeAllConnections();
    }
  });

  test('more than one Host header gets 400 on every route, whichever comes first (RFC 9112 §3.2)', async () => {
    const before = await trims(server);
    const own = `127.0.0.1:${server.port}`;
    for (const [first, second] of [[own, own], [own, 'rebind.test'], ['rebind.test', own], [own, '']]) {
      for (const [method, path] of [['GET', '/debug/memory/'], ['GET', '/debug/memory/metrics'], ['POST', '/debug/memory/trim']]) {
        const out = await raw(server.port, `${method} ${path} HTTP/1.1\r\nHost: ${first}\r\nContent-Length: 0\r\nhost: ${second}\r\nConnection: close\r\n\r\n`);
        expect([first, second, path, status(out)]).toEqual([first, second, path, 400]);
        expect(body(out)).toEqual({ error: 'more than one Host header', code: 'ERR_BAD_REQUEST' });
      }
    }
    expect(await trims(server)).toBe(before);
  });

  test('a trailing dot is another name: localhost. and 127.0.0.1. are refused', async () => {
    for (const host of ['localhost.', `localhost.:${server.port}`, '127.0.0.1.', `127.0.0.1.:${server.port}`]) {
      const out = await raw(server.port, `GET /debug/memory/metrics HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
      expect([host, status(out)]).toEqual([host, 421]);
      expect(body(out).code).toBe('ERR_HOST_NOT_ALLOWED');
    }
  });

  test('allowedHosts admits the names listed, with or without a port, and no others', async () => {
    const named = await serveDiagnostics({ allowedHosts: ['Memory.Internal', `proxy.internal:8443`] });
    try {
      const at = (host: string): Promise<number> =>
        raw(named.port, `GET /debug/memory/metrics HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`).then(status);
      expect(await at('memory.internal')).toBe(200);
      expect(await at(`memory.internal:${named.port}`)).toBe(200);
      expect(await at('proxy.internal:8443')).toBe(200);
      expect(await at('proxy.internal:8444')).toBe(421);
      expect(await at('proxy.internal')).toBe(421);
      expect(await at('other.internal')).toBe(421);
    } finally {
      await named.close();
    }
  });

  test('a server bound to ::1 answers [::1] and localhost, and a name it was bound by', async () => {
    const v6 = await serveDiagnostics({ host: '::1' });
    try {
      expect(v6.url).toBe(`http://[::1]:${v6.port}/debug/memory/`);
      expect((await fetch(`${v6.url}metrics`)).status).toBe(200);
      const get = (host: string): Promise<number> =>
        new Promise((resolve, reject) => {
          const socket = net.connect(v6.port, '::1', () => socket.write(`GET /debug/memory/ HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`));
          let out = '';
          socket.on('data', (d) => (out += d));
          socket.on('end', () => resolve(status(out)));
          socket.on('error', reject);
        });
      expect(await get(`localhost:${v6.port}`)).toBe(200);
      expect(await get(`127.0.0.1:${v6.port}`)).toBe(421);
      expect(await get(`rebind.test:${v6.port}`)).toBe(421);
    } finally {
      await v6.close();
    }
    const byName = await serveDiagnostics({ host: 'localhost' });
    try {
      expect(status(await raw(byName.port, `GET /debug/memory/ HTTP/1.1\r\nHost: localhost:${byName.port}\r\nConnection: close\r\n\r\n`))).toBe(200);
    } finally {
      await byName.close();
    }
  });

  browserTest('a page on a rebound name reads nothing and cannot trim, though it is same-origin', async () => {
    const before = await trims(server);
    const context = await (await launch()).newContext();
    try {
      const page = await context.newPage();
      // The state after a rebinding: the page's origin is rebind.test:<port>, which now resolves
      // to this server, so its requests are same-origin and carry Host: rebind.test:<port>.
      const landing = await page.goto(`http://rebind.test:${server.port}/debug/memory/dashboard`);
      expect(landing!.status()).toBe(421);
      const seen = await page.evaluate(async () => {
        const out: Array<[string, number, string]> = [];
        for (const [method, path] of [['GET', '/debug/memory/'], ['GET', '/debug/memory/metrics'], ['POST', '/debug/memory/trim']]) {
          const r = await fetch(path, { method });
          out.push([path, r.status, await r.text()]);
        }
        return out;
      });
      for (const [path, code, text] of seen) {
        expect([path, code, JSON.parse(text).code]).toEqual([path, 421, 'ERR_HOST_NOT_ALLOWED']);
        expect(text).not.toContain('LD_PRELOAD');
      }
      expect(await trims(server)).toBe(before);
    } finally {
      await context.close();
    }
  });

  browserTest('the same page passes once its name is in allowedHosts (the check is what refuses it)', async () => {
    const named = await serveDiagnostics({ allowTrim: 'unauthenticated', allowedHosts: ['rebind.test'] });
    const context = await (await launch()).newContext();
    try {
      const page = await context.newPage();
      const landing = await page.goto(`http://rebind.test:${named.port}/debug/memory/dashboard`);
      expect(landing!.status()).toBe(200);
      const code = await page.evaluate(async () => (await fetch('/debug/memory/trim', { method: 'POST' })).status);
      expect(code).toBe(200);
    } finally {
      await context.close();
      await named.close();
    }
  });
});

describe('cross-site requests from a real browser (CSRF)', () => {
  let server: DiagnosticServer;
  let attacker: http.Server;
  let attackerPort: number;
  beforeAll(async () => {
    server = await serveDiagnostics({ allowTrim: 'unauthenticated', minIntervalMs: 0 });
    // The attacker's site: a form that posts to the endpoint, submitted on load, and a fetch.
    attacker = http.createServer((_req, res) => {
      res.setHeader('Content-Type', 'text/html');
      res.end(
        `<form id="f" method="POST" action="${server.url}trim"><input name="x" value="1"></form>` +
          `<script>fetch(${JSON.stringify(`${server.url}trim`)}, { method: 'POST', mode: 'no-cors' }).finally(() => document.getElementById('f').submit());</script>`,
      );
    });
    await new Promise<void>((resolve) => attacker.listen(0, '127.0.0.1', resolve));
    attackerPort = (attacker.address() as AddressInfo).port;
  });
  afterAll(async () => {
    attacker.close();
    await server.close();
  });

  browserTest('a form post and a no-cors fetch from another site are refused with 403 and trim nothing', async () => {
    const before = await trims(server);
    const context = await (await launch()).newContext();
    try {
      const page = await context.newPage();
      const statuses: number[] = [];
      page.on('response', (r) => {
        if (r.url() === `${server.url}trim`) statuses.push(r.status());
      });
      const navigated = page.waitForURL(`${server.url}trim`);
      await page.goto(`http://evil.test:${attackerPort}/`);
      await navigated;
      await page.waitForLoadState('load');
      expect(statuses).toEqual([403, 403]);
      expect(await page.content()).toContain('ERR_CROSS_ORIGIN');
      expect(await trims(server)).toBe(before);
    } finally {
      await context.close();
    }
  });
});

describe('script injection through environment strings (XSS)', () => {
  const NAME = 'MIMALLOC_SECURITY_TEST';
  const PAYLOAD = `</script><script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">"'&`;
  let server: DiagnosticServer;
  beforeAll(async () => {
    process.env[NAME] = PAYLOAD;
    server = await serveDiagnostics({ minIntervalMs: 200 });
  });
  afterAll(async () => {
    delete process.env[NAME];
    await server.close();
  });

  browserTest('an allocator variable holding markup is shown as text and never runs', async () => {
    const context = await (await launch()).newContext();
    try {
      const page = await context.newPage();
      const problems: string[] = [];
      page.on('pageerror', (e) => problems.push(e.message));
      page.on('dialog', (d) => problems.push(`dialog ${d.message()}`));
      await page.goto(`${server.url}dashboard`);
      await page.locator('#configTable', { hasText: NAME }).waitFor();
      expect(await page.locator('#configTable').textContent()).toContain(PAYLOAD);
      expect(await page.locator('#configTable img, #configTable script').count()).toBe(0);
      expect(await page.evaluate(() => (globalThis as { __pwned?: number }).__pwned)).toBeUndefined();
      expect(problems).toEqual([]);
      // The JSON carries it escaped, as JSON.
      const j = (await (await fetch(server.url)).json()) as { configuration: { env: Record<string, string | null> } };
      expect(j.configuration.env[NAME]).toBe(PAYLOAD);
    } finally {
      await context.close();
    }
  });
});

function listen(server: http.Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)));
}

describe('express with a middleware that rewrites req.url', () => {
  test('after "/v1" is stripped the prefix still applies: /v1/ is the app\'s, /v1/debug/memory/ is ours', async () => {
    const app = express();
    app.use((req, _res, next) => {
      if (req.url.startsWith('/v1/')) req.url = req.url.slice(3);
      next();
    });
    app.use(createDiagnosticHandler({ allowTrim: 'unauthenticated' }));
    app.use((_req, res) => {
      res.status(404).send('app 404');
    });
    const server = http.createServer(app);
    const base = `http://127.0.0.1:${await listen(server)}`;
    const count = async (): Promise<number> => ((await (await fetch(`${base}/v1/debug/memory/`)).json()) as { trims: { trims: number } }).trims.trims;
    try {
      const before = await count();
      for (const [method, path] of [['GET', '/v1/'], ['GET', '/v1/metrics'], ['POST', '/v1/trim'], ['GET', '/v1/dashboard']]) {
        const r = await fetch(base + path, { method });
        expect([path, r.status, await r.text()]).toEqual([path, 404, 'app 404']);
      }
      expect(await count()).toBe(before);
      expect((await fetch(`${base}/v1/debug/memory/metrics`)).status).toBe(200);
      expect((await fetch(`${base}/v1/debug/memory/trim`, { method: 'POST' })).status).toBe(200);
    } finally {
      server.close();
    }
  });

  test('inside a router mounted at a path, routes are relative to that mount', async () => {
    const app = express();
    const router = express.Router();
    router.use(createDiagnosticHandler());
    app.use('/ops', router);
    const server = http.createServer(app);
    const base = `http://127.0.0.1:${await listen(server)}`;
    try {
      expect((await fetch(`${base}/ops/metrics`)).status).toBe(200);
      expect((await fetch(`${base}/metrics`)).status).toBe(404);
    } finally {
      server.close();
    }
  });
});

describe('slow clients (slowloris)', () => {
  // Node's own defaults close such sockets only after 30 s or more: the limit below fails that.
  const HANG_LIMIT_MS = 25_000;

  test('requestTimeoutMs: sockets that trickle headers, send none, or trickle a body get 408 and are closed; the server keeps serving', async () => {
    const server = await serveDiagnostics({ requestTimeoutMs: 1000, allowTrim: 'unauthenticated' });
    const sockets: net.Socket[] = [];
    try {
      const ended = (opening: string | null, trickle: string): Promise<string> =>
        new Promise((resolve) => {
          const socket = net.connect(server.port, '127.0.0.1');
          sockets.push(socket);
          let out = '';
          let writes = 0;
          let timer: NodeJS.Timeout | undefined;
          socket.on('connect', () => {
            if (opening !== null) socket.write(opening);
            timer = setInterval(() => {
              // Bounded: 125 writes of a few bytes, 25 s at most.
              if (opening !== null && writes++ < 125 && socket.writable) socket.write(trickle);
            }, 200);
          });
          socket.on('data', (d) => (out += d));
          socket.on('error', () => undefined);
          socket.on('close', () => {
            clearInterval(timer);
            resolve(out);
          });
        });
      const head = `GET /debug/memory/ HTTP/1.1\r\nHost: 127.0.0.1:${server.port}\r\n`;
      const post = `POST /debug/memory/trim HTTP/1.1\r\nHost: 127.0.0.1:${server.port}\r\nContent-Length: 1000\r\n\r\n`;
      const runs = [
        ...Array.from({ length: 10 }, () => ended(head, 'X-Slow: 1\r\n')),
        ...Array.from({ length: 5 }, () => ended(null, '')),
        ...Array.from({ length: 5 }, () => ended(post, 'x')),
      ];
      // While they hang on, other clients are served.
      expect((await fetch(`${server.url}metrics`)).status).toBe(200);
      let limit: NodeJS.Timeout | undefined;
      const outs = await Promise.race([
        Promise.all(runs),
        new Promise<null>((resolve) => {
          limit = setTimeout(() => resolve(null), HANG_LIMIT_MS);
        }),
      ]);
      clearTimeout(limit);
      expect(outs).not.toBeNull();
      for (const out of outs!) expect(out.split('\r\n')[0]).toBe('HTTP/1.1 408 Request Timeout');
      expect((await fetch(`${server.url}metrics`)).status).toBe(200);
    } finally {
      for (const s of sockets) s.destroy();
      await server.close();
    }
  }, 40_000);

  test('by default requests time out after 10 s, checked at least every second', async () => {
    const server = await serveDiagnostics();
    try {
      expect(REQUEST_TIMEOUT_MS).toBe(10_000);
      expect(server.server.requestTimeout).toBe(10_000);
      expect(server.server.headersTimeout).toBe(10_000);
      expect((server.server as http.Server & { connectionsCheckingInterval: number }).connectionsCheckingInterval).toBeLessThanOrEqual(1000);
    } finally {
      await server.close();
    }
  });

  test('a bad requestTimeoutMs is refused with a code', async () => {
    await expect(serveDiagnostics({ requestTimeoutMs: 0 })).rejects.toMatchObject({ name: 'RangeError', code: 'ERR_OUT_OF_RANGE' });
    await expect(serveDiagnostics({ requestTimeoutMs: '5s' as never })).rejects.toMatchObject({ name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' });
  });
});

describe('scrape storm', () => {
  test('500 concurrent scrapes all succeed, share samples, and the server stays responsive', async () => {
    const server = await serveDiagnostics({ minIntervalMs: 60_000 });
    try {
      const bodies = await Promise.all(
        Array.from({ length: 500 }, (_v, i) => fetch(i % 2 ? `${server.url}metrics` : server.url).then(async (r) => [r.status, await r.text()] as const)),
      );
      expect(bodies.filter(([s]) => s !== 200)).toEqual([]);
      const times = new Set(bodies.filter((_b, i) => i % 2 === 0).map(([, t]) => JSON.parse(t).stats.time));
      expect(times.size).toBe(1);
      expect((await fetch(`${server.url}metrics`)).status).toBe(200);
    } finally {
      await server.close();
    }
  });
});

describe('token options', () => {
  test('a token without allowTrim: true is a configuration mistake and throws', () => {
    for (const allowTrim of [undefined, false, 'unauthenticated'] as const) {
      expect(() => createDiagnosticHandler({ token: TOKEN, allowTrim })).toThrow(
        expect.objectContaining({ name: 'TypeError', code: 'ERR_INVALID_ARG_VALUE', message: expect.stringMatching(/^Expected true for options\.allowTrim/) }),
      );
    }
    expect(() => createDiagnosticHandler({ token: TOKEN, allowTrim: true })).not.toThrow();
  });

  test('a token outside [A-Za-z0-9-._~+/] is refused, "=" included', () => {
    for (const token of [`${TOKEN}=`, `${TOKEN}==`, `abc=${TOKEN}`, `${TOKEN} `, `${TOKEN}é`, `${TOKEN}\n`]) {
      expect(() => createDiagnosticHandler({ token, allowTrim: true })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
    }
  });

  test('bad allowedHosts are refused with codes', () => {
    expect(() => createDiagnosticHandler({ allowedHosts: 'a.test' as never })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    expect(() => createDiagnosticHandler({ allowedHosts: [1 as never] })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    for (const h of ['', 'a b', 'http://a.test', 'a.test/x', '*', 'a.test:65536', 'a.test:99999', 'a.test:0']) {
      expect(() => createDiagnosticHandler({ allowedHosts: [h] })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
    }
  });
});
