'use strict';
// Core benchmarks, each in a fresh process (node scripts/bench-core.js <case>):
//   cost   median cost per call of allocatorStatsSync() vs process.memoryUsage(), same process:
//          back to back (a JS-thread sample may reuse glibc arena residency and v8.arrayBuffers
//          up to 100 ms old), and one call every 120 ms (both read by every call); then where the
//          time goes
//   stall  on a main-arena heap with many small free chunks, while the JS thread allocates
//          small Buffers as a server does: the longest JS-thread stall and the wall time of
//          await trim() and await allocatorStats(), against the bare malloc_trim(0) and
//          mallinfo2() they wrap (the addon's raw entry points), measured in the same process
//   first  the same for the first allocatorStats() in a process (detection included), one
//          fresh process per trial
// A stall is the longest gap between ticks of a 1 ms interval timer that allocates on every
// tick: a ticker that never calls malloc never waits for an arena lock and hides the stall
// (perf_hooks.monitorEventLoopDelay under-reports single long blocks too).
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const a = require(path.join(__dirname, '..', 'lib'));
const binding = require(path.join(__dirname, '..', 'lib', 'core', 'binding')).addon();
const { fragment, collect } = require('./workload');
const { median, perCallNs } = require('./bench-util');

// Targets from the design: what each figure must stay within, as a ratio to its baseline.
const TARGET = { statsCost: 2, trimStall: 1.25, trimWall: 2, statsStall: 1.25 };
const FREE_CHUNKS = Number(process.env.BENCH_FREE_CHUNKS || 600000);

const ratio = (x, base) => `${(x / base).toFixed(2)}x`;
const FLOOR = 'scheduling floor: async addon call, no allocator work (threadpool)';
const AFTER_SAMPLE = 'await trim() within 100 ms of a sample';

// The native glibc sample's arguments, encoded by the names the addon exports.
function glibcSampleArgs(values) {
  const wire = binding.wire.backends.find((b) => b.name === 'glibc');
  return wire.sampleArgs.map((name) => values[name] ?? NaN);
}

async function cost() {
  const glibcIndex = binding.wire.backends.findIndex((b) => b.name === 'glibc');
  const buffer = new Float64Array(4096);
  const reuse = glibcSampleArgs({ releasable: 0, residencyMaxAgeNs: 100e6 });
  const measure = glibcSampleArgs({ releasable: 0, residencyMaxAgeNs: 0 });
  const v8 = require('node:v8');
  const rounds = 31;
  const calls = 200;
  const SYNC = 'allocatorStatsSync()';
  const NATIVE_REUSED = '  of which: native sample, residency reused (statm, mallinfo2)';
  const V8_FIGURES = '  of which: v8 figures (getHeapStatistics; arrayBuffers reused)';
  const cases = {
    'process.memoryUsage()': () => process.memoryUsage(),
    [SYNC]: () => a.allocatorStatsSync(),
    'allocatorStatsSync({ releasable: true })': () => a.allocatorStatsSync({ releasable: true }),
    [NATIVE_REUSED]: () => binding.sampleSync(glibcIndex, reuse, buffer),
    '  native sample, residency measured (statm, mallinfo2, mincore over the arenas)': () => binding.sampleSync(glibcIndex, measure, buffer),
    '  of which: bare mallinfo2()': () => binding.glibcMallinfoSync(),
    [V8_FIGURES]: () => v8.getHeapStatistics(),
  };
  const results = {};
  // Warm up all, then interleave rounds so machine noise hits each alike.
  for (const fn of Object.values(cases)) perCallNs(fn, 1000);
  for (let r = 0; r < rounds; r++) {
    for (const [name, fn] of Object.entries(cases)) (results[name] ??= []).push(perCallNs(fn, calls));
  }
  const base = median(results['process.memoryUsage()']);
  console.log(`stats cost (${a.detectAllocator().name}, fresh process, median of ${rounds} rounds x ${calls} calls)`);
  console.log('| call | per call | vs process.memoryUsage() |');
  console.log('|---|---|---|');
  for (const name of Object.keys(cases)) {
    const m = median(results[name]);
    const note = name === SYNC ? ` (target <= ${TARGET.statsCost}x)` : name === 'process.memoryUsage()' ? ' (baseline)' : '';
    console.log(`| ${name} | ${(m / 1000).toFixed(1)} us | ${ratio(m, base)}${note} |`);
  }
  const rest = median(results[SYNC]) - median(results[NATIVE_REUSED]) - median(results[V8_FIGURES]);
  console.log(`|   of which: the rest (validation, decoding, clamp, notes, objects, their GC) | ${(rest / 1000).toFixed(1)} us | ${ratio(rest, base)} |`);

  // One call every 120 ms, past the bound on reused residency: what an occasional caller
  // (a metrics scrape, a health check) pays. Each figure is one call, so more trials.
  const sparse = { base: [], sync: [] };
  const trials = 41;
  for (let i = 0; i < trials; i++) {
    await new Promise((r) => setTimeout(r, 120));
    const order = i % 2 ? ['sync', 'base'] : ['base', 'sync'];
    for (const which of order) {
      const t = process.hrtime.bigint();
      const s = which === 'base' ? process.memoryUsage() : a.allocatorStatsSync();
      sparse[which].push(Number(process.hrtime.bigint() - t));
      if (which === 'sync' && a.detectAllocator().name === 'glibc' && s.raw.arenaResidencyAgeMs !== 0) {
        throw new Error('a sparse sample reused residency: the bench no longer measures what it says');
      }
      if (which === 'sync' && s.notes.some((n) => n.startsWith('v8.arrayBuffers is reused'))) {
        throw new Error('a sparse sample reused v8.arrayBuffers: the bench no longer measures what it says');
      }
    }
  }
  const sparseBase = median(sparse.base);
  console.log(`one call every 120 ms (glibc arena residency and v8.arrayBuffers read by every call), median of ${trials}`);
  console.log('| call | per call | vs process.memoryUsage() |');
  console.log('|---|---|---|');
  console.log(`| process.memoryUsage() | ${(sparseBase / 1000).toFixed(1)} us | 1.00x (baseline) |`);
  console.log(`| ${SYNC} | ${(median(sparse.sync) / 1000).toFixed(1)} us | ${ratio(median(sparse.sync), sparseBase)} |`);
}

