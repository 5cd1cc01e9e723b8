// Injected into a Node program by `allocator-stats run` (NODE_OPTIONS=--require …). On the main
// thread of the CLI's direct child only, it sends a sample every interval on its own descriptor.
// It never writes to the program's stdout/stderr, never keeps the program alive, and takes the
// allocator's walk off the JS thread (allocatorStats() runs it on the threadpool).
import fs from 'node:fs';
import { performance } from 'node:perf_hooks';
import { isMainThread } from 'node:worker_threads';
import { detectAllocator } from '../detect';
import { allocatorStats, allocatorStatsSync } from '../stats';
import { trimEvents } from '../trim';
import type { MemoryStats, TrimResult } from '../types';
import { ENV_INTERVAL, ENV_PARENT_PID, ENV_SAMPLE_FD, type WireMessage, type WireSample } from './protocol';
import { readStatus } from './procstatus';

function start(fd: number, intervalMs: number): void {
  let broken = false;
  const send = (message: WireMessage): void => {
    if (broken) return;
    try {
      fs.writeSync(fd, `${JSON.stringify(message)}\n`);
    } catch {
      // The CLI went away: stop sampling, leave the program alone.
      broken = true;
      timer.unref();
      clearInterval(timer);
    }
  };

  let elu = performance.eventLoopUtilization();
  const toWire = (s: MemoryStats, costMs: number | null): WireSample => {
    const now = performance.eventLoopUtilization();
    const u = performance.eventLoopUtilization(now, elu).utilization;
    elu = now;
    const status = readStatus('self');
    return {
      time: s.time,
      rss: s.process.rss,
      rssAnon: s.process.rssAnon,
      rssFile: s.process.rssFile === null ? null : s.process.rssFile + (s.process.rssShmem ?? 0),
      peak: status?.peak ?? null,
      heapUsed: s.v8.heapUsed,
      heapTotal: s.v8.heapTotal,
      external: s.v8.external,
      arrayBuffers: s.v8.arrayBuffers,
      allocated: s.allocated,
      resident: s.resident,
      heldBack: s.heldBack,
      releasable: s.releasable,
      elu: Number.isFinite(u) ? u : null,
      threads: status?.threads ?? null,
      costMs,
    };
  };

  const info = detectAllocator();
  let backgroundThread: boolean | null = null;
  try {
    const first = allocatorStatsSync();
    const bg = first.raw['opt.background_thread'] ?? first.raw.backgroundThread ?? first.raw.background_thread;
    backgroundThread = typeof bg === 'boolean' ? bg : null;
  } catch {
    // The numbers are optional here; the periodic samples say the rest.
  }
  send({
    type: 'hello',
    pid: process.pid,
    allocator: { name: info.name, version: info.version, library: info.library, notes: info.notes },
    backgroundThread,
  });

  let inFlight = false;
  const timer = setInterval(() => {
    if (inFlight) return;
    inFlight = true;
    const started = performance.now();
    allocatorStats().then(
      (s) => {
        inFlight = false;
        send({ type: 'sample', sample: toWire(s, performance.now() - started) });
      },
      () => {
        inFlight = false;
      },
    );
  }, intervalMs);
  timer.unref();

  trimEvents.on('trim', (r: TrimResult) => send({ type: 'trim', time: r.time, releasedBytes: r.releasedBytes }));

  // The last word before the program exits: a synchronous sample (no event loop is left).
  process.on('exit', () => {
    try {
      const started = performance.now();
      send({ type: 'exit', sample: toWire(allocatorStatsSync({ releasable: true }), performance.now() - started) });
    } catch {
      // Exiting anyway.
    }
  });
}

const fd = Number(process.env[ENV_SAMPLE_FD]);
const interval = Number(process.env[ENV_INTERVAL]);
if (isMainThread && Number.isInteger(fd) && fd > 2 && Number(process.env[ENV_PARENT_PID]) === process.ppid && interval > 0) {
  start(fd, interval);
}
