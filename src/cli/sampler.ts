// Injected into a Node program by `allocator-stats run` (NODE_OPTIONS=--require …). On the main
// thread of the first Node process of the program (not a package manager that only starts it),
// it appends a sample every interval to the CLI's sample file.
// It never writes to the program's stdout/stderr, never keeps the program alive, and takes the
// allocator's walk off the JS thread (allocatorStats() runs it on the threadpool).
// Every Node process and thread of the program loads this file, so at top level it loads nothing
// of the package (only the protocol's names): the package, and with it the addon, is required
// only once this process has decided to sample. A process that cannot load the addon
// (--no-addons, the permission model) is left untouched and says so on the sample file.
import fs from 'node:fs';
import { performance } from 'node:perf_hooks';
import { isMainThread } from 'node:worker_threads';
import type { MemoryStats, TrimResult } from '../types';
import { ENV_CLAIMED, ENV_INTERVAL, ENV_SAMPLE_FILE, type WireMessage, type WireSample } from './protocol';

interface Package {
  detect: typeof import('../api/detect');
  stats: typeof import('../api/stats');
  trim: typeof import('../api/trim');
  procstatus: typeof import('./procstatus');
}

/**
 * Requires the package's modules, which load nothing native: the addon loads at the first
 * detectAllocator(), which start() calls in the same try and reports what it threw.
 */
function loadPackage(): Package {
  /* eslint-disable @typescript-eslint/no-require-imports */
  return {
    detect: require('../api/detect') as Package['detect'],
    stats: require('../api/stats') as Package['stats'],
    trim: require('../api/trim') as Package['trim'],
    procstatus: require('./procstatus') as Package['procstatus'],
  };
  /* eslint-enable @typescript-eslint/no-require-imports */
}

/**
 * One sample in the wire format: allocatorStats() (its walk on the threadpool), VmHWM and the
 * thread count from /proc/self/status, and the event-loop utilisation since the previous one.
 * Exported so that scripts/bench-cli-sampler.js measures exactly what the sampler does.
 */
export function createWireSampler(pkg: Package = loadPackage()): { sample(): Promise<WireSample>; sampleSync(): WireSample } {
  const { allocatorStats, allocatorStatsSync } = pkg.stats;
  const { readStatus } = pkg.procstatus;
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
  let pkg: Package;
  let info: ReturnType<Package['detect']['detectAllocator']>;
  try {
    pkg = loadPackage();
    info = pkg.detect.detectAllocator();
  } catch (error) {
    // Silent in the program: the CLI samples it from outside and says why.
    const e = error as Error & { code?: string; cause?: unknown };
    const reason = (e.cause instanceof Error ? e.cause : e).message.split('\n')[0];
    try {
      fs.writeSync(fd, `${JSON.stringify({ type: 'unavailable', pid: process.pid, argv: process.argv, error: e.code ? `${e.code}: ${reason}` : reason } satisfies WireMessage)}\n`);
      fs.closeSync(fd);
    } catch {
      // The CLI is gone.
    }
    return;
  }
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

  const sampler = createWireSampler(pkg);

  let backgroundThread: boolean | null = null;
  try {
    const first = pkg.stats.allocatorStatsSync();
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

  pkg.trim.trimEvents.on('trim', (r: TrimResult) => send({ type: 'trim', time: r.time, releasedBytes: r.releasedBytes }));

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
    return; // the CLI is gone, or the program may not write files (permission model): sampled from outside
  }
  start(fd, interval);
}

activate();
