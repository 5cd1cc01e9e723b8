'use strict';
// What the doctor costs: one monitor sample (allocatorStats() with releasable, the cgroup read,
// gauges), and one diagnose() on a full default window (720 samples: one hour at 5 s), built
// from real samples of this process with their times spread out.
//
//   node scripts/bench-doctor.js
const path = require('node:path');
const { createMonitor, diagnose } = require(path.join(__dirname, '..', 'lib', 'index.js'));

const SAMPLES = 60;
const RUNS = 50;
const WINDOW = 720;
const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

(async () => {
  const monitor = createMonitor({ intervalMs: 50, budget: 1 });
  monitor.track('queue', () => 3);
  const costs = [];
  let seen = 0;
  while (seen < SAMPLES) {
    await new Promise((resolve) => setTimeout(resolve, 10));
    const t = monitor.totals();
    if (t.samples > seen) {
      seen = t.samples;
      costs.push(t.lastSampleMs);
    }
  }
  monitor.stop();
  const base = monitor.samples();
  const samples = Array.from({ length: WINDOW }, (_, i) => ({ ...base[i % base.length], time: base[0].time + i * 5000 }));
  const context = monitor.context();
  for (let i = 0; i < 10; i++) diagnose(samples, { context });
  const runs = [];
  for (let i = 0; i < RUNS; i++) {
    const t = performance.now();
    diagnose(samples, { context });
    runs.push(performance.now() - t);
  }
  const sample = median(costs.slice(1));
  console.log(`| | median | max |`);
  console.log(`|---|---|---|`);
  console.log(`| one monitor sample (${SAMPLES - 1} samples, ${context.allocator.name}) | ${sample.toFixed(2)} ms | ${Math.max(...costs.slice(1)).toFixed(2)} ms |`);
  console.log(`| diagnose() on ${WINDOW} samples (${RUNS} runs) | ${median(runs).toFixed(2)} ms | ${Math.max(...runs).toFixed(2)} ms |`);
  console.log(`\nAt the default 5 s interval one sample a median costs ${((sample / 5000) * 100).toFixed(3)} % of a core (budget 0.1 %).`);
})();
