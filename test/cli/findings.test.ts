// The doctor's findings on `allocator-stats compare` runs do not cry wolf: a plain Node program
// (Node's own 11 threads, glibc's 10 arenas for them, a few MiB held back) gets no configuration
// finding under glibc or jemalloc; a worker pool that churned and idles with its freed memory
// held in many arenas does, unless the setting that fixes it is already in effect.
import fs from 'node:fs';
import path from 'node:path';
import type { JsonReport, JsonRun } from '../../src/cli/export-json';
import { FIXTURES, procLines, runCli, tempDir } from './helpers';
import { ALLOCATOR_LIBRARIES, findLibrary, MiB, ROOT, testIf } from '../helpers';

const jemalloc = findLibrary(ALLOCATOR_LIBRARIES.jemalloc);
const withJemalloc = testIf(jemalloc !== null, 'libjemalloc2 not installed (apt-get install libjemalloc2)');
const CONFIG_FINDINGS = ['glibc-many-threads', 'jemalloc-no-background-thread'];
// Node's own threads and their arenas (the rule's NODE_BASELINE_ARENAS): more come from the program.
const NODE_ARENAS = 11;

let dir: string;
beforeAll(() => {
  dir = tempDir();
});
afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

async function compare(name: string, only: string, program: string[]): Promise<{ json: JsonReport; stdout: string; code: number | null }> {
  const out = path.join(dir, `${name}.json`);
  const r = await runCli(['compare', '--only', only, '--runs', '1', '--interval', '250', '--export-json', out, '--', process.execPath, ...program]);
  return { json: JSON.parse(fs.readFileSync(out, 'utf8')) as JsonReport, stdout: r.stdout, code: r.code };
}

const ids = (run: JsonRun): string[] => run.findings.map((f) => f.id);

describe('allocator-stats findings', () => {
  withJemalloc('a plain Node program gets no configuration finding and no alarm under glibc or jemalloc', async () => {
    const { json, code } = await compare('plain', 'glibc,jemalloc', [path.join(FIXTURES, 'cli-plain.js'), '4000']);
    expect(code).toBe(0);
    expect(json.runs.map((r) => [r.label, r.allocatorCheck.served, r.exitCode])).toEqual([
      ['glibc', true, 0],
      ['jemalloc', true, 0],
    ]);
    for (const run of json.runs) {
      expect(ids(run).filter((id) => CONFIG_FINDINGS.includes(id))).toEqual([]);
      expect(run.findings.filter((f) => f.severity !== 'info').map((f) => f.id)).toEqual([]);
      // The program is no smaller than Node: it ran its pool and platform threads, and held back little.
      expect(run.samples[run.samples.length - 1].heldBack!).toBeLessThan(64 * MiB);
    }
  });

  withJemalloc('a worker pool idling after churn: glibc-many-threads and jemalloc-no-background-thread, never where the fix is in effect', async () => {
    // Six workers churn 48 MiB each, then idle 12 s: longer than jemalloc's 10 s decay.
    const { json, stdout, code } = await compare('idle', 'glibc,glibc-arena2,jemalloc,jemalloc-bg', [
      path.join(ROOT, 'scripts', 'churn-idle.js'),
      '6',
      '48',
      '12',
    ]);
    expect(code).toBe(0);
    const byLabel = Object.fromEntries(json.runs.map((r) => [r.label, r]));
    expect(json.runs.every((r) => r.allocatorCheck.served === true && r.exitCode === 0)).toBe(true);

    const arenas = byLabel.glibc.findings.find((f) => f.id === 'glibc-many-threads')!;
    expect(arenas).toBeDefined();
    expect(arenas.evidence.arenas as number).toBeGreaterThan(NODE_ARENAS);
    expect(arenas.evidence.heldBackBytes as number).toBeGreaterThanOrEqual(64 * MiB);
    expect(arenas.evidence.heldBackBytes as number).toBeLessThanOrEqual(arenas.evidence.rssBytes as number);
    // MALLOC_ARENA_MAX=2 is in effect: never advised again.
    expect(ids(byLabel['glibc-arena2'])).not.toContain('glibc-many-threads');

    const decay = byLabel.jemalloc.findings.find((f) => f.id === 'jemalloc-no-background-thread')!;
    expect(decay).toBeDefined();
    expect(decay.evidence.heldForMs as number).toBeGreaterThanOrEqual(10_000);
    expect(decay.evidence.heldBytes as number).toBeGreaterThanOrEqual(64 * MiB);
    expect(ids(byLabel['jemalloc-bg'])).not.toContain('jemalloc-no-background-thread');

    // Every figure the findings cite is within what the OS shows, and the runs agree with /proc.
    const procs = procLines(stdout);
    expect(procs).toHaveLength(4);
    json.runs.forEach((run, i) => {
      for (const f of run.findings) {
        if (typeof f.evidence.heldBackBytes === 'number') expect(f.evidence.heldBackBytes).toBeLessThanOrEqual(f.evidence.rssBytes as number);
      }
      expect(Math.abs(run.rss.final! - procs[i].rss!)).toBeLessThanOrEqual(2 * MiB);
    });
  });
});
