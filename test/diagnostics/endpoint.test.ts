// The diagnostic endpoint on real servers on 127.0.0.1: node:http, express and fastify.
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import express from 'express';
import Fastify from 'fastify';
import * as pkg from '../../src';
import { allocatorStatsSync, createDiagnosticHandler, serveDiagnostics, trim, type DiagnosticServer } from '../../src';
import { ALLOCATOR_LIBRARIES, findLibrary, MiB, rawHttp, ROOT, runChild, runFixture, testIf } from '../helpers';

const TOKEN = 'test-token-0123456789abcdef';

async function get(url: string, init: RequestInit = {}): Promise<{ status: number; headers: Headers; text: string }> {
  const r = await fetch(url, init);
  return { status: r.status, headers: r.headers, text: await r.text() };
}

// Raw requests, for what fetch() refuses to send (dot segments, encoded slashes, odd methods):
// raw() half-closes after the request, rawOpen() asks for Connection: close and waits.
const raw = (port: number, request: string): Promise<string> => rawHttp(port, request, true);
const rawOpen = (port: number, request: string): Promise<string> => rawHttp(port, request);

describe('serveDiagnostics (node:http)', () => {
  let server: DiagnosticServer;
  beforeAll(async () => {
    server = await serveDiagnostics({ port: 0 });
  });
  afterAll(() => server.close());

  test('listens on 127.0.0.1 and reports its url', () => {
    expect(server.host).toBe('127.0.0.1');
    expect(server.port).toBeGreaterThan(0);
    expect(server.url).toBe(`http://127.0.0.1:${server.port}/debug/memory/`);
  });

  test('GET / returns MemoryStats, trim totals and the allocator configuration, consistent with a sample', async () => {
    const r = await get(server.url);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(r.headers.get('cache-control')).toBe('no-store');
    expect(r.headers.get('access-control-allow-origin')).toBeNull();
    const j = JSON.parse(r.text);
    const s = allocatorStatsSync();
    expect(j.stats.allocator.name).toBe(s.allocator.name);
    expect(j.stats.heldBack).toBe(j.stats.resident - j.stats.allocated);
    expect(Math.abs(j.stats.process.rss - s.process.rss!)).toBeLessThan(Math.max(128 * MiB, s.process.rss! * 0.5));
    expect(j.trims).toEqual({ trims: expect.any(Number), releasedBytes: expect.any(Number), durationMs: expect.any(Number) });
    expect(j).toHaveProperty('autoTrim');
    expect(j.allocator.name).toBe(s.allocator.name);
    expect(j.configuration.env).toHaveProperty('MALLOC_ARENA_MAX');
    expect(j.configuration.env).toHaveProperty('GLIBC_TUNABLES');
    expect(j.configuration.env).toHaveProperty('MALLOC_CONF');
    expect(j.configuration.env).toHaveProperty('LD_PRELOAD');
    // Only allocator variables are shown, never the rest of the environment.
    expect(j.configuration.env).not.toHaveProperty('PATH');
    expect(j.endpoint.trim).toBe('off');
  });

  test('a burst of requests shares one sample', async () => {
    const patient = await serveDiagnostics({ minIntervalMs: 60_000 });
    try {
      // A trim leaves no cached sample: the burst must join the one sample the first request starts.
      const trimmed = await trim();
      const bodies = await Promise.all(Array.from({ length: 20 }, () => get(patient.url).then((r) => JSON.parse(r.text))));
      const samples = new Set(bodies.map((b) => `${b.stats.time}/${b.stats.costMs}`));
      expect(samples.size).toBe(1);
      // Not a sample cached from before the trim.
      expect(bodies[0].stats.time).toBeGreaterThanOrEqual(trimmed.time);
    } finally {
      await patient.close();
    }
  });

  test('GET /metrics is Prometheus text 0.0.4', async () => {
    const r = await get(`${server.url}metrics`);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
    expect(r.text).toMatch(/^allocator_held_back_bytes\{allocator="glibc"\} \d+$/m);
  });

  test('GET /dashboard and GET / with Accept: text/html return the page with a strict CSP', async () => {
    for (const [path, accept] of [
      ['dashboard', '*/*'],
      ['', 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8'],
    ]) {
      const r = await get(server.url + path, { headers: { accept } });
      expect(r.status).toBe(200);
      expect(r.headers.get('content-type')).toBe('text/html; charset=utf-8');
      expect(r.text).toContain('<canvas id="chart"');
      const csp = r.headers.get('content-security-policy')!;
      expect(csp).toContain("default-src 'none'");
      expect(csp).toContain("connect-src 'self'");
      expect(csp).not.toContain('unsafe-inline');
      // Nothing outside the page is referenced.
      expect(r.text).not.toMatch(/(src|href)="(https?:)?\/\//);
    }
  });

  test('HEAD answers with headers and no body', async () => {
    const r = await get(`${server.url}metrics`, { method: 'HEAD' });
    expect(r.status).toBe(200);
    expect(r.text).toBe('');
    expect(Number(r.headers.get('content-length'))).toBeGreaterThan(100);
  });

  test('POST /trim is refused with 403 when trimming is off', async () => {
    const r = await get(`${server.url}trim`, { method: 'POST' });
    expect(r.status).toBe(403);
    expect(JSON.parse(r.text)).toEqual({ error: expect.any(String), code: 'ERR_TRIM_DISABLED' });
  });

  test('wrong methods get 405 with Allow', async () => {
    for (const [path, method, allow] of [
      ['', 'POST', 'GET, HEAD'],
      ['metrics', 'DELETE', 'GET, HEAD'],
      ['dashboard', 'PUT', 'GET, HEAD'],
      ['trim', 'GET', 'POST'],
      ['metrics', 'OPTIONS', 'GET, HEAD'],
    ]) {
      const r = await get(server.url + path, { method });
      expect([path, r.status, r.headers.get('allow')]).toEqual([path, 405, allow]);
      expect(r.headers.get('access-control-allow-origin')).toBeNull();
      expect(JSON.parse(r.text).code).toBe('ERR_METHOD_NOT_ALLOWED');
    }
  });

  test('odd and unknown paths get 404, oversized URLs 414, and the server keeps serving', async () => {
    const paths = [
      '/debug/memory/..%2f',
      '/debug/memory/%2e%2e/%2e%2e/etc/passwd',
      '/debug/memory/../memory/metrics',
      '/debug/memory//metrics',
      '/debug/memory/metrics/',
      '/debug/memory/%6detrics',
      '/debug/memoryx',
      '/',
      '/debug',
      '//debug/memory',
    ];
    for (const p of paths) {
      const out = await raw(server.port, `GET ${p} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`);
      expect([p, out.split('\r\n')[0]]).toEqual([p, 'HTTP/1.1 404 Not Found']);
      expect(out).toContain('"code":"ERR_NOT_FOUND"');
      expect(out).not.toMatch(/at .*\.(js|ts):\d+/);
    }
    const long = await get(`${server.url}?q=${'x'.repeat(10 * 1024)}`);
    expect(long.status).toBe(414);
    expect(JSON.parse(long.text).code).toBe('ERR_URL_TOO_LONG');
    const longPath = await get(`${server.url}metrics/${'a'.repeat(10 * 1024)}`);
    expect(longPath.status).toBe(414);
    expect((await get(`${server.url}metrics`)).status).toBe(200);
  });

  test('a request with an oversized body gets 413 without the body being read', async () => {
    const out = await raw(server.port, `GET /debug/memory/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100000000\r\n\r\nabc`);
    expect(out.split('\r\n')[0]).toBe('HTTP/1.1 413 Payload Too Large');
    expect(out.toLowerCase()).toContain('connection: close');
  });

  test('a chunked body over the limit gets 413 on the read-only routes too, counted as it arrives', async () => {
    const chunks = (n: number, size: number): string => `${`${size.toString(16)}\r\n${'x'.repeat(size)}\r\n`.repeat(n)}0\r\n\r\n`;
    for (const path of ['/debug/memory/', '/debug/memory/metrics', '/debug/memory/dashboard', '/debug/memory/doctor']) {
      const out = await raw(server.port, `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${server.port}\r\nTransfer-Encoding: chunked\r\n\r\n${chunks(5, 1000)}`);
      expect([path, out.split('\r\n')[0]]).toEqual([path, 'HTTP/1.1 413 Payload Too Large']);
      expect(out.toLowerCase()).toContain('connection: close');
      expect(JSON.parse(out.slice(out.indexOf('\r\n\r\n') + 4)).code).toBe('ERR_BODY_TOO_LARGE');
    }
    // A small chunked body is read and the route answers as usual. The client keeps its side
    // open: node:http drops an answer still pending when a client half-closes after a body.
    const small = await rawOpen(server.port, `GET /debug/memory/metrics HTTP/1.1\r\nHost: 127.0.0.1:${server.port}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n${chunks(1, 100)}`);
    expect(small.split('\r\n')[0]).toBe('HTTP/1.1 200 OK');
  });
});

describe('POST /trim with a token', () => {
  let server: DiagnosticServer;
  beforeAll(async () => {
    server = await serveDiagnostics({ allowTrim: true, token: TOKEN, prefix: '/ops/mem', minIntervalMs: 0 });
  });
  afterAll(() => server.close());

  test('401 with WWW-Authenticate without a token or with a wrong one', async () => {
    const none = await get(`${server.url}trim`, { method: 'POST' });
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toMatch(/^Bearer realm=/);
    expect(JSON.parse(none.text).code).toBe('ERR_UNAUTHORIZED');
    for (const wrong of [`${TOKEN}x`, TOKEN.slice(0, -1), 'a', TOKEN.toUpperCase()]) {
      const r = await get(`${server.url}trim`, { method: 'POST', headers: { authorization: `Bearer ${wrong}` } });
      expect(r.status).toBe(401);
      expect(r.headers.get('www-authenticate')).toContain('invalid_token');
    }
    const basic = await get(`${server.url}trim`, { method: 'POST', headers: { authorization: `Basic ${TOKEN}` } });
    expect(basic.status).toBe(401);
  });

  test('the right token trims and returns a TrimResult that lowered held-back memory', async () => {
    // Leave freed, written pages in glibc's main arena so the trim has something to return.
    let held: Buffer[] | null = [];
    for (let i = 0; i < 4096; i++) held.push(Buffer.alloc(8192, 1));
    held = null;
    (globalThis as { gc?: () => void }).gc?.();
    const r = await get(`${server.url}trim`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } });
    expect(r.status).toBe(200);
    const t = JSON.parse(r.text);
    expect(t.supported).toBe(true);
    expect(t.allocator.name).toBe('glibc');
    expect(t.releasedBytes).toBe(Math.max(0, t.rssBefore - t.rssAfter));
    expect(t.heldBackAfter).toBeLessThanOrEqual(t.heldBackBefore);
    const after = JSON.parse((await get(server.url)).text);
    expect(after.trims.trims).toBeGreaterThanOrEqual(1);
    expect(after.endpoint.trim).toBe('token');
  });

  test('a cross-site request is refused even with the token', async () => {
    const r = await get(`${server.url}trim`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, origin: 'http://evil.example' },
    });
    expect(r.status).toBe(403);
    expect(JSON.parse(r.text).code).toBe('ERR_CROSS_ORIGIN');
  });

  test('a body over the limit gets 413', async () => {
    const r = await get(`${server.url}trim`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}` },
      body: 'x'.repeat(4096),
    });
    expect(r.status).toBe(413);
    // Chunked: no length to check up front, so the body is counted while it arrives.
    const chunk = 'y'.repeat(2000);
    const out = await raw(
      server.port,
      `POST /ops/mem/trim HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${TOKEN}\r\nTransfer-Encoding: chunked\r\n\r\n` +
        `${chunk.length.toString(16)}\r\n${chunk}\r\n0\r\n\r\n`,
    );
    expect(out.split('\r\n')[0]).toBe('HTTP/1.1 413 Payload Too Large');
  });

  test('prefix "/" serves the routes at the root', async () => {
    const root = await serveDiagnostics({ prefix: '/' });
    try {
      expect(root.url).toBe(`http://127.0.0.1:${root.port}/`);
      expect((await get(`${root.url}metrics`)).text).toContain('allocator_resident_bytes');
      expect(JSON.parse((await get(root.url)).text).stats.allocator.name).toBe('glibc');
      expect((await get(`${root.url}debug/memory/metrics`)).status).toBe(404);
    } finally {
      await root.close();
    }
  });

  test('the prefix is honoured', async () => {
    expect(server.url).toMatch(/\/ops\/mem\/$/);
    expect((await get(server.url.replace('/ops/mem/', '/debug/memory/'))).status).toBe(404);
  });
});

