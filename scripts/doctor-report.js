'use strict';
// The memory doctor on the seed story, reproducible: a producer thread hands 64 KiB jobs to a
// slower consumer (a worker), a backlog builds up, production stops, the consumer drains it,
// and glibc keeps the freed memory. Prints the diagnosis as text (and as JSON with --json).
//
//   node scripts/doctor-report.js            # default thresholds: about 100 s
//   node scripts/doctor-report.js --quick    # 1 s grace, 5 s minimum window: about 20 s
//   node scripts/doctor-report.js --json     # the Diagnosis as JSON (parts left out)
const { Worker, isMainThread, parentPort } = require('node:worker_threads');

if (!isMainThread) {
  const pause = new Int32Array(new SharedArrayBuffer(4));
  parentPort.on('message', (job) => {
    Atomics.wait(pause, 0, 0, 4); // the consumer's work: 4 ms per job
    parentPort.postMessage(job.length);
  });
  return;
}

const path = require('node:path');
const { createMonitor, diagnose } = require(path.join(__dirname, '..', 'lib', 'index.js'));

const quick = process.argv.includes('--quick');
const asJson = process.argv.includes('--json');
const thresholds = quick ? { graceMs: 1000, minWindowMs: 5000 } : {};
// Idle long enough for the start-up grace period, produce, then idle after the drain.
const phaseMs = quick ? { before: 2000, produce: 5000, after: 4000 } : { before: 32000, produce: 30000, after: 30000 };
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const MiB = 1024 * 1024;
const mib = (b) => (b === null || b === undefined ? 'unknown' : `${(b / MiB).toFixed(1)} MiB`);

(async () => {
  const monitor = createMonitor({ intervalMs: quick ? 250 : 1000, budget: 0.01 });
  const worker = new Worker(__filename);
  let posted = 0;
  let done = 0;
  worker.on('message', () => done++);
  monitor.track('queue', () => posted - done);
  await sleep(phaseMs.before);
  // About 500 jobs (32 MB) a second in, 250 a second out.
  const end = Date.now() + phaseMs.produce;
  while (Date.now() < end) {
    for (let i = 0; i < 10; i++, posted++) worker.postMessage(Buffer.alloc(64 * 1024, posted & 0xff));
    await sleep(20);
  }
  const peak = posted - done;
  while (posted - done > 0) await sleep(100);
  await sleep(phaseMs.after);
  await worker.terminate();
  monitor.stop();

  const d = diagnose(monitor, thresholds);
  if (asJson) {
    process.stdout.write(`${JSON.stringify({ ...d, parts: `${d.parts.length} entries left out` }, null, 2)}\n`);
    return;
  }
  const t = monitor.totals();
  const last = d.parts[d.parts.length - 1];
  const lines = [
    `window: ${d.window.samples} samples over ${Math.round((d.window.end - d.window.start) / 1000)} s; ` +
      `peak queue ${peak} jobs; monitor cost ${(t.costShare * 100).toFixed(3)} % of a core (budget ${t.budget * 100} %)`,
    `last sample: RSS ${mib(last.rss)} = V8 heap ${mib(last.v8Heap)} + ArrayBuffers ${mib(last.arrayBuffers)} + ` +
      `malloc in use ${mib(last.nativeInUse)} + held back ${mib(last.heldBack)} + other ${mib(last.other)}`,
    '',
  ];
  for (const f of d.findings) {
    lines.push(`[${f.severity}] ${f.id}: ${f.title}`, `  ${f.summary}`, `  evidence: ${JSON.stringify(f.evidence)}`);
    for (const a of f.advice) lines.push(`  - ${a}`);
    lines.push('');
  }
  if (!d.findings.length) lines.push('no findings');
  for (const n of d.notes) lines.push(`note: ${n}`);
  process.stdout.write(`${lines.join('\n')}\n`);
})();
