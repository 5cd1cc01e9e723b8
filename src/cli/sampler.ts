// Injected into a Node program by `allocator-stats run` (NODE_OPTIONS=--require …). On the main
// thread of the first Node process of the program (not a package manager that only starts it),
// it appends a sample every interval to the CLI's sample file.
// It never writes to the program's stdout/stderr, never keeps the program alive, and takes the
// allocator's walk off the JS thread (allocatorStats() runs it on the threadpool).
import fs from 'node:fs';
import { performance } from 'node:perf_hooks';
import { isMainThread } from 'node:worker_threads';
import { detectAllocator } from '../detect';
import { allocatorStats, allocatorStatsSync } from '../stats';
import { trimEvents } from '../trim';
import type { MemoryStats, TrimResult } from '../types';
import { ENV_CLAIMED, ENV_INTERVAL, ENV_SAMPLE_FILE, type WireMessage, type WireSample } from './protocol';
import { readStatus } from './procstatus';

/**
 * One sample in the wire format: allocatorStats() (its walk on the threadpool), VmHWM and the
 * thread count from /proc/self/status, and the event-loop utilisation since the previous one.
 * Exported so that scripts/bench-cli-sampler.js measures exactly what the sampler does.
 */
export function createWireSampler(): { sample(): Promise<WireSample>; sampleSync(): WireSample } {
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
      arenas: typeof s.raw.arenas === 'number' ? s.raw.arenas : null,
      costMs,
    };
  };

  return {
    async sample() {
      const started = performance.now();
      const s = await allocatorStats();
      return toWire(s, performance.now() - started);
    },
    sampleSync() {
      const started = performance.now();
      return toWire(allocatorStatsSync({ releasable: true }), performance.now() - started);
    },
  };
}

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

  const sampler = createWireSampler();

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
    argv: process.argv,
    allocator: { name: info.name, version: info.version, library: info.library, notes: info.notes },
    backgroundThread,
  });

  let inFlight = false;
  const timer = setInterval(() => {
    if (inFlight) return;
    inFlight = true;
    sampler.sample().then(
      (sample) => {
        inFlight = false;
        send({ type: 'sample', sample });
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
      send({ type: 'exit', sample: sampler.sampleSync() });
    } catch {
      // Exiting anyway.
    }
  });
}

/** Package managers and launchers that start the real program as a child: sample that child instead. */
export const LAUNCHERS = /(^|[/\\])(npm-cli|npx-cli|npm|npx|yarn|yarn\.js|pnpm|pnpm\.cjs|pnpx|corepack)(\.c?js)?$/;

function activate(): void {
  const file = process.env[ENV_SAMPLE_FILE];
  const interval = Number(process.env[ENV_INTERVAL]);
  if (!isMainThread || !file || !(interval > 0) || process.env[ENV_CLAIMED]) return;
  if (LAUNCHERS.test(process.argv[1] ?? '')) return;
  process.env[ENV_CLAIMED] = String(process.pid);
  let fd: number;
  try {
    fd = fs.openSync(file, 'a');
  } catch {
    return; // the CLI is gone: nothing to report to
  }
  start(fd, interval);
}

activate();
