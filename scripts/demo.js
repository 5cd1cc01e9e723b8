#!/usr/bin/env node
'use strict';
// npm run demo [-- --workers N --mib M]
// Worker threads allocate and write many small Buffers, then drop them. The allocator keeps
// much of that memory; the table shows how much, and what trim() gives back to the OS.
const path = require('node:path');
const { parseArgs } = require('node:util');
const { allocatorStats, detectAllocator, trim } = require(path.join(__dirname, '..', 'lib'));
const { churn } = require('./workload');

function usage(problem) {
  console.error(`${problem}\nusage: npm run demo -- [--workers 1..64] [--mib 1..4096]`);
  process.exit(2);
}

let values;
try {
  ({ values } = parseArgs({
    options: {
      workers: { type: 'string', default: '8' },
      mib: { type: 'string', default: '160' },
    },
  }));
} catch (error) {
  // Unknown options and missing values (e.g. --worker 2, --mib with no number).
  usage(error.message);
}
const workers = Number(values.workers);
const mib = Number(values.mib);
if (!Number.isInteger(workers) || workers < 1 || workers > 64) usage(`--workers must be a whole number from 1 to 64, not ${values.workers}`);
if (!Number.isInteger(mib) || mib < 1 || mib > 4096) usage(`--mib must be a whole number from 1 to 4096, not ${values.mib}`);

const fmt = (bytes) => (bytes === null || bytes === undefined ? 'unknown' : `${(bytes / 1048576).toFixed(1)} MiB`);

function row(label, values) {
  return `  ${label.padEnd(26)}${values.map((v) => v.padStart(16)).join('')}`;
}

async function main() {
  const info = detectAllocator();
  console.log(`allocator: ${info.name}${info.version ? ` ${info.version}` : ''} (${info.method})`);
  for (const note of info.notes) console.log(`  note: ${note}`);
  console.log(`workload: ${workers} worker threads each allocate and write ${mib} MiB of 64 B–16 KiB Buffers, then drop them\n`);

  const start = await allocatorStats();
  await churn({ workers, bytesPerWorker: mib * 1048576, minSize: 64, maxSize: 16384 });
  const loaded = await allocatorStats();
  const trimmed = await trim();
  const after = await allocatorStats();

  const columns = [start, loaded, after];
  console.log(row('', ['start', 'after workload', 'after trim()']));
  console.log(row('RSS', columns.map((s) => fmt(s.process.rss))));
  console.log(row('  anonymous (RssAnon)', columns.map((s) => fmt(s.process.rssAnon))));
  console.log(row('V8 heap used', columns.map((s) => fmt(s.v8.heapUsed))));
  console.log(row('allocated (malloc, in use)', columns.map((s) => fmt(s.allocated))));
  console.log(row('resident (allocator)', columns.map((s) => fmt(s.resident))));
  console.log(row('held back', columns.map((s) => fmt(s.heldBack))));
  console.log(row('releasable by trim', columns.map((s) => fmt(s.releasable))));
  console.log('');
  if (trimmed.supported) {
    console.log(
      `trim(): the OS got back ${fmt(trimmed.releasedBytes)} (RSS ${fmt(trimmed.rssBefore)} -> ${fmt(trimmed.rssAfter)}), ` +
        `in ${trimmed.durationMs.toFixed(1)} ms on the libuv threadpool; held back ${fmt(trimmed.heldBackBefore)} -> ${fmt(trimmed.heldBackAfter)}`,
    );
  } else {
    console.log(`trim(): not supported under ${trimmed.allocator.name}`);
  }
  for (const note of [...loaded.notes, ...trimmed.notes]) console.log(`  note: ${note}`);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
