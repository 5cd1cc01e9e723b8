// Prometheus: the endpoint's text exposition checked by a strict parser and round-tripped
// against prom-client fed from the same sample; values consistent with MemoryStats.
import { Registry } from 'prom-client';
import { allocatorStatsSync, collectAllocatorMetrics, serveDiagnostics, startAutoTrim, type DiagnosticServer } from '../../src';
import { findLibrary, ALLOCATOR_LIBRARIES, MiB, runChild, testIf } from '../helpers';

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}
interface Family {
  help: string;
  type: string;
  samples: Sample[];
}

const NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*';
const SAMPLE = new RegExp(`^(${NAME})(?:\\{((?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\\\\n]|\\\\[\\\\"n])*",?)*)\\})? (\\S+)$`);
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"/g;

/** Text format 0.0.4, strictly: HELP and TYPE once, before the family's samples; every other line a well-formed sample. */
function parseExposition(text: string): Map<string, Family> {
  const families = new Map<string, Family>();
  expect(text.endsWith('\n')).toBe(true);
  let current: string | null = null;
  for (const line of text.slice(0, -1).split('\n')) {
    let m: RegExpExecArray | null;
    if (line === '') {
      // The format ignores empty lines (prom-client separates families with them).
    } else if ((m = new RegExp(`^# HELP (${NAME}) (.*)$`).exec(line))) {
      expect(families.has(m[1])).toBe(false);
      families.set(m[1], { help: m[2], type: 'untyped', samples: [] });
      current = m[1];
    } else if ((m = new RegExp(`^# TYPE (${NAME}) (counter|gauge|histogram|summary|untyped)$`).exec(line))) {
      expect(m[1]).toBe(current);
      families.get(m[1])!.type = m[2];
    } else if ((m = SAMPLE.exec(line))) {
      const family = m[1];
      expect(family).toBe(current);
      const labels: Record<string, string> = {};
      for (const l of (m[2] ?? '').matchAll(LABEL)) labels[l[1]] = l[2];
      const value = Number(m[3]);
      expect(Number.isFinite(value)).toBe(true);
      families.get(family)!.samples.push({ name: family, labels, value });
    } else {
      throw new Error(`not a valid exposition line: ${JSON.stringify(line)}`);
    }
  }
  return families;
}