// Longest gap between ticks of an allocating 1 ms interval while `op` runs, and how long `op` took.
async function stallOf(op) {
  let sink = [];
  let last = performance.now();
  let worst = 0;
  const timer = setInterval(() => {
    // A server's small allocations: each Buffer.alloc() is a calloc() on the JS thread's arena.
    for (let i = 0; i < 8; i++) sink.push(Buffer.alloc(64 + i * 16));
    if (sink.length > 512) sink = [];
    const now = performance.now();
    worst = Math.max(worst, now - last);
    last = now;
  }, 1);
  await new Promise((r) => setTimeout(r, 20));
  worst = 0;
  last = performance.now();
  let took = 0;
  await new Promise((resolve, reject) => {
    setTimeout(() => {
      const started = performance.now();
      Promise.resolve()
        .then(op)
        .then(() => {
          took = performance.now() - started;
          resolve();
        }, reject);
    }, 2);
  });
  await new Promise((r) => setTimeout(r, 10));
  clearInterval(timer);
  return { stall: worst, took };
}

async function heap() {
  const kept = fragment({ chunks: FREE_CHUNKS });
  // Let the sweeper finish with the dropped Buffers before measuring.
  await new Promise((r) => setTimeout(r, 500));
  return kept;
}

function table(title, rows, results, pairs) {
  console.log(title);
  console.log('| call | longest tick gap | call took | stall vs bare | wall vs bare |');
  console.log('|---|---|---|---|---|');
  for (const [name] of rows) {
    const r = results[name];
    const pair = pairs[name];
    const vs = pair ? results[pair[0]] : null;
    const cells = vs
      ? [`${ratio(r.stall, vs.stall)} (target <= ${pair[1]}x)`, pair[2] ? `${ratio(r.took, vs.took)} (target <= ${pair[2]}x)` : `${ratio(r.took, vs.took)}`]
      : ['', ''];
    console.log(`| ${name} | ${r.stall.toFixed(1)} ms | ${r.took.toFixed(1)} ms | ${cells[0]} | ${cells[1]} |`);
  }
}

