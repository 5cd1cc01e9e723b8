// The live page in headless Chromium: no console errors, no request leaves 127.0.0.1, the chart
// moves, and the trim button works when allowed (and is absent when not). Its script
// type-checks, ships in the package, and a missing file is an error, not a crash.
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { serveDiagnostics, type DiagnosticServer, type ServeDiagnosticsOptions } from '../../src';
import { ROOT, runFixture, testIf } from '../helpers';

const CHROMIUM = '/usr/bin/chromium';
const browserTest = testIf(fs.existsSync(CHROMIUM), 'chromium not installed (apt-get install chromium)');
const TOKEN = 'dashboard-token-0123456789';
const PAGE_SOURCES = path.join(ROOT, 'src', 'diagnostics', 'page');
const PAGE_FILES = ['dashboard.js', 'dashboard.css'];

let browser: Browser | null = null;
async function launch(): Promise<Browser> {
  browser ??= await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  return browser;
}
afterAll(async () => {
  await browser?.close();
});

interface Watched {
  page: Page;
  problems: string[];
  requests: string[];
}

async function open(url: string): Promise<Watched> {
  const context = await (await launch()).newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const problems: string[] = [];
  const requests: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') problems.push(`${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  page.on('request', (r) => requests.push(r.url()));
  await page.goto(url);
  return { page, problems, requests };
}

function local(requests: string[]): void {
  expect(requests.length).toBeGreaterThan(1);
  for (const u of requests) {
    const url = new URL(u);
    expect([u, url.protocol === 'data:' || url.hostname === '127.0.0.1']).toEqual([u, true]);
  }
}

/** The page at `url` once it has shown the allocator. */
async function loaded(url: string): Promise<Watched> {
  const watched = await open(url);
  await watched.page.locator('#allocator', { hasText: /^glibc/ }).waitFor();
  return watched;
}

/** What every page must end with: no console errors, nothing fetched off this machine. */
async function done({ page, problems, requests }: Watched): Promise<void> {
  expect(problems).toEqual([]);
  local(requests);
  await page.context().close();
}

/** A server for the tests of the enclosing describe block, closed after them. */
function serving(options: ServeDiagnosticsOptions): () => DiagnosticServer {
  let server: DiagnosticServer | undefined;
  beforeAll(async () => {
    server = await serveDiagnostics(options);
  });
  afterAll(() => server?.close());
  return () => server!;
}

describe('dashboard', () => {
  const server = serving({ minIntervalMs: 200, allowTrim: true, token: TOKEN });

  browserTest('draws a live chart that changes, shows the allocator, and trims with the typed token', async () => {
    const watched = await loaded(`${server().url}dashboard`);
    const { page } = watched;
    await page.waitForTimeout(600);
    const first = await page.locator('#chart').screenshot();
    // Allocate and free memory in the served process so the split moves, not only the time axis.
    let held: Buffer[] | null = [];
    for (let i = 0; i < 8192; i++) held.push(Buffer.alloc(8192, 1));
    await page.waitForTimeout(1200);
    held = null;
    const second = await page.locator('#chart').screenshot();
    expect(Buffer.compare(first, second)).not.toBe(0);
    await page.screenshot({ path: '/tmp/dashboard-token.png', fullPage: true });

    expect(await page.locator('#rss').textContent()).toMatch(/^\d+(\.\d+)? (MiB|GiB)$/);
    expect(await page.locator('#configTable').textContent()).toContain('detected by');
    // Trim: the button is there, the token field too; without a token nothing is sent.
    await expect(page.locator('#trimButton').isVisible()).resolves.toBe(true);
    await page.fill('#token', TOKEN);
    const response = page.waitForResponse((r) => r.url().endsWith('/trim'));
    await page.click('#trimButton');
    expect((await response).status()).toBe(200);
    await page.locator('#trimResult', { hasText: /^released / }).waitFor();
    await page.locator('#trimTable', { hasText: /trims \(all callers\)\s*[1-9]/ }).waitFor();
    // The token is never part of the page.
    expect(await page.content()).not.toContain(TOKEN.slice(0, 12) + 'x');
    expect((await (await fetch(`${server().url}dashboard`)).text()).includes(TOKEN)).toBe(false);
    await page.screenshot({ path: '/tmp/dashboard-trimmed.png', fullPage: true });
    await done(watched);
  });

  browserTest('GET / with a browser Accept header serves the page, which polls the right URL', async () => {
    // Without the trailing slash the page must still find the JSON route.
    const watched = await loaded(server().url.slice(0, -1));
    expect(watched.requests.some((u) => new URL(u).pathname === '/debug/memory/')).toBe(true);
    await done(watched);
  });
});