const value = (f: Map<string, Family>, name: string, labels: Record<string, string> = {}): number | undefined =>
  f.get(name)?.samples.find((s) => Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;

describe('Prometheus exposition', () => {
  let server: DiagnosticServer;
  beforeAll(async () => {
    server = await serveDiagnostics({ minIntervalMs: 60_000 });
  });
  afterAll(() => server.close());

  test('parses strictly and is consistent with a MemoryStats sample', async () => {
    const text = await (await fetch(`${server.url}metrics`)).text();
    const f = parseExposition(text);
    const s = allocatorStatsSync();
    for (const name of ['allocated_bytes', 'resident_bytes', 'held_back_bytes', 'releasable_bytes', 'mapped_bytes', 'process_rss_bytes', 'process_rss_anon_bytes', 'process_rss_file_bytes', 'process_rss_shmem_bytes', 'process_swap_bytes', 'stats_duration_seconds']) {
      const fam = f.get(`allocator_${name}`);
      expect([name, fam?.type]).toEqual([name, 'gauge']);
      expect(fam!.samples).toHaveLength(1);
      expect(fam!.samples[0].labels).toEqual({ allocator: 'glibc' });
    }
    for (const name of ['trims_total', 'trim_released_bytes_total']) expect(f.get(`allocator_${name}`)?.type).toBe('counter');
    expect(value(f, 'allocator_info', { allocator: 'glibc', version: s.allocator.version! })).toBe(1);
    const rss = value(f, 'allocator_process_rss_bytes')!;
    expect(Math.abs(rss - s.process.rss!)).toBeLessThan(Math.max(128 * MiB, s.process.rss! * 0.5));
    // One sample behind all values: the identity holds exactly.
    expect(value(f, 'allocator_held_back_bytes')).toBe(value(f, 'allocator_resident_bytes')! - value(f, 'allocator_allocated_bytes')!);
    expect(value(f, 'allocator_releasable_bytes')!).toBeLessThanOrEqual(value(f, 'allocator_held_back_bytes')!);
    expect(value(f, 'allocator_resident_bytes')!).toBeLessThanOrEqual(value(f, 'allocator_process_rss_anon_bytes')! + MiB);
    const cost = value(f, 'allocator_stats_duration_seconds')!;
    expect(cost).toBeGreaterThan(0);
    expect(cost).toBeLessThan(10);
  });

  test('round trip: prom-client fed from the same sample exposes the same values', async () => {
    const register = new Registry();
    const handle = collectAllocatorMetrics({ register, minIntervalMs: 60_000 });
    try {
      const ours = parseExposition(await (await fetch(`${server.url}metrics`)).text());
      const theirs = parseExposition(await register.metrics());
      // prom-client prints HELP and TYPE for a metric without values; the endpoint leaves it out.
      const withValues = [...theirs.keys()].filter((k) => theirs.get(k)!.samples.length > 0);
      expect(new Set(withValues)).toEqual(new Set(ours.keys()));
      expect(withValues.length).toBeGreaterThanOrEqual(15);
      for (const [name, fam] of ours) {
        expect([name, theirs.get(name)!.type]).toEqual([name, fam.type]);
        expect(theirs.get(name)!.samples.map((x) => [x.labels, x.value])).toEqual(fam.samples.map((x) => [x.labels, x.value]));
      }
      const json = await register.getMetricsAsJSON();
      expect(json.find((m) => m.name === 'allocator_resident_bytes')!.values[0].value).toBe(value(ours, 'allocator_resident_bytes'));
    } finally {
      handle.unregister();
    }
    expect(register.getMetricsAsArray()).toHaveLength(0);
  });

  test('auto-trim metrics appear once an auto-trimmer runs, with skips by reason', async () => {
    const before = parseExposition(await (await fetch(`${server.url}metrics`)).text());
    expect(before.has('allocator_autotrim_running')).toBe(false);
    const trimmer = startAutoTrim({ intervalMs: 60_000 });
    try {
      const after = parseExposition(await (await fetch(`${server.url}metrics`)).text());
      expect(value(after, 'allocator_autotrim_running')).toBe(1);
      expect(value(after, 'allocator_autotrim_interval_seconds')).toBeGreaterThanOrEqual(60);
      expect(after.get('allocator_autotrim_trims_total')?.type).toBe('counter');
      const reasons = after.get('allocator_autotrim_skips_total')!.samples.map((x) => x.labels.reason).sort();
      expect(reasons).toEqual(['backing-off', 'below-threshold', 'busy', 'error', 'unknown', 'unsupported']);
    } finally {
      trimmer.stop();
    }
    const stopped = parseExposition(await (await fetch(`${server.url}metrics`)).text());
    expect(value(stopped, 'allocator_autotrim_running')).toBe(0);
  });
});

describe('collectAllocatorMetrics', () => {
  test('a burst of scrapes shares one sample and a trim shows up in the counters', async () => {
    const register = new Registry();
    const handle = collectAllocatorMetrics({ register, prefix: 'svc_mem_', minIntervalMs: 60_000 });
    try {
      const scrapes = await Promise.all(Array.from({ length: 8 }, () => register.getMetricsAsJSON()));
      const cost = scrapes.map((j) => j.find((m) => m.name === 'svc_mem_stats_duration_seconds')!.values[0].value);
      expect(new Set(cost).size).toBe(1);
      const trims = (j: Awaited<ReturnType<Registry['getMetricsAsJSON']>>): number =>
        Number(j.find((m) => m.name === 'svc_mem_trims_total')!.values[0].value);
      const n = trims(scrapes[0]);
      await (await import('../../src')).trim();
      // A trim makes the cached sample stale, and the totals are always current.
      const after = await register.getMetricsAsJSON();
      expect(trims(after)).toBe(n + 1);
      expect(after.find((m) => m.name === 'svc_mem_stats_duration_seconds')!.values[0].value).not.toBe(cost[0]);
    } finally {
      handle.unregister();
    }
  });

  test('refuses to register twice, and validates its options', () => {
    const register = new Registry();
    const handle = collectAllocatorMetrics({ register });
    expect(() => collectAllocatorMetrics({ register })).toThrow(expect.objectContaining({ code: 'ERR_METRIC_REGISTERED' }));
    handle.unregister();
    collectAllocatorMetrics({ register }).unregister();
    expect(() => collectAllocatorMetrics({ register, prefix: 'a-b' })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    expect(() => collectAllocatorMetrics({ register: {} as never })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
  });

  test('uses the default registry when none is given', async () => {
    const client = await import('prom-client');
    const handle = collectAllocatorMetrics();
    try {
      expect(await client.register.metrics()).toMatch(/^allocator_resident_bytes\{allocator="glibc"\} \d+$/m);
    } finally {
      handle.unregister();
    }
  });
});

const mimalloc = findLibrary(ALLOCATOR_LIBRARIES.mimalloc);
const jemalloc = findLibrary(ALLOCATOR_LIBRARIES.jemalloc);

// Unknown numbers are left out, known ones are present: checked under real allocators.
async function nullsOmitted(preload: string): Promise<void> {
  const { value: v } = await runChild<{ stats: Record<string, unknown>; text: string }>(
    `const m = require(LIB);
     const s = await m.serveDiagnostics({ minIntervalMs: 60000 });
     const stats = (await (await fetch(s.url)).json()).stats;
     const text = await (await fetch(s.url + 'metrics')).text();
     await s.close();
     report({ stats, text });`,
    { preload, timeoutMs: 60000 },
  );
  const f = parseExposition(v.text);
  const fields: Array<[string, string]> = [['allocated', 'allocated_bytes'], ['resident', 'resident_bytes'], ['heldBack', 'held_back_bytes'], ['releasable', 'releasable_bytes'], ['mapped', 'mapped_bytes']];
  for (const [field, metric] of fields) {
    const known = v.stats[field] !== null;
    expect([field, f.has(`allocator_${metric}`)]).toEqual([field, known]);
    if (known) expect(value(f, `allocator_${metric}`)).toBe(v.stats[field]);
  }
  expect(f.get('allocator_info')!.samples[0].labels.allocator).toBe((v.stats.allocator as { name: string }).name);
}

testIf(mimalloc !== null, 'libmimalloc.so.2 not installed')('under mimalloc: null numbers are omitted, never 0', async () => {
  await nullsOmitted(mimalloc!);
});
testIf(jemalloc !== null, 'libjemalloc.so.2 not installed')('under jemalloc: the allocator label and its numbers', async () => {
  await nullsOmitted(jemalloc!);
});