describe('options', () => {
  test('bad options throw with codes', () => {
    expect(() => createDiagnosticHandler({ allowTrim: true })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
    expect(() => createDiagnosticHandler({ allowTrim: true, token: 'short' })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
    expect(() => createDiagnosticHandler({ allowTrim: 'yes' as never })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    expect(() => createDiagnosticHandler({ prefix: '/a/../b' })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    expect(() => createDiagnosticHandler({ prefix: '/a%2f' })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    expect(() => createDiagnosticHandler({ minIntervalMs: -1 })).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    expect(() => createDiagnosticHandler({ metricsPrefix: 'bad-prefix' })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    expect(() => createDiagnosticHandler({ nope: 1 } as never)).toThrow(expect.objectContaining({ code: 'ERR_UNKNOWN_OPTION' }));
  });

  test('serveDiagnostics rejects bad ports', async () => {
    await expect(serveDiagnostics({ port: 70000 })).rejects.toMatchObject({ code: 'ERR_OUT_OF_RANGE' });
  });

  test('a server bound to 0.0.0.0 or :: reports a loopback url that answers', async () => {
    for (const [host, shown] of [['0.0.0.0', '127.0.0.1'], ['::', '[::1]']]) {
      const s = await serveDiagnostics({ host, monitor: false });
      try {
        expect(s.host).toBe(host);
        expect(s.url).toBe(`http://${shown}:${s.port}/debug/memory/`);
        for (const route of ['', 'metrics', 'dashboard']) expect([host, route, (await get(`${s.url}${route}`)).status]).toEqual([host, route, 200]);
      } finally {
        await s.close();
      }
    }
  });

  test('a serveDiagnostics that cannot listen stops the monitor it started, and only that one', async () => {
    // A fresh process: this one already runs the monitor of the servers above.
    const { value } = await runFixture<Record<string, unknown>>('endpoint-listen-fails.js', [], { timeoutMs: 30000 });
    expect(value).toEqual({
      started: { code: 'EADDRINUSE', running: false },
      startedWithOptions: { code: 'EADDRINUSE', running: false },
      createMonitorAfter: true,
      foundRunning: { code: 'EADDRINUSE', same: true, running: true },
      passedIn: { code: 'EADDRINUSE', running: true },
    });
  });

  test('the server does not keep the process alive', async () => {
    // The child starts a server, reports, and must then exit on its own.
    const { value } = await runChild<{ port: number }>(
      `const s = await require(LIB).serveDiagnostics(); const r = await fetch(s.url + 'metrics'); await r.text(); report({ port: s.port });`,
      { timeoutMs: 30000 },
    );
    expect(value.port).toBeGreaterThan(0);
  });
});

function listen(server: http.Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)));
}

describe('node:http with the handler in front of an application', () => {
  test('paths it does not own go to next()', async () => {
    const handler = createDiagnosticHandler();
    const server = http.createServer((req, res) => handler(req, res, () => res.end('app')));
    const port = await listen(server);
    try {
      expect((await get(`http://127.0.0.1:${port}/hello`)).text).toBe('app');
      expect((await get(`http://127.0.0.1:${port}/debug/memory/metrics`)).text).toContain('allocator_resident_bytes');
      expect((await get(`http://127.0.0.1:${port}/debug/memory`)).status).toBe(200);
    } finally {
      server.close();
    }
  });
});

describe('express', () => {
  test('app.use(handler) serves under the prefix and leaves other paths to the app', async () => {
    const app = express();
    app.use(createDiagnosticHandler({ allowTrim: true, token: TOKEN }));
    app.get('/hello', (_req, res) => {
      res.send('hello');
    });
    const server = http.createServer(app);
    const port = await listen(server);
    const base = `http://127.0.0.1:${port}`;
    try {
      expect((await get(`${base}/hello`)).text).toBe('hello');
      expect(JSON.parse((await get(`${base}/debug/memory/`)).text).stats.allocator.name).toBe('glibc');
      expect((await get(`${base}/debug/memory/metrics`)).text).toContain('allocator_allocated_bytes');
      expect((await get(`${base}/debug/memory/trim`, { method: 'POST' })).status).toBe(401);
      expect((await get(`${base}/debug/memory/trim`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } })).status).toBe(200);
      expect((await get(`${base}/debug/memory/metrics`, { method: 'PATCH' })).status).toBe(405);
      expect((await get(`${base}/debug/memory/..%2f`)).status).toBe(404);
      expect((await get(`${base}/debug/memory/?q=${'x'.repeat(10 * 1024)}`)).status).toBe(414);
      expect((await get(`${base}/hello`)).text).toBe('hello');
    } finally {
      server.close();
    }
  });

  test('app.use(mount, handler): routes are relative to the mount point', async () => {
    const app = express();
    app.use('/internal/memory', createDiagnosticHandler());
    const server = http.createServer(app);
    const port = await listen(server);
    const base = `http://127.0.0.1:${port}`;
    try {
      expect((await get(`${base}/internal/memory/metrics`)).text).toContain('allocator_resident_bytes');
      expect(JSON.parse((await get(`${base}/internal/memory`)).text).stats.allocator.name).toBe('glibc');
      expect((await get(`${base}/internal/memory/dashboard`)).text).toContain('<canvas');
      expect((await get(`${base}/internal/memory/trim`, { method: 'POST' })).status).toBe(403);
      expect((await get(`${base}/debug/memory/metrics`)).status).toBe(404);
    } finally {
      server.close();
    }
  });
});

describe('fastify', () => {
  test('routes that hijack the reply hand the raw request to the handler', async () => {
    const app = Fastify();
    const diagnostics = createDiagnosticHandler({ allowTrim: 'unauthenticated' });
    const route = { bodyLimit: 1024 };
    const hijacked = (request: { raw: http.IncomingMessage }, reply: { hijack(): void; raw: http.ServerResponse }): void => {
      reply.hijack();
      diagnostics(request.raw, reply.raw);
    };
    app.all('/debug/memory', route, hijacked);
    app.all('/debug/memory/*', route, hijacked);
    app.get('/hello', async () => 'hello');
    await app.listen({ port: 0, host: '127.0.0.1' });
    const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    try {
      expect(JSON.parse((await get(`${base}/debug/memory`)).text).stats.allocator.name).toBe('glibc');
      expect(JSON.parse((await get(`${base}/debug/memory/`)).text).endpoint.trim).toBe('unauthenticated');
      const m = await get(`${base}/debug/memory/metrics`);
      expect(m.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
      expect(m.text).toContain('allocator_resident_bytes');
      const head = await get(`${base}/debug/memory/metrics`, { method: 'HEAD' });
      expect([head.status, head.text]).toEqual([200, '']);
      expect((await get(`${base}/debug/memory/dashboard`)).text).toContain('<canvas');
      const t = await get(`${base}/debug/memory/trim`, { method: 'POST' });
      expect(t.status).toBe(200);
      expect(JSON.parse(t.text).supported).toBe(true);
      expect((await get(`${base}/debug/memory/trim`, { method: 'PUT' })).status).toBe(405);
      expect((await get(`${base}/debug/memory/..%2f`)).status).toBe(404);
      expect((await get(`${base}/debug/memory/?q=${'x'.repeat(10 * 1024)}`)).status).toBe(414);
      expect((await get(`${base}/hello`)).text).toBe('hello');
    } finally {
      await app.close();
    }
  });
});

describe('fastify, as docs/diagnostics.md mounts it', () => {
  // The recipe exactly as printed, with `allocator-stats` resolved to this tree.
  function recipe(): ReturnType<typeof Fastify> {
    const doc = fs.readFileSync(path.join(ROOT, 'docs', 'diagnostics.md'), 'utf8');
    const code = /^fastify \(5\)[\s\S]*?^```js\n([\s\S]*?)^```$/m.exec(doc)?.[1];
    if (!code) throw new Error('no fastify recipe in docs/diagnostics.md');
    const load = (id: string): unknown => (id === 'allocator-stats' ? pkg : require(id));
    return new Function('require', 'process', `${code}\nreturn fastify;`)(load, process) as ReturnType<typeof Fastify>;
  }

  test('every answer is the endpoint\'s own: bodies fastify would parse or refuse get its 413, and its checks come first', async () => {
    const saved = process.env.MEMORY_DEBUG_TOKEN;
    process.env.MEMORY_DEBUG_TOKEN = TOKEN;
    const app = recipe();
    if (saved === undefined) delete process.env.MEMORY_DEBUG_TOKEN;
    else process.env.MEMORY_DEBUG_TOKEN = saved;
    await app.listen({ port: 0, host: '127.0.0.1' });
    const port = (app.server.address() as AddressInfo).port;
    const trimUrl = `http://127.0.0.1:${port}/debug/memory/trim`;
    const auth = { authorization: `Bearer ${TOKEN}` };
    try {
      const cases: Array<[string, RequestInit, number, string]> = [
        ['5000 bytes of JSON', { headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ a: 'x'.repeat(5000) }) }, 413, 'ERR_BODY_TOO_LARGE'],
        ['5000 bytes of text', { headers: { ...auth, 'content-type': 'text/plain' }, body: 'x'.repeat(5000) }, 413, 'ERR_BODY_TOO_LARGE'],
        ['JSON that does not parse, no token', { headers: { 'content-type': 'application/json' }, body: '{bad json' }, 401, 'ERR_UNAUTHORIZED'],
        ['a big body from another site', { headers: { ...auth, 'content-type': 'application/json', origin: 'http://evil.example' }, body: 'x'.repeat(5000) }, 403, 'ERR_CROSS_ORIGIN'],
        ['a big body without the token', { headers: { 'content-type': 'application/json' }, body: 'x'.repeat(5000) }, 401, 'ERR_UNAUTHORIZED'],
      ];
      for (const [what, init, status, code] of cases) {
        const r = await get(trimUrl, { method: 'POST', ...init });
        expect([what, r.status, r.headers.get('cache-control'), JSON.parse(r.text).code]).toEqual([what, status, 'no-store', code]);
      }
      // JSON that does not parse is no concern of an endpoint that reads no body: the trim runs.
      const bad = await get(trimUrl, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: '{bad json' });
      expect([bad.status, bad.headers.get('cache-control'), JSON.parse(bad.text).supported]).toEqual([200, 'no-store', true]);
      // A foreign Host is refused before any body is looked at.
      const foreign = await raw(port, `POST /debug/memory/trim HTTP/1.1\r\nHost: rebind.test:${port}\r\nContent-Type: application/json\r\nContent-Length: 9\r\nConnection: close\r\n\r\n{bad json`);
      expect(foreign.split('\r\n')[0]).toBe('HTTP/1.1 421 Misdirected Request');
      expect((await get(`http://127.0.0.1:${port}/debug/memory/metrics`)).status).toBe(200);
    } finally {
      await app.close();
    }
  });
});

