#!/usr/bin/env node
'use strict';
// Auto-trim under load: an HTTP server on 127.0.0.1 whose requests churn memory on a pool of
// 4 worker threads (so glibc spreads it over arenas and holds it back), driven at a fixed
// rate by a load generator in another process. The load has a peak that passes: after a
// warm-up, `--peak` seconds in which 1 request in 100 allocates 128 MiB (a report, an export),
// then light requests only (256 KiB each). Two servers run side by side in the same run, one
// without and one with startAutoTrim() (defaults unless --interval), each with its own load
// generator: p50/p99 latency over every request after the warm-up (from the load generator),
// and steady RSS, the median over the last `--steady` seconds (read from /proc/<pid>/status by
// this process, so measuring costs the servers nothing).
//
//   node scripts/bench-autotrim.js [--seconds 45] [--peak 10] [--steady 12] [--rate 200] [--interval ms] [--json]
//
// One file, three roles: the orchestrator (default), --role server, --role load.
const { fork } = require('node:child_process');
const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const { Worker, isMainThread, parentPort, workerData } = require('node:worker_threads');

const LIB = path.join(__dirname, '..', 'lib', 'index.js');
const MiB = 1024 * 1024;
const HEAVY_BYTES = Number(process.env.BENCH_HEAVY_MIB || 128) * MiB;

function arg(name, fallback) {
  const at = process.argv.indexOf(`--${name}`);
  return at >= 0 ? process.argv[at + 1] : fallback;
}

// ---------------------------------------------------------------- worker thread: the job
// Each job allocates `bytes` in small Buffers (written, so they are resident), reduces them
// to a checksum and drops them. One Buffer of each job survives for a while, as a cache entry
// would; a big job's last Buffer (near the top of its arena) pins the top, so glibc cannot
// shrink the arena by itself and holds the rest back: the usual story of a glibc heap.
if (!isMainThread && workerData && workerData.role === 'job') {
  const ring = new Array(512).fill(null);
  const reports = [];
  let ringAt = 0;
  let x = workerData.seed >>> 0 || 1;
  parentPort.on('message', ({ id, bytes }) => {
    const held = [];
    let total = 0;
    let sum = 0;
    while (total < bytes) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      x >>>= 0;
      const size = 256 + (x % 16128);
      const b = Buffer.allocUnsafeSlow(size);
      b.fill(x & 0xff);
      sum = (sum + b[size >> 1]) | 0;
      held.push(b);
      total += size;
    }
    if (bytes >= MiB) {
      reports.push(held[held.length - 1]);
      if (reports.length > 64) reports.shift();
    } else {
      ring[ringAt] = held[held.length >> 1];
      ringAt = (ringAt + 1) % ring.length;
    }
    parentPort.postMessage({ id, sum });
  });
}

// ---------------------------------------------------------------- server
async function server() {
  const workers = Number(process.env.BENCH_WORKERS || 4);
  const pool = [];
  const pending = new Map();
  let nextId = 0;
  let turn = 0;
  for (let i = 0; i < workers; i++) {
    const w = new Worker(__filename, { workerData: { role: 'job', seed: 0x9e3779b9 + i * 7919 } });
    const entry = { w, busy: 0 };
    w.on('message', ({ id, sum }) => {
      entry.busy--;
      const done = pending.get(id);
      pending.delete(id);
      done(sum);
    });
    pool.push(entry);
  }
  const run = (bytes) =>
    new Promise((resolve) => {
      // Least busy worker, ties taken in turn: a heavy job does not queue small ones behind
      // it when another worker is free, and every worker (every arena) gets its share.
      let best = null;
      for (let k = 0; k < pool.length; k++) {
        const e = pool[(turn + k) % pool.length];
        if (best === null || e.busy < best.busy) best = e;
      }
      turn = (turn + 1) % pool.length;
      best.busy++;
      const id = nextId++;
      pending.set(id, resolve);
      best.w.postMessage({ id, bytes });
    });

  let trimmer = null;
  const trims = [];
  const lib = require(LIB);
  if (process.env.BENCH_AUTOTRIM === '1') {
    trimmer = lib.startAutoTrim(process.env.BENCH_INTERVAL_MS ? { intervalMs: Number(process.env.BENCH_INTERVAL_MS) } : undefined);
    trimmer.on('trim', (r) => trims.push({ at: Date.now() - r.time, time: r.time, durationMs: r.durationMs, releasedBytes: r.releasedBytes }));
  }

  const srv = http.createServer(async (req, res) => {
    const heavy = req.url.startsWith('/heavy');
    const sum = await run(heavy ? HEAVY_BYTES : 256 * 1024);
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end(String(sum));
  });
  srv.keepAliveTimeout = 30000;
  srv.listen(0, '127.0.0.1', () => process.send({ port: srv.address().port }));
  process.on('message', async (m) => {
    if (m === 'report') {
      const s = await lib.allocatorStats({ releasable: false });
      process.send({ report: { trims, totals: trimmer ? trimmer.totals() : null, heldBack: s.heldBack, allocated: s.allocated } });
    } else if (m === 'exit') {
      process.exit(0);
    }
  });
}