async function stall() {
  const kept = await heap();
  const mi = a.glibc.mallinfo2Sync();
  // Warm the library's one-time work (detection, region scan) so that this measures the steady state.
  await a.allocatorStats();
  const trials = 9;
  // A threadpool round trip through the addon that does no allocator work: a sample of a
  // backend that does not serve malloc() (it reads /proc/self/status and returns).
  const idle = binding.wire.backends.findIndex((b) => b.name !== a.detectAllocator().name);
  const trimInside = [];
  const rows = [
    // The noise floor of this machine: the same timer with nothing blocking it.
    ['idle (await 10 ms sleep)', () => new Promise((r) => setTimeout(r, 10))],
    [FLOOR, () => binding.sample(idle, [])],
    ['bare malloc_trim(0) (threadpool)', () => binding.glibcMallocTrim()],
    ['await trim()', () => a.trim().then((t) => trimInside.push(t.durationMs))],
    // As the auto-trimmer and a dashboard do: a sample decides, the trim follows within
    // 100 ms and starts from the residency that sample measured instead of gauging it again.
    [AFTER_SAMPLE, () => a.trim(), () => a.allocatorStats({ releasable: false })],
    ['bare mallinfo2() (threadpool)', () => binding.glibcMallinfo()],
    ['await allocatorStats()', () => a.allocatorStats()],
    ['await allocatorStats({ releasable: false })', () => a.allocatorStats({ releasable: false })],
  ];
  const samples = {};
  // Interleaved: each trial runs every row once, so noise hits all rows alike.
  for (let i = 0; i < trials; i++) {
    for (const [name, op, before] of rows) {
      if (before) await before();
      const r = await stallOf(op);
      (samples[name] ??= { stall: [], took: [] }).stall.push(r.stall);
      samples[name].took.push(r.took);
    }
  }
  const results = {};
  for (const [name, s] of Object.entries(samples)) results[name] = { stall: median(s.stall), took: median(s.took) };
  table(
    `JS-thread stall (${a.detectAllocator().name}), main-arena heap with ${mi.ordblks} free chunks, JS thread allocating; median of ${trials}`,
    rows,
    results,
    {
      'await trim()': ['bare malloc_trim(0) (threadpool)', TARGET.trimStall, TARGET.trimWall],
      [AFTER_SAMPLE]: ['bare malloc_trim(0) (threadpool)', TARGET.trimStall, TARGET.trimWall],
      'await allocatorStats()': ['bare mallinfo2() (threadpool)', TARGET.statsStall],
      'await allocatorStats({ releasable: false })': ['bare mallinfo2() (threadpool)', TARGET.statsStall],
    },
  );
  // What is left once the threadpool round trip both pay is taken out: the work itself.
  const floor = results[FLOOR].took;
  const bare = results['bare malloc_trim(0) (threadpool)'].took;
  const beyond = (x) => `${(x - floor).toFixed(2)} ms (${ratio(Math.max(x - floor, 0), Math.max(bare - floor, 0.001))})`;
  console.log(`wall beyond the scheduling floor (${floor.toFixed(2)} ms): bare malloc_trim(0) ${(bare - floor).toFixed(2)} ms, ` +
    `await trim() ${beyond(results['await trim()'].took)}, ${AFTER_SAMPLE} ${beyond(results[AFTER_SAMPLE].took)}; ` +
    `malloc_trim(0) inside trim() ${median(trimInside).toFixed(2)} ms; the rest is statm twice and, without a recent sample, ` +
    'the arena residency gauged after the trim');
  if (kept.length === 0) collect();
}

// One trial in this (fresh) process: a bare walk and the library's very first call, in the
// order given (trials alternate it, so neither gains from running second).
async function firstTrial(bareFirst) {
  const kept = await heap();
  let bare;
  if (bareFirst) bare = await stallOf(() => binding.glibcMallinfo());
  const first = await stallOf(() => a.allocatorStats());
  if (!bareFirst) bare = await stallOf(() => binding.glibcMallinfo());
  process.stdout.write(JSON.stringify({ bare, first }) + '\n');
  if (kept.length === 0) collect();
}

function first() {
  const trials = 5;
  const bare = { stall: [], took: [] };
  const ours = { stall: [], took: [] };
  for (let i = 0; i < trials; i++) {
    const out = execFileSync(process.execPath, [__filename, 'first-trial', i % 2 ? 'bare-second' : 'bare-first'], { encoding: 'utf8' });
    const r = JSON.parse(out.trim().split('\n').pop());
    bare.stall.push(r.bare.stall), bare.took.push(r.bare.took);
    ours.stall.push(r.first.stall), ours.took.push(r.first.took);
  }
  const results = {
    'bare mallinfo2() (threadpool)': { stall: median(bare.stall), took: median(bare.took) },
    'first await allocatorStats() in a process': { stall: median(ours.stall), took: median(ours.took) },
  };
  table(
    `First call in a process (${FREE_CHUNKS} small free chunks made first), one fresh process per trial; median of ${trials}`,
    Object.keys(results).map((name) => [name]),
    results,
    { 'first await allocatorStats() in a process': ['bare mallinfo2() (threadpool)', TARGET.statsStall] },
  );
}

const which = process.argv[2];
if (which === 'cost') cost();
else if (which === 'stall') stall();
else if (which === 'first') first();
else if (which === 'first-trial') firstTrial(process.argv[3] !== 'bare-second');
else {
  // Each in a fresh process.
  for (const c of ['cost', 'stall', 'first']) {
    execFileSync(process.execPath, [__filename, c], { stdio: 'inherit' });
  }
}
