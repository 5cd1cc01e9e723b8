// allocator-stats compare: the same program under glibc and jemalloc, interleaved and ranked;
// the exports; the HTML report rendered in real headless Chromium.
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium, type Browser } from 'playwright-core';
import type { JsonReport } from '../../src/cli/export-json';
import { buildAllocProgram, FIXTURES, hasGcc, procLines, runCli, tempDir } from './helpers';
import { ALLOCATOR_LIBRARIES, findLibrary, MiB, testIf } from '../helpers';

const CHROMIUM = '/usr/bin/chromium';
const jemalloc = findLibrary(ALLOCATOR_LIBRARIES.jemalloc);
const withJemalloc = testIf(jemalloc !== null, 'libjemalloc2 not installed (apt-get install libjemalloc2)');
const withChromium = testIf(jemalloc !== null && fs.existsSync(CHROMIUM), 'needs libjemalloc2 and chromium (apt-get install chromium)');
const withGccAndJemalloc = testIf(hasGcc && jemalloc !== null, 'needs gcc and libjemalloc2');
const everyAllocator = (['jemalloc', 'tcmalloc', 'mimalloc'] as const).every((a) => findLibrary(ALLOCATOR_LIBRARIES[a]) !== null);
const withEveryAllocator = testIf(everyAllocator, 'needs libjemalloc2, libtcmalloc-minimal4 and libmimalloc2.0');

interface Seen {
  rows: number;
  figures: Array<{
    width: number;
    layers: Array<{ layer: string; points: number }>;
    series: Array<{ series: string; segments: number }>;
    trims: number;
    ticks: string[];
  }>;
  findings: number;
}

let dir: string;
let browser: Browser | null = null;
// One compare run shared by the tests below: it is the expensive part.
let compared: Promise<{ stdout: string; stderr: string; code: number | null; json: JsonReport; md: string; html: string }> | null = null;