// ---------------------------------------------------------------- load generator
// Open loop at a fixed rate (no coordinated omission: a slow response does not delay the
// next request), over a few keep-alive connections, bounded in requests and time.
async function load() {
  const port = Number(arg('port'));
  const rate = Number(arg('rate', 200));
  const seconds = Number(arg('seconds', 40));
  const warmup = Number(arg('warmup', 5));
  const peak = Number(arg('peak', 10));
  const heavyEvery = 100;
  const maxInFlight = 64;
  const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
  const latencies = [];
  const slow = [];
  let sent = 0;
  let errors = 0;
  let dropped = 0;
  let inFlight = 0;
  const total = Math.round(rate * (seconds + warmup));
  const start = performance.now();
  const measureFrom = start + warmup * 1000;
  const peakUntil = measureFrom + peak * 1000;

  const one = (n) => {
    inFlight++;
    const t0 = performance.now();
    const req = http.get({ host: '127.0.0.1', port, path: t0 >= measureFrom && t0 < peakUntil && n % heavyEvery === heavyEvery - 1 ? '/heavy' : '/small', agent }, (res) => {
      res.resume();
      res.on('end', () => {
        inFlight--;
        const ms = performance.now() - t0;
        if (t0 >= measureFrom) latencies.push(ms);
        if (ms > 20) slow.push([Date.now() - ms, Math.round(ms)]);
      });
    });
    req.on('error', () => {
      inFlight--;
      errors++;
    });
  };

  await new Promise((resolve) => {
    const tick = setInterval(() => {
      const due = Math.min(total, Math.floor(((performance.now() - start) / 1000) * rate));
      while (sent < due) {
        if (inFlight >= maxInFlight) dropped++;
        else one(sent);
        sent++;
      }
      if (sent >= total) {
        clearInterval(tick);
        resolve();
      }
    }, 2);
  });
  const deadline = Date.now() + 10000;
  while (inFlight > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  agent.destroy();
  latencies.sort((a, b) => a - b);
  const q = (p) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))];
  process.send({ result: { count: latencies.length, errors, dropped, p50: q(0.5), p99: q(0.99), max: latencies[latencies.length - 1], slow } });
}

