'use strict';
// Core benchmarks, each in a fresh process (node scripts/bench-core.js <case>):
//   cost   median cost per call of allocatorStatsSync() vs process.memoryUsage(), same process
//   stall  longest JS-thread stall of await allocatorStats()/trim() vs their Sync twins on a
//          heap with many free chunks, measured as the longest gap between ticks of a 1 ms
//          interval timer (perf_hooks.monitorEventLoopDelay under-reports single long blocks)
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const a = require(path.join(__dirname, '..', 'lib'));
const { fragment, collect } = require('./workload');

const { median, perCallNs } = require('./bench-util');

function cost() {
  const rounds = 31;
  const calls = 200;
  const base = [];
  const ours = [];
  const oursNoRel = [];
  // Warm up both, then interleave rounds so machine noise hits both alike.
  perCallNs(() => process.memoryUsage(), 1000);
  perCallNs(() => a.allocatorStatsSync(), 1000);
  for (let r = 0; r < rounds; r++) {
    base.push(perCallNs(() => process.memoryUsage(), calls));
    ours.push(perCallNs(() => a.allocatorStatsSync(), calls));
    oursNoRel.push(perCallNs(() => a.allocatorStatsSync({ releasable: true }), calls));
  }
  const b = median(base);
  const o = median(ours);
  const n = median(oursNoRel);
  const allocator = a.detectAllocator().name;
  console.log(`stats cost (${allocator}, fresh process, median of ${rounds} rounds x ${calls} calls)`);
  console.log(`  process.memoryUsage()                      ${(b / 1000).toFixed(1)} us   1.00x (baseline)`);
  console.log(`  allocatorStatsSync()                       ${(o / 1000).toFixed(1)} us   ${(o / b).toFixed(2)}x  (target <= 5x)`);
  console.log(`  allocatorStatsSync({ releasable: true })   ${(n / 1000).toFixed(1)} us   ${(n / b).toFixed(2)}x  (adds the malloc_info walk)`);
  return { ratio: o / b };
}

// Longest gap between ticks of a 1 ms interval while `op` runs.
async function stallOf(op) {
  let last = performance.now();
  let worst = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    worst = Math.max(worst, now - last);
    last = now;
  }, 1);
  await new Promise((r) => setTimeout(r, 20));
  worst = 0;
  last = performance.now();
  const started = performance.now();
  await new Promise((resolve, reject) => {
    setTimeout(() => {
      Promise.resolve()
        .then(op)
        .then(resolve, reject);
    }, 2);
  });
  const took = performance.now() - started;
  await new Promise((r) => setTimeout(r, 10));
  clearInterval(timer);
  // A 1 ms timer ticks about every 1 ms; anything above is the stall.
  return { stall: worst, took };
}

async function stall() {
  const chunks = Number(process.env.BENCH_FREE_CHUNKS || 1000000);
  const kept = fragment({ chunks });
  // Let the sweeper finish with the dropped Buffers before measuring.
  await new Promise((r) => setTimeout(r, 500));
  const mi = a.glibc.mallinfo2Sync();
  console.log(`JS-thread stall (${a.detectAllocator().name}), heap with ${mi.ordblks} free chunks (target: async <= 2 ms where sync >= 30 ms)`);
  const trials = 9;
  const rows = [
    // The noise floor of this machine: the same timer with nothing blocking it.
    ['idle (await 30 ms sleep)', () => new Promise((r) => setTimeout(r, 30))],
    ['allocatorStatsSync({ releasable: true })', () => a.allocatorStatsSync({ releasable: true })],
    ['await allocatorStats()', () => a.allocatorStats()],
    ['trimSync()', () => a.trimSync()],
    ['await trim()', () => a.trim()],
  ];
  const results = {};
  for (const [name, op] of rows) {
    const stalls = [];
    const took = [];
    for (let i = 0; i < trials; i++) {
      const r = await stallOf(op);
      stalls.push(r.stall);
      took.push(r.took);
    }
    results[name] = median(stalls);
    console.log(`  ${name.padEnd(42)} longest tick gap ${median(stalls).toFixed(1).padStart(6)} ms  (call took ${median(took).toFixed(1)} ms; median of ${trials})`);
  }
  console.log(
    `  ratio async/sync: stats ${(results['await allocatorStats()'] / results['allocatorStatsSync({ releasable: true })']).toFixed(3)}x, ` +
      `trim ${(results['await trim()'] / results['trimSync()']).toFixed(3)}x`,
  );
  if (kept.length === 0) collect();
}

const which = process.argv[2];
if (which === 'cost') cost();
else if (which === 'stall') stall();
else {
  // Both, each in a fresh process.
  for (const c of ['cost', 'stall']) {
    execFileSync(process.execPath, [__filename, c], { stdio: 'inherit' });
  }
}