beforeAll(() => {
  dir = tempDir();
});
afterAll(async () => {
  await browser?.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

function compareOnce(): NonNullable<typeof compared> {
  compared ??= (async () => {
    const files = { json: path.join(dir, 'c.json'), md: path.join(dir, 'c.md'), html: path.join(dir, 'c.html') };
    const r = await runCli([
      'compare', '--only', 'glibc,jemalloc', '--runs', '1', '--interval', '200',
      '--export-json', files.json, '--export-markdown', files.md, '--export-html', files.html,
      '--', process.execPath, path.join(FIXTURES, 'cli-churn.js'), '24', '1600', '0', 'trim',
    ]);
    return {
      ...r,
      json: JSON.parse(fs.readFileSync(files.json, 'utf8')) as JsonReport,
      md: fs.readFileSync(files.md, 'utf8'),
      html: fs.readFileSync(files.html, 'utf8'),
    };
  })();
  return compared;
}

describe('allocator-stats compare', () => {
  withJemalloc('runs glibc and jemalloc, verifies each, ranks them and agrees with /proc', async () => {
    const { code, stdout, stderr, json, md } = await compareOnce();
    expect(code).toBe(0);
    expect(json.runs.map((r) => r.label)).toEqual(['glibc', 'jemalloc']);
    expect(json.runs.map((r) => r.allocatorCheck.detected)).toEqual(['glibc', 'jemalloc']);
    expect(json.runs.every((r) => r.allocatorCheck.served === true && r.exitCode === 0)).toBe(true);
    expect(json.runs[1].allocator.env).toEqual({});
    expect(['glibc', 'jemalloc']).toContain(json.recommendation!.label);
    expect(json.recommendation!.reason).toMatch(/steady RSS/);
    // Each program printed its own /proc reading at exit; the runs came in the order above.
    const procs = procLines(stdout);
    expect(procs).toHaveLength(2);
    json.runs.forEach((run, i) => {
      expect(Math.abs(run.rss.final! - procs[i].rss!)).toBeLessThanOrEqual(2 * MiB);
      // The kernel updates VmHWM lazily (a trim's madvise can drop RSS below a peak it never
      // recorded), so the peak is the larger of VmHWM and every RSS sample: close to VmHWM.
      expect(Math.abs(run.rss.peak! - procs[i].hwm)).toBeLessThanOrEqual(2 * MiB);
    });
    // The table, ranked 1 and 2, in the terminal and in Markdown.
    expect(stderr).toMatch(/\n1\s+(glibc|jemalloc)\s/);
    expect(stderr).toMatch(/Recommendation: (glibc|jemalloc) — /);
    expect(md).toContain('| # | candidate | allocator | peak RSS | steady RSS | final RSS | held back at end | wall time | runs | findings |');
    expect(md).toMatch(/\n\| 1 \| (glibc|jemalloc) \| /);
    expect(md).toMatch(/\n\| 2 \| (glibc|jemalloc) \| /);
    expect(md).toContain(`**Recommendation: ${json.recommendation!.label}**`);
  });

  withChromium('the HTML report renders offline: stacked parts, held back and releasable, the trim, one scale, table and findings', async () => {
    const { html, json } = await compareOnce();
    expect(html).not.toMatch(/<script|<link|@import|url\(|https?:\/\//i);
    browser ??= await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
    });
    const page = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
    const problems: string[] = [];
    const requests: string[] = [];
    page.on('console', (m) => (m.type() === 'error' || m.type() === 'warning') && problems.push(m.text()));
    page.on('pageerror', (e) => problems.push(e.message));
    page.on('request', (r) => requests.push(r.url()));
    const file = pathToFileURL(path.join(dir, 'c.html')).href;
    await page.goto(file);
    // Read in the page (a string: this project compiles without the DOM's types).
    const seen = await page.evaluate<Seen>(`(() => {
      const figures = [...document.querySelectorAll('figure.run')];
      return {
        rows: document.querySelectorAll('tbody tr').length,
        figures: figures.map((f) => ({
          width: f.querySelector('svg').getBoundingClientRect().width,
          layers: [...f.querySelectorAll('polygon.area')].map((p) => ({ layer: p.getAttribute('data-layer'), points: p.getAttribute('points').split(' ').length })),
          series: [...f.querySelectorAll('path[data-series]')].map((p) => ({ series: p.getAttribute('data-series'), segments: (p.getAttribute('d').match(/[ML]/g) || []).length })),
          trims: f.querySelectorAll('[data-trim]').length,
          ticks: [...f.querySelectorAll('text.tick')].map((t) => t.textContent),
        })),
        findings: document.querySelectorAll('.finding').length,
      };
    })()`);
    expect(problems).toEqual([]);
    expect(requests).toEqual([file]);
    expect(seen.rows).toBe(2);
    expect(seen.figures).toHaveLength(2);
    for (const [i, f] of seen.figures.entries()) {
      expect(f.width).toBeGreaterThan(300);
      const samples = json.runs[i].samples.length;
      expect(f.layers.map((l) => l.layer)).toEqual(expect.arrayContaining(['v8Heap', 'nativeInUse', 'heldBack']));
      for (const l of f.layers) expect(l.points).toBe(2 * samples);
      for (const s of ['rss', 'heldBack', 'releasable']) expect(f.series).toContainEqual({ series: s, segments: samples });
      expect(f.trims).toBe(1);
    }
    // Side by side on one scale: the same axes in every chart.
    expect(seen.figures[1].ticks).toEqual(seen.figures[0].ticks);
    expect(seen.findings).toBe(json.runs.reduce((n, r) => n + r.findings.length, 0));
  });

  withEveryAllocator('agrees with /proc under every built-in allocator, and never holds back more than RSS', async () => {
    const out = path.join(dir, 'every.json');
    const r = await runCli([
      'compare', '--only', 'glibc,jemalloc,tcmalloc,mimalloc', '--runs', '1', '--interval', '200', '--export-json', out,
      '--', process.execPath, path.join(FIXTURES, 'cli-churn.js'), '24', '1600', '0',
    ]);
    expect(r.code).toBe(0);
    const json = JSON.parse(fs.readFileSync(out, 'utf8')) as JsonReport;
    expect(json.runs.map((x) => [x.label, x.allocatorCheck.detected, x.allocatorCheck.served, x.exitCode])).toEqual([
      ['glibc', 'glibc', true, 0],
      ['jemalloc', 'jemalloc', true, 0],
      ['tcmalloc', 'tcmalloc', true, 0],
      ['mimalloc', 'mimalloc', true, 0],
    ]);
    const procs = procLines(r.stdout);
    expect(procs).toHaveLength(4);
    json.runs.forEach((run, i) => {
      expect(Math.abs(run.rss.final! - procs[i].rss!)).toBeLessThanOrEqual(2 * MiB);
      expect(Math.abs(run.rss.peak! - procs[i].hwm)).toBeLessThanOrEqual(2 * MiB);
      // Held back is part of RSS at every sample, the last (taken in the exit event) included.
      const known = run.samples.filter((s) => s.heldBack !== null);
      for (const s of known) expect(s.heldBack!).toBeLessThanOrEqual(s.rss!);
      for (const f of run.findings) {
        if (typeof f.evidence.heldBackBytes === 'number') expect(f.evidence.heldBackBytes).toBeLessThanOrEqual(f.evidence.rssBytes as number);
      }
    });
    // Every allocator but mimalloc (which does not count its allocated bytes) reports held back at exit.
    expect(json.runs.map((x) => x.samples[x.samples.length - 1].heldBack !== null)).toEqual([true, true, true, false]);
  });

  test('an export that fails at the end loses neither the table nor the other exports, and exits 1', async () => {
    const files = { json: path.join(dir, 'late.json'), md: path.join(dir, 'late.md'), html: path.join(dir, 'late.html') };
    // The program itself puts a directory where the JSON export goes, after the checks at the start passed.
    const r = await runCli([
      'compare', '--only', 'glibc', '--interval', '100',
      '--export-json', files.json, '--export-markdown', files.md, '--export-html', files.html,
      '--', process.execPath, '-e', 'require("fs").mkdirSync(process.argv[1]); setTimeout(() => {}, 800)', files.json,
    ]);
    expect(r.stderr).toMatch(/\n1\s+glibc\s/);
    expect(r.stderr).toMatch(/Recommendation: glibc — /);
    expect(r.stderr.trimEnd().split('\n').pop()).toBe(`allocator-stats: cannot write ${files.json} (--export-json): EISDIR`);
    expect(fs.readFileSync(files.md, 'utf8')).toMatch(/\n\| 1 \| glibc \| /);
    expect(fs.readFileSync(files.html, 'utf8')).toContain('glibc');
    expect(r.code).toBe(1);
  });

  withGccAndJemalloc('never ranks a candidate whose allocator did not serve the program', async () => {
    const program = buildAllocProgram(dir, true);
    const out = path.join(dir, 'static.json');
    const r = await runCli(['compare', '--only', 'glibc,jemalloc', '--interval', '100', '--export-json', out, '--', program, '16', '300', '0']);
    expect(r.code).toBe(0);
    const json = JSON.parse(fs.readFileSync(out, 'utf8')) as JsonReport;
    expect(json.runs.map((x) => [x.label, x.allocatorCheck.served])).toEqual([['glibc', true], ['jemalloc', false]]);
    expect(json.recommendation!.label).toBe('glibc');
    expect(r.stderr).toMatch(/not ranked: glibc served malloc, not jemalloc\s+jemalloc/);
    // From outside, the charts stack the kernel's split: anonymous and file-backed.
    const html = path.join(dir, 'static.html');
    await runCli(['run', '--interval', '100', '--export-html', html, '--', program, '16', '300', '0']);
    const layers = [...fs.readFileSync(html, 'utf8').matchAll(/data-layer="(\w+)"/g)].map((m) => m[1]);
    expect(layers).toEqual(['anon', 'file']);
  });
});
