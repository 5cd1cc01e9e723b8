#!/usr/bin/env node
'use strict';
// node scripts/churn-idle.js [workers] [mib per worker] [idle s]
// A program to compare allocators on: worker threads churn written 2–48 KiB Buffers, drop them
// and stay alive idle (like a worker pool between bursts), then exit. At exit it prints what
// /proc/self/status says (one `@@PROC {…}` line), so a report can be checked against the kernel.
const fs = require('node:fs');
const { churn } = require('./workload');

const [workers = 6, mib = 64, idleS = 6] = process.argv.slice(2).map(Number);

process.on('exit', () => {
  const text = fs.readFileSync('/proc/self/status', 'utf8');
  const kib = (k) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(text)[1]) * 1024;
  process.stdout.write(`@@PROC ${JSON.stringify({ rss: kib('VmRSS'), hwm: kib('VmHWM') })}\n`);
});

(async () => {
  const { release } = await churn({ workers, bytesPerWorker: mib << 20, minSize: 2048, maxSize: 49152, keepAlive: true });
  await new Promise((resolve) => setTimeout(resolve, idleS * 1000));
  await release();
})();
