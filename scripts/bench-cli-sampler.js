#!/usr/bin/env node
'use strict';
// node scripts/bench-cli-sampler.js [--seconds 10] [--rounds 3] [--heap-mib 200]
// What the sampler that `allocator-stats run` injects costs a Node program, two ways:
// 1. per sample: the CPU time (all threads, process.cpuUsage()) of 200 samples taken back to
//    back by the sampler's own code, in a program holding --heap-mib in small Buffers (so the
//    allocator's walk has something to walk), divided by the interval: the share of one core;
// 2. end to end: the program's CPU time with and without the sampler, at the default interval
//    and at 100 ms, interleaved rounds (noisier on a shared machine: other load moves it).
// The program is a small server-like loop (a timer that allocates and frees Buffers).
const { spawn } = require('node:child_process');
const path = require('node:path');
const { parseArgs } = require('node:util');

const CLI = path.join(__dirname, '..', 'lib', 'cli', 'main.js');

function holdHeap(heapMib) {
  const held = [];
  for (let total = 0; total < heapMib << 20; total += 4096) held.push(Buffer.alloc(2048 + (total % 4096)).fill(1));
  return held;
}

if (process.argv[2] === '--per-sample') {
  const heapMib = Number(process.argv[3]);
  const held = holdHeap(heapMib);
  const { createWireSampler } = require(path.join(__dirname, '..', 'lib', 'cli', 'sampler.js'));
  const sampler = createWireSampler();
  const N = 200;
  (async () => {
    for (let i = 0; i < 10; i++) JSON.stringify(await sampler.sample()); // warm up
    const start = process.cpuUsage();
    for (let i = 0; i < N; i++) JSON.stringify(await sampler.sample());
    const u = process.cpuUsage(start);
    process.stdout.write(`${JSON.stringify({ cpuMsPerSample: (u.user + u.system) / 1000 / N, held: held.length })}\n`);
  })();
  return;
}

if (process.argv[2] === '--program') {
  const seconds = Number(process.argv[3]);
  const heapMib = Number(process.argv[4]);
  const held = holdHeap(heapMib);
  const start = process.cpuUsage();
  const t0 = Date.now();
  const timer = setInterval(() => {
    for (let i = 0; i < 50; i++) Buffer.allocUnsafeSlow(1024 + i * 64).fill(i);
  }, 10);
  setTimeout(() => {
    clearInterval(timer);
    const u = process.cpuUsage(start);
    process.stdout.write(`${JSON.stringify({ cpuMs: (u.user + u.system) / 1000, wallMs: Date.now() - t0, held: held.length })}\n`);
  }, seconds * 1000);
  return;
}

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '10' }, rounds: { type: 'string', default: '3' }, 'heap-mib': { type: 'string', default: '200' } } });
const seconds = Number(values.seconds);
const rounds = Number(values.rounds);
const heapMib = Number(values['heap-mib']);

function perSample() {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [__filename, '--per-sample', String(heapMib)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.on('close', (code) => (code === 0 ? resolve(JSON.parse(out.trim())) : reject(new Error(`exit ${code}`))));
  });
}

function once(mode) {
  const program = [process.execPath, __filename, '--program', String(seconds), String(heapMib)];
  const args = mode === 'plain' ? program : [CLI, 'run', '--quiet', '--interval', mode, '--', ...program];
  return new Promise((resolve, reject) => {
    const child = spawn(mode === 'plain' ? args[0] : process.execPath, mode === 'plain' ? args.slice(1) : args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.on('close', (code) => (code === 0 ? resolve(JSON.parse(out.trim().split('\n').pop())) : reject(new Error(`exit ${code}`))));
  });
}

const median = (v) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];

(async () => {
  const per = [];
  for (let r = 0; r < rounds; r++) per.push((await perSample()).cpuMsPerSample);
  const cpu = median(per);
  console.log(`CPU per sample (median of ${rounds} × 200 samples): ${cpu.toFixed(3)} ms → ${(cpu / 10).toFixed(3)} % of a core at the default 1000 ms interval, ${cpu.toFixed(2)} % at 100 ms.\n`);
  const modes = ['plain', '1000', '100'];
  const share = Object.fromEntries(modes.map((m) => [m, []]));
  for (let r = 0; r < rounds; r++) {
    for (const m of modes) {
      const x = await once(m);
      share[m].push(x.cpuMs / x.wallMs);
    }
  }
  const base = median(share.plain);
  console.log(`| program CPU (share of one core) | median of ${rounds} | extra over no sampler |`);
  console.log('|---|---:|---:|');
  for (const m of modes) {
    const label = m === 'plain' ? 'no sampler' : `sampler every ${m} ms`;
    const extra = m === 'plain' ? '' : `${((median(share[m]) - base) * 100).toFixed(2)} % of a core`;
    console.log(`| ${label} | ${(median(share[m]) * 100).toFixed(2)} % | ${extra} |`);
  }
  console.log(`\n${seconds} s per run, ${heapMib} MiB held in small Buffers, Node ${process.version}.`);
})();