describe('dashboard without trimming', () => {
  const server = serving({ minIntervalMs: 200, prefix: '/x' });

  browserTest('has no trim button and sends nothing but reads', async () => {
    const watched = await loaded(`${server().url}dashboard`);
    const { page } = watched;
    await page.waitForTimeout(500);
    expect(await page.locator('#trimButton').isVisible()).toBe(false);
    expect(await page.locator('#trimPanel').isHidden()).toBe(true);
    await page.screenshot({ path: '/tmp/dashboard-readonly.png', fullPage: true });
    expect(watched.requests.every((u) => u.startsWith('data:') || new URL(u).pathname.startsWith('/x/'))).toBe(true);
    await done(watched);
  });
});

describe('dashboard with unauthenticated trimming', () => {
  const server = serving({ minIntervalMs: 200, allowTrim: 'unauthenticated' });

  browserTest('shows the button without a token field, and the button trims', async () => {
    const watched = await loaded(`${server().url}dashboard`);
    const { page } = watched;
    expect(await page.locator('#trimButton').isVisible()).toBe(true);
    expect(await page.locator('#token').isVisible()).toBe(false);
    const response = page.waitForResponse((r) => r.url().endsWith('/trim') && r.request().method() === 'POST');
    await page.click('#trimButton');
    const r = await response;
    expect(r.status()).toBe(200);
    expect(r.request().headers().authorization).toBeUndefined();
    await page.locator('#trimResult', { hasText: /^released / }).waitFor();
    await done(watched);
  });
});

describe('the page files', () => {
  test('the script type-checks against the DOM', () => {
    const tsc = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
    const r = spawnSync(process.execPath, [tsc, '-p', PAGE_SOURCES], { encoding: 'utf8' });
    expect({ output: r.stdout + r.stderr, status: r.status }).toEqual({ output: '', status: 0 });
  });

  test('the package ships them next to the built module, as written', () => {
    const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: ROOT, encoding: 'utf8' });
    const packed = (JSON.parse(out) as Array<{ files: Array<{ path: string }> }>)[0].files.map((f) => f.path);
    for (const name of PAGE_FILES) {
      expect(packed).toContain(`lib/diagnostics/page/${name}`);
      expect([name, fs.readFileSync(path.join(ROOT, 'lib', 'diagnostics', 'page', name), 'utf8')]).toEqual([name, fs.readFileSync(path.join(PAGE_SOURCES, name), 'utf8')]);
    }
  });

  test('an unreadable one makes the page a 500 that names it; the JSON route works and the process exits', async () => {
    const r = await runFixture<{ dashboard: { status: number; type: string; body: string }; again: number; json: number }>('dashboard-missing-page.js', [], {
      timeoutMs: 60000,
    });
    expect({ code: r.code, signal: r.signal }).toEqual({ code: 0, signal: null });
    const { dashboard, again, json } = r.value;
    expect([dashboard.status, dashboard.type]).toEqual([500, 'application/json; charset=utf-8']);
    expect(JSON.parse(dashboard.body)).toEqual({ code: 'ERR_INTERNAL', error: expect.stringContaining('page/dashboard.css could not be read (ENOENT)') });
    expect(dashboard.body).not.toContain(ROOT);
    expect([again, json]).toEqual([500, 200]);
  });
});
