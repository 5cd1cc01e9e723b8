'use strict';
// Workloads that make an allocator hold memory back, shared by the demo, tests and benchmarks.
//
// churn(): worker threads allocate many small Buffers (written, so their pages are really
// resident under every allocator), keep them alive together, then drop them and collect.
// Each worker thread gets its own glibc arena, so the freed memory is spread over arenas.
const { Worker, isMainThread, parentPort, workerData } = require('node:worker_threads');
const v8 = require('node:v8');
const vm = require('node:vm');

// --expose-gc at run time, so callers need no flags. Set once, on the main thread, before
// any worker starts: V8 flags are process-wide and not safe to change from several threads.
// Isolates created afterwards (workers) get a global gc().
if (isMainThread) v8.setFlagsFromString('--expose-gc');

function collect() {
  const gc = typeof globalThis.gc === 'function' ? globalThis.gc : vm.runInNewContext('gc');
  // Forced full GCs run the weak callbacks that free native objects (zlib streams, say) before
  // they return; a second one collects what the first one's callbacks let go.
  gc();
  gc();
  // Their background threads are still returning freed pages to the OS afterwards (3.5 MiB
  // within 10 ms of a zlib storm here, later on a busy machine), and whatever measures RSS next
  // would count them as its own. The collection V8 runs under memory pressure waits for them;
  // it posts its own weak callbacks as tasks, so it comes last, with nothing left to collect.
  gc({ type: 'major', execution: 'sync', flavor: 'last-resort' });
}

function fill(bytes, minSize, maxSize, seed) {
  const held = [];
  let total = 0;
  let x = seed >>> 0 || 1;
  while (total < bytes) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    const size = minSize + (x % (maxSize - minSize + 1));
    // allocUnsafe so that fill() below is the only write, and pooling is off (> 4 KiB pool
    // slices are real allocations; smaller ones still write distinct pool pages).
    const b = Buffer.allocUnsafeSlow(size);
    b.fill(x & 0xff);
    held.push(b);
    total += size;
  }
  return held;
}

if (!isMainThread && workerData && workerData.kind === 'churn') {
  const { bytes, minSize, maxSize, seed, keepAlive } = workerData;
  let held = fill(bytes, minSize, maxSize, seed);
  parentPort.postMessage('filled');
  // Hold everything until every worker has filled: a worker that dropped its Buffers and
  // exited first would hand its arena, freed memory and all, to a worker that starts after it.
  parentPort.once('message', () => {
    held.length = 0;
    held = null;
    collect();
    parentPort.postMessage('done');
    if (keepAlive) {
      // Stay alive and idle (like a pool worker) until told to exit.
      parentPort.once('message', () => process.exit(0));
    }
  });
}

/**
 * Runs `workers` threads that each allocate about `bytesPerWorker` in Buffers of
 * `minSize`..`maxSize` bytes and, once all have, drop and collect them. Resolves when all are done.
 * With keepAlive, the workers stay alive (idle) until the returned release() is called.
 */
async function churn({ workers = 8, bytesPerWorker = 160 << 20, minSize = 64, maxSize = 16384, keepAlive = false } = {}) {
  const threads = [];
  const exits = [];
  for (let i = 0; i < workers; i++) {
    const w = new Worker(__filename, {
      workerData: { kind: 'churn', bytes: bytesPerWorker, minSize, maxSize, seed: 0x9e3779b9 + i * 7919, keepAlive },
    });
    exits.push(new Promise((resolve) => w.once('exit', resolve)));
    threads.push(w);
  }
  // Each worker says 'filled', then 'done' once it has dropped and collected.
  const next = (w) =>
    new Promise((resolve, reject) => {
      const settle = (f, x) => {
        w.off('message', onMessage);
        w.off('error', onError);
        f(x);
      };
      const onMessage = (m) => settle(resolve, m);
      const onError = (e) => settle(reject, e);
      w.once('message', onMessage);
      w.once('error', onError);
    });
  try {
    await Promise.all(threads.map(next));
    const dropped = Promise.all(threads.map(next));
    for (const w of threads) w.postMessage('drop');
    await dropped;
  } catch (e) {
    // The others would wait for 'drop' (or 'exit') forever.
    await Promise.all(threads.map((w) => w.terminate()));
    throw e;
  }
  const release = () => {
    if (keepAlive) for (const w of threads) w.postMessage('exit');
    return Promise.all(exits);
  };
  if (!keepAlive) await release();
  return { release };
}

/**
 * Leaves about `chunks` free chunks in the main thread's heap (glibc: a fragmented main
 * arena, which makes mallinfo2()/malloc_info()/malloc_trim() walk every one of them).
 * Returns the Buffers still held, which keep the holes apart.
 */
function fragment({ chunks = 500000, size = 256 } = {}) {
  const all = [];
  for (let i = 0; i < chunks * 2; i++) {
    const b = Buffer.allocUnsafeSlow(size + (i % 64));
    b[0] = 1;
    all.push(b);
  }
  const kept = all.filter((_, i) => i % 2 === 1);
  all.length = 0;
  collect();
  return kept;
}

module.exports = { churn, fragment, collect };