describe('in other processes and threads', () => {
  test('loading the package loads neither prom-client nor @opentelemetry/api', async () => {
    const { value } = await runChild<string[]>(
      `require(LIB); report(Object.keys(require.cache).filter((k) => /prom-client|@opentelemetry/.test(k)));`,
    );
    expect(value).toEqual([]);
  });

  test('serveDiagnostics works in a worker thread', async () => {
    const { value } = await runChild<{ status: number; allocator: string; metrics: boolean }>(
      `const { Worker } = require('node:worker_threads');
       const w = new Worker(\`
         const { parentPort } = require('node:worker_threads');
         require(\${JSON.stringify(LIB)}).serveDiagnostics().then(async (s) => {
           const r = await fetch(s.url);
           const j = await r.json();
           const m = await (await fetch(s.url + 'metrics')).text();
           parentPort.postMessage({ status: r.status, allocator: j.stats.allocator.name, metrics: m.includes('allocator_resident_bytes') });
           await s.close();
         });\`, { eval: true });
       report(await new Promise((resolve, reject) => { w.once('message', resolve); w.once('error', reject); }));`,
      { timeoutMs: 30000 },
    );
    expect(value).toEqual({ status: 200, allocator: 'glibc', metrics: true });
  });

  const jemalloc = findLibrary(ALLOCATOR_LIBRARIES.jemalloc);
  testIf(jemalloc !== null, 'libjemalloc.so.2 not installed')('under jemalloc the configuration shows MALLOC_CONF and opt.*', async () => {
    const { value } = await runChild<{ env: Record<string, string | null>; settings: Record<string, unknown> | null; preload: Array<{ entry: string; loaded: boolean }> }>(
      `const s = await require(LIB).serveDiagnostics();
       const j = await (await fetch(s.url)).json();
       await s.close();
       report({ env: j.configuration.env, settings: j.configuration.settings, preload: j.allocator.preload.entries });`,
      { preload: jemalloc!, env: { MALLOC_CONF: 'background_thread:true,dirty_decay_ms:5000' } },
    );
    expect(value.env.MALLOC_CONF).toBe('background_thread:true,dirty_decay_ms:5000');
    expect(value.env.LD_PRELOAD).toBe(jemalloc);
    expect(value.preload).toEqual([{ entry: jemalloc, loaded: true }]);
    expect(value.settings).not.toBeNull();
    expect(value.settings!['opt.background_thread']).toBe(true);
    expect(value.settings!['opt.dirty_decay_ms']).toBe(5000);
  });
});
