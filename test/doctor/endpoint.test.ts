// The doctor behind the diagnostic endpoint, over real HTTP on 127.0.0.1: GET …/doctor and
// …/doctor/history, finding counts in /metrics, and the live page in headless Chromium showing
// the findings, the parts of RSS over the monitor's window, and a trim marked on it.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { createDiagnosticHandler, serveDiagnostics, type Diagnosis, type MonitorSample, type MonitorTotals } from '../../src';
import { MiB, ROOT, testIf } from '../helpers';

const CHROMIUM = '/usr/bin/chromium';
const browserTest = testIf(fs.existsSync(CHROMIUM), 'chromium not installed (apt-get install chromium)');

type DoctorBody = Diagnosis & { monitor: MonitorTotals };

async function get(url: string, init?: RequestInit): Promise<{ status: number; body: any; text: string }> {
  const r = await fetch(url, init);
  const text = await r.text();
  let body: unknown = null;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON (metrics)
  }
  return { status: r.status, body, text };
}

describe('doctor routes in this process', () => {
  test('GET doctor and doctor/history answer JSON; other methods 405; monitor: false turns them off', async () => {
    const server = await serveDiagnostics({ monitor: { intervalMs: 100, budget: 1 } });
    try {
      let d = await get(`${server.url}doctor`);
      for (let i = 0; i < 50 && (d.body as DoctorBody).window.samples < 2; i++) {
        await new Promise((r) => setTimeout(r, 100));
        d = await get(`${server.url}doctor`);
      }
      expect(d.status).toBe(200);
      const body = d.body as DoctorBody;
      expect(body.window.samples).toBeGreaterThanOrEqual(2);
      expect(body.parts).toHaveLength(body.window.samples);
      expect(typeof body.parts[0].rss).toBe('number');
      expect(typeof body.parts[0].heldBack).toBe('number');
      // A process this young gets no trend verdict, and says why.
      expect(body.findings.filter((f) => f.severity !== 'info')).toEqual([]);
      expect(body.notes.join(' ')).toContain('No trend verdict');
      expect(body.monitor.running).toBe(true);
      expect((await get(server.url)).body.endpoint.doctor).toBe(true);

      const h = await get(`${server.url}doctor/history`);
      expect(h.status).toBe(200);
      expect((h.body.samples as MonitorSample[]).length).toBeGreaterThanOrEqual(2);
      expect(h.body.samples[0].allocator).toBe('glibc');

      expect((await get(`${server.url}doctor`, { method: 'POST' })).status).toBe(405);
      const m = await get(`${server.url}metrics`);
      expect(m.text).toMatch(/^allocator_doctor_findings\{allocator="glibc",severity="warning"\} 0$/m);
    } finally {
      await server.close();
    }
    const off = await serveDiagnostics({ monitor: false });
    try {
      const r = await get(`${off.url}doctor`);
      expect(r.status).toBe(404);
      expect(r.body.code).toBe('ERR_DOCTOR_DISABLED');
      expect((await get(off.url)).body.endpoint.doctor).toBe(false);
    } finally {
      await off.close();
    }
  });

  test('rejects a bad monitor option or doctor threshold at setup', () => {
    expect(() => createDiagnosticHandler({ monitor: 'yes' as never })).toThrow(
      expect.objectContaining({ name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE', message: expect.stringContaining('options.monitor') }),
    );
    expect(() => createDiagnosticHandler({ monitor: false, doctor: { trendMaxP: 5 } })).toThrow(expect.objectContaining({ name: 'RangeError', code: 'ERR_OUT_OF_RANGE' }));
    // Errors name the option's own path, and list only what that option takes.
    expect(() => createDiagnosticHandler({ monitor: { intervalMs: 10 } })).toThrow(
      expect.objectContaining({ code: 'ERR_OUT_OF_RANGE', message: expect.stringContaining('options.monitor.intervalMs') }),
    );
    expect(() => createDiagnosticHandler({ monitor: false, doctor: { graceMs: -1 } })).toThrow(
      expect.objectContaining({ code: 'ERR_OUT_OF_RANGE', message: expect.stringContaining('options.doctor.graceMs') }),
    );
    for (const key of ['nope', 'now', 'context']) {
      expect(() => createDiagnosticHandler({ monitor: false, doctor: { [key]: 1 } as never })).toThrow(
        expect.objectContaining({ code: 'ERR_UNKNOWN_OPTION', message: expect.stringMatching(/for options\.doctor; known options: (?!.*\b(now|context)\b)/) }),
      );
    }
  });
});

describe('doctor endpoint on a retaining process', () => {
  let child: ChildProcessWithoutNullStreams;
  let url: string;
  let browser: Browser | null = null;

  beforeAll(async () => {
    child = spawn(process.execPath, [path.join(ROOT, 'test', 'doctor', 'fixtures', 'doctor-served.js')], { cwd: ROOT });
    url = await new Promise<string>((resolve, reject) => {
      let out = '';
      let err = '';
      child.stderr.on('data', (d) => (err += d));
      child.stdout.on('data', (d) => {
        out += d;
        const m = /@@URL@@(\S+)/.exec(out);
        if (m) resolve(m[1]);
      });
      child.on('exit', (code) => reject(new Error(`served child exited (${code}) before listening\n${out}\n${err}`)));
    });
  });
  afterAll(async () => {
    await browser?.close();
    child.stdin.end();
    await new Promise((r) => child.once('exit', r));
  });

  async function waitForFinding(id: string): Promise<DoctorBody> {
    // The monitor needs its minimum window (5 s after a 1 s grace period) before any verdict.
    for (let i = 0; i < 120; i++) {
      const d = (await get(`${url}doctor`)).body as DoctorBody;
      if (d.findings.some((f) => f.id === id)) return d;
      await new Promise((r) => setTimeout(r, 250));
    }
    throw new Error(`no ${id} finding from ${url}doctor`);
  }

  test('serves allocator-retention, counts it in /metrics', async () => {
    const d = await waitForFinding('allocator-retention');
    const f = d.findings.find((x) => x.id === 'allocator-retention')!;
    expect(f.evidence.heldBackBytes as number).toBeGreaterThan(64 * MiB);
    const m = await get(`${url}metrics`);
    expect(m.text).toMatch(/^allocator_doctor_findings\{allocator="glibc",severity="warning"\} [1-9]$/m);
    expect(m.text).toMatch(/^allocator_doctor_finding\{allocator="glibc",id="allocator-retention",severity="warning"\} 1$/m);
  });

  browserTest('the page shows the findings with evidence, the parts over the window, and marks a trim', async () => {
    await waitForFinding('allocator-retention');
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu', '--no-first-run'] });
    const page = await (await browser.newContext({ viewport: { width: 1280, height: 1400 } })).newPage();
    const problems: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') problems.push(m.text());
    });
    page.on('pageerror', (e) => problems.push(e.message));
    await page.goto(`${url}dashboard`);
    const finding = page.locator('.finding[data-id="allocator-retention"]');
    await finding.waitFor();
    expect(await finding.locator('h3').textContent()).toContain('glibc keeps freed memory');
    expect(await finding.locator('details table').textContent()).toContain('heldBackBytes');
    // History from before the page was opened: the window starts when the monitor did.
    expect(await page.locator('#doctorNote').textContent()).toMatch(/Window: \d+ samples over [1-9]\d* s/);
    const before = await page.locator('#history').screenshot();
    expect(await page.locator('#historyTrims').textContent()).toBe('no trims in the window');

    const response = page.waitForResponse((r) => r.url().endsWith('/trim'));
    await page.click('#trimButton');
    expect((await response).status()).toBe(200);
    await page.locator('#historyTrims', { hasText: /^1 trim in the window, released \d/ }).waitFor({ timeout: 30000 });
    const after = await page.locator('#history').screenshot();
    expect(Buffer.compare(before, after)).not.toBe(0);
    await page.screenshot({ path: '/tmp/doctor-dashboard.png', fullPage: true });
    expect(problems).toEqual([]);
  });
});

describe('the page without the doctor', () => {
  browserTest('with monitor: false the page never asks for doctor and logs no error', async () => {
    const server = await serveDiagnostics({ monitor: false, minIntervalMs: 250 });
    const b = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu', '--no-first-run'] });
    try {
      const page = await (await b.newContext()).newPage();
      const problems: string[] = [];
      page.on('console', (m) => {
        if (m.type() === 'error' || m.type() === 'warning') problems.push(m.text());
      });
      page.on('pageerror', (e) => problems.push(e.message));
      const asked: string[] = [];
      page.on('request', (r) => asked.push(new URL(r.url()).pathname));
      await page.goto(`${server.url}dashboard`);
      // Several polls of the JSON route: the page has read endpoint.doctor by then.
      await page.locator('#status', { hasText: /^updated / }).waitFor();
      await page.waitForTimeout(1000);
      expect(asked.filter((p) => p === '/debug/memory/').length).toBeGreaterThanOrEqual(2);
      expect(asked.filter((p) => p.includes('doctor'))).toEqual([]);
      expect(await page.locator('#doctorPanel').isHidden()).toBe(true);
      expect(problems).toEqual([]);
    } finally {
      await b.close();
      await server.close();
    }
  });
});
