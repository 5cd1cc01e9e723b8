'use strict';
// Cost of a sample and of a trim under each allocator installed here, each in its own child
// process with the allocator preloaded. Every figure is a ratio against process.memoryUsage()
// measured in the same child (absolute timings on a shared machine mean little).
//   node scripts/bench-allocators.js            all allocators found, compact table
//   node scripts/bench-allocators.js child      one child (the allocator is whatever serves malloc)
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const LIB = path.join(__dirname, '..', 'lib', 'index.js');
const DIRS = ['/usr/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu', '/usr/lib64', '/usr/lib'];
// Every allocator of the registry, with the library to preload (null: nothing to preload).
const LIBRARIES = Object.fromEntries(require('../lib/allocators/registry').ALLOCATORS.map((a) => [a.name, a.libraries[0] ?? null]));

const { median, perCallNs } = require('./bench-util');

async function child() {
  const a = require(LIB);
  const { churn } = require('./workload');
  const name = a.detectAllocator().name;
  const rounds = 21;
  const calls = 200;
  const base = [];
  const stats = [];
  perCallNs(() => process.memoryUsage(), 1000);
  perCallNs(() => a.allocatorStatsSync(), 1000);
  for (let r = 0; r < rounds; r++) {
    base.push(perCallNs(() => process.memoryUsage(), calls));
    stats.push(perCallNs(() => a.allocatorStatsSync(), calls));
  }
  const out = { name, version: a.detectAllocator().version, baseNs: median(base), statsNs: median(stats) };

  if (name === 'jemalloc') {
    // Every sample refreshes the epoch: the cost the default 100 ms rate limit avoids.
    a.jemalloc.setEpochInterval(0);
    const fresh = [];
    const epoch = [];
    for (let r = 0; r < rounds; r++) {
      fresh.push(perCallNs(() => a.allocatorStatsSync(), calls / 4));
      epoch.push(a.allocatorStatsSync().raw.epochCostMs * 1e6);
    }
    out.statsEpochNs = median(fresh);
    out.epochNs = median(epoch);
    a.jemalloc.setEpochInterval(100);
  }

  // Trim on a churned heap (idle pool workers keep their memory), timed around trimSync().
  const trims = [];
  const released = [];
  for (let r = 0; r < 3; r++) {
    const { release } = await churn({ workers: 2, bytesPerWorker: 48 << 20, keepAlive: true });
    const t0 = process.hrtime.bigint();
    const t = a.trimSync();
    trims.push(Number(process.hrtime.bigint() - t0));
    released.push(t.releasedBytes ?? 0);
    await release();
  }
  out.trimNs = median(trims);
  out.releasedBytes = median(released);
  process.stdout.write(`@@RESULT@@${JSON.stringify(out)}\n`);
}

function find(file) {
  for (const dir of DIRS) {
    const p = path.join(dir, file);
    if (fs.existsSync(p)) return p;
  }
  return null;
}

function parent() {
  const rows = [];
  for (const [allocator, file] of Object.entries(LIBRARIES)) {
    const preload = file === null ? null : find(file);
    if (file !== null && preload === null) {
      console.log(`  ${allocator}: ${file} not installed, skipped`);
      continue;
    }
    const env = { ...process.env };
    delete env.LD_PRELOAD;
    if (preload) env.LD_PRELOAD = preload;
    // -r: worker threads inherit it, so each loads the addon (mimalloc collects per thread).
    const stdout = execFileSync(process.execPath, ['-r', LIB, __filename, 'child'], { env, encoding: 'utf8' });
    const at = stdout.lastIndexOf('@@RESULT@@');
    rows.push(JSON.parse(stdout.slice(at + '@@RESULT@@'.length)));
  }
  const us = (ns) => `${(ns / 1000).toFixed(1)} us`;
  const x = (ns, base) => `${(ns / base).toFixed(1)}x`;
  console.log('per-allocator cost, each in its own child, ratios against process.memoryUsage() in that child');
  console.log(
    `  ${'allocator'.padEnd(10)} ${'memoryUsage()'.padStart(13)} ${'allocatorStatsSync()'.padStart(22)} ` +
      `${'trimSync() on churned heap'.padStart(30)}  released`,
  );
  for (const r of rows) {
    console.log(
      `  ${r.name.padEnd(10)} ${us(r.baseNs).padStart(13)} ${`${us(r.statsNs)} ${x(r.statsNs, r.baseNs)}`.padStart(22)} ` +
        `${`${(r.trimNs / 1e6).toFixed(1)} ms ${x(r.trimNs, r.baseNs)}`.padStart(30)}  ${(r.releasedBytes / 1048576).toFixed(0)} MiB`,
    );
    if (r.epochNs !== undefined) {
      console.log(
        `  ${''.padEnd(10)} jemalloc epoch refresh alone: ${us(r.epochNs)} (${x(r.epochNs, r.baseNs)}); ` +
          `allocatorStatsSync() refreshing every call: ${us(r.statsEpochNs)} (${x(r.statsEpochNs, r.baseNs)})`,
      );
    }
  }
}

if (process.argv[2] === 'child') {
  child().catch((e) => {
    console.error(e);
    process.exitCode = 1;
  });
} else {
  parent();
}