// ---------------------------------------------------------------- orchestrator
function rssOf(pid) {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

function message(child, key) {
  return new Promise((resolve, reject) => {
    const on = (m) => {
      if (m && m[key] !== undefined) {
        child.off('message', on);
        resolve(m[key]);
      }
    };
    child.on('message', on);
    child.once('exit', (code) => reject(new Error(`${key}: child exited with ${code}`)));
  });
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[s.length >> 1] : null;
}

async function phase(autotrim, opts) {
  const srv = fork(__filename, ['--role', 'server'], {
    env: { ...process.env, BENCH_AUTOTRIM: autotrim ? '1' : '0', BENCH_INTERVAL_MS: opts.interval ? String(opts.interval) : '' },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const port = await message(srv, 'port');
  const samples = [];
  const started = performance.now();
  const sampler = setInterval(() => samples.push({ t: performance.now() - started, rss: rssOf(srv.pid) }), 200);
  const gen = fork(
    __filename,
    ['--role', 'load', '--port', String(port), '--rate', String(opts.rate), '--seconds', String(opts.seconds), '--warmup', String(opts.warmup), '--peak', String(opts.peak)],
    { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] },
  );
  const result = await message(gen, 'result');
  clearInterval(sampler);
  srv.send('report');
  const report = await message(srv, 'report');
  srv.send('exit');
  await new Promise((r) => srv.once('exit', r));
  // Steady RSS: the median over the last seconds of the run, long after the peak.
  const end = samples.length ? samples[samples.length - 1].t : 0;
  const tail = samples.filter((s) => s.t >= end - opts.steady * 1000 && s.rss !== null).map((s) => s.rss);
  return { ...result, steadyRss: median(tail), peakRss: Math.max(...samples.map((s) => s.rss ?? 0)), ...report };
}

async function main() {
  if (!fs.existsSync(LIB)) throw new Error('lib/ is missing: run `npx tsc -p tsconfig.build.json` first');
  const opts = {
    seconds: Number(arg('seconds', 45)),
    warmup: Number(arg('warmup', 5)),
    peak: Number(arg('peak', 10)),
    steady: Number(arg('steady', 12)),
    rate: Number(arg('rate', 200)),
    interval: arg('interval') ? Number(arg('interval')) : null,
  };
  // Both servers run at the same time, each with its own load generator: on a shared machine
  // whatever else runs slows both alike, so the ratios compare like with like.
  const [off, on] = await Promise.all([phase(false, opts), phase(true, opts)]);
  const mb = (b) => (b === null ? 'n/a' : `${(b / MiB).toFixed(0)} MiB`);
  const ms = (x) => `${x.toFixed(2)} ms`;
  const rows = [
    ['', 'requests', 'p50', 'p99', 'steady RSS', 'peak RSS', 'trims', 'released'],
    ['without auto-trim', off.count, ms(off.p50), ms(off.p99), mb(off.steadyRss), mb(off.peakRss), '-', '-'],
    [
      opts.interval ? `startAutoTrim({ intervalMs: ${opts.interval} })` : 'startAutoTrim()',
      on.count,
      ms(on.p50),
      ms(on.p99),
      mb(on.steadyRss),
      mb(on.peakRss),
      on.totals ? on.totals.trims : 'n/a',
      on.totals ? mb(on.totals.releasedBytes) : 'n/a',
    ],
  ];
  const ratios = { p50: on.p50 / off.p50, p99: on.p99 / off.p99, steadyRss: on.steadyRss / off.steadyRss };
  if (process.argv.includes('--json')) {
    console.log(JSON.stringify({ opts, off, on, ratios }, null, 2));
    return;
  }
  console.log(
    `auto-trim under HTTP load: ${opts.rate} req/s for ${opts.seconds} s after a ${opts.warmup} s warm-up; ` +
      `for the first ${opts.peak} s 1 request in 100 allocates ${HEAVY_BYTES / MiB} MiB, the rest 256 KiB, on 4 worker threads; ` +
      `steady RSS = median over the last ${opts.steady} s`,
  );
  rows.forEach((r, i) => {
    console.log(`| ${r.join(' | ')} |`);
    if (i === 0) console.log(`|${r.map(() => '---').join('|')}|`);
  });
  console.log(`ratios with/without: p50 ${ratios.p50.toFixed(2)}, p99 ${ratios.p99.toFixed(2)}, steady RSS ${ratios.steadyRss.toFixed(2)}`);
  console.log(
    `auto-trim cost: ${on.totals.samples} samples, ${on.totals.sampleTimeMs.toFixed(1)} ms sampling, ` +
      `${on.totals.trimTimeMs.toFixed(1)} ms trimming; skips ${JSON.stringify(on.totals.skips)}`,
  );
  if (off.errors || on.errors || off.dropped || on.dropped) {
    console.log(`errors ${off.errors}/${on.errors}, dropped (over 64 in flight) ${off.dropped}/${on.dropped}`);
  }
}

if (isMainThread) {
  const role = arg('role', 'main');
  const go = role === 'server' ? server : role === 'load' ? load : main;
  go().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
