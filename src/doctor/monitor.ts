// createMonitor(): samples the allocator, V8, the event loop and the cgroup every intervalMs
// into a ring buffer of windowMs, inside a budget of its own cost: after a sample that cost c ms
// the next waits at least c / budget ms, so a costly heap slows the monitor, not the program.
// Samples run on the libuv threadpool (allocatorStats()); timers are unref()ed. A monitor of
// another process (a StatsSource read through its agent) samples only what the agent reports:
// no event loop, GC or auto-trimmer of ours belongs to it.
import { performance, PerformanceObserver, type EventLoopUtilization } from 'node:perf_hooks';
import { autoTrimTotals } from '../autotrim';
import { allocatorIdentity } from '../allocators/identity';
import { DOCTOR_ENV_NAMES } from '../allocators/registry';
import { typeError, withCode } from '../core/errors';
import { SELF_SOURCE, type SourceStats, type StatsSource } from '../api/source';
import { trimEvents } from '../api/trim';
import type { TrimResult } from '../types';
import { MAX_DELAY_MS, scheduleNext, withinBudget } from '../core/budget';
import { optionalBoolean, optionalInteger, optionalNumber, optionsObject } from '../core/validate';
import { cgroupMemory } from './cgroup';
import type { DiagnoseContext, Monitor, MonitorOptions, MonitorSample, MonitorTotals } from './types';

// A sample cheaper than this is not worth the timer: intervals below it are refused.
export const MIN_MONITOR_INTERVAL_MS = 50;
export const DEFAULT_MONITOR_INTERVAL_MS = 5000;
const OPTIONS = ['intervalMs', 'windowMs', 'budget', 'releasable', 'signal'] as const;

interface Config {
  intervalMs: number;
  windowMs: number;
  budget: number;
  releasable: boolean;
  signal: AbortSignal | undefined;
}

/** The default window, and the fewest intervals a window spans by default (the fewest samples diagnose() judges). */
const DEFAULT_WINDOW_MS = 3_600_000;
const MIN_DEFAULT_WINDOW_INTERVALS = 12;

// `name` is the options' path in error messages (`options`, or `options.monitor` on the endpoint).
function configure(options: unknown, name: string): Config {
  const o = optionsObject<MonitorOptions>(options, name, OPTIONS);
  const signal = o.signal;
  if (signal !== undefined && !(signal instanceof AbortSignal)) throw typeError('an AbortSignal', `${name}.signal`, signal);
  const intervalMs = optionalInteger(o.intervalMs, `${name}.intervalMs`, DEFAULT_MONITOR_INTERVAL_MS, MIN_MONITOR_INTERVAL_MS, MAX_DELAY_MS);
  const defaultWindowMs = Math.max(DEFAULT_WINDOW_MS, MIN_DEFAULT_WINDOW_INTERVALS * intervalMs);
  return {
    intervalMs,
    windowMs: optionalInteger(o.windowMs, `${name}.windowMs`, defaultWindowMs, intervalMs),
    budget: optionalNumber(o.budget, `${name}.budget`, 0.001, Number.MIN_VALUE, 1),
    releasable: optionalBoolean(o.releasable, `${name}.releasable`, true),
    signal,
  };
}

function envContext(source: StatsSource): NonNullable<DiagnoseContext['env']> {
  const env: NonNullable<DiagnoseContext['env']> = {};
  const all = source.env();
  for (const name of DOCTOR_ENV_NAMES) {
    const v = all[name];
    if (v !== undefined) env[name] = v;
  }
  return env;
}

/**
 * A sample for the doctor. Without V8 figures (a program read through its agent, which is not
 * Node) the V8 parts are zero, not unknown, as `doctor PID` judges them: malloc in use is then
 * all native.
 */
export function toSample(stats: SourceStats, elu: number | null, extra: Partial<MonitorSample> = {}): MonitorSample {
  const v8 = stats.v8 ?? NO_V8;
  return {
    time: stats.time,
    rss: stats.process.rss,
    rssAnon: stats.process.rssAnon,
    heapUsed: v8.heapUsed,
    heapTotal: v8.heapTotal,
    external: v8.external,
    arrayBuffers: v8.arrayBuffers,
    allocated: stats.allocated,
    resident: stats.resident,
    heldBack: stats.heldBack,
    releasable: stats.releasable,
    elu,
    allocator: stats.allocator.name,
    arenas: typeof stats.raw.arenas === 'number' ? stats.raw.arenas : null,
    ...extra,
  };
}

const NO_V8 = { heapUsed: 0, heapTotal: 0, external: 0, arrayBuffers: 0 } as const;

class MemoryMonitor implements Monitor {
  readonly #config: Config;
  readonly #source: StatsSource;
  readonly #ring: MonitorSample[] = [];
  readonly #gauges = new Map<string, () => number>();
  #running = true;
  #inFlight: Promise<MonitorSample | null> | null = null;
  #timer: NodeJS.Timeout | undefined;
  #eluMark: EventLoopUtilization;
  #delay: number;
  #trimmed = 0;
  #trimSeen = false;
  #gcMs = 0;
  #gcObserver: PerformanceObserver | undefined;
  #lastSampleAt = -Infinity;
  #backgroundThread: boolean | null = null;
  readonly #startedAt = Date.now();
  readonly #startedPerf = performance.now();
  readonly #totals = { samples: 0, sampleTimeMs: 0, lastSampleMs: null as number | null, errors: 0, lastError: null as string | null };
  readonly #onTrim = (r: TrimResult): void => {
    this.#trimSeen = true;
    this.#trimmed += r.releasedBytes ?? 0;
  };
  readonly #onAbort = (): void => this.stop();

  constructor(config: Config, source: StatsSource) {
    this.#config = config;
    this.#source = source;
    this.#delay = config.intervalMs;
    this.#eluMark = performance.eventLoopUtilization();
    if (config.signal?.aborted) {
      this.#running = false;
      return;
    }
    config.signal?.addEventListener('abort', this.#onAbort, { once: true });
    if (source.self) {
      // Detection runs once per process: do it now rather than inside the first sample, whose cost
      // would otherwise stretch the interval after it far beyond what sampling really costs.
      allocatorIdentity();
      trimEvents.on('trim', this.#onTrim);
      // GC time costs nothing to collect: the entries arrive whether or not we sum them.
      this.#gcObserver = new PerformanceObserver((list) => {
        for (const e of list.getEntries()) this.#gcMs += e.duration;
      });
      this.#gcObserver.observe({ entryTypes: ['gc'] });
    }
    // The first sample right away, so a diagnosis has a start point.
    this.#timer = setTimeout(() => void this.#tick(), 0);
    this.#timer.unref();
  }

  get running(): boolean {
    return this.#running;
  }

  samples(): MonitorSample[] {
    return this.#ring.map((s) => ({ ...s, gauges: s.gauges ? { ...s.gauges } : undefined, cgroup: s.cgroup ? { ...s.cgroup } : s.cgroup }));
  }

  context(): DiagnoseContext {
    const source = this.#source;
    if (!source.self) {
      const { name, version } = source.allocator();
      return { allocator: { name, version }, env: envContext(source), threads: null, backgroundThread: this.#backgroundThread, autoTrim: null };
    }
    const auto = autoTrimTotals();
    return {
      allocator: allocatorIdentity(),
      env: envContext(source),
      threads: null,
      backgroundThread: this.#backgroundThread,
      autoTrim: auto ? auto.running : false,
    };
  }

  track(name: string, fn: () => number): this {
    if (typeof name !== 'string' || name === '') throw typeError('a non-empty string', 'name', name);
    if (typeof fn !== 'function') throw typeError('a function', 'fn', fn);
    this.#gauges.set(name, fn);
    return this;
  }

  untrack(name: string): this {
    if (typeof name !== 'string') throw typeError('a string', 'name', name);
    this.#gauges.delete(name);
    return this;
  }

  sampleNow(): Promise<MonitorSample | null> {
    if (!this.#running) return Promise.resolve(null);
    if (this.#inFlight) return this.#inFlight;
    if (!withinBudget(performance.now() - this.#lastSampleAt, this.#totals.lastSampleMs, this.#config.budget)) return Promise.resolve(null);
    return this.#take();
  }

  totals(): MonitorTotals {
    const elapsed = Math.max(1, performance.now() - this.#startedPerf);
    return {
      running: this.#running,
      startedAt: this.#startedAt,
      intervalMs: this.#delay,
      baseIntervalMs: this.#config.intervalMs,
      windowMs: this.#config.windowMs,
      ...this.#totals,
      costShare: this.#totals.sampleTimeMs / elapsed,
      budget: this.#config.budget,
    };
  }

  stop(): void {
    if (!this.#running) return;
    this.#running = false;
    clearTimeout(this.#timer);
    this.#gcObserver?.disconnect();
    trimEvents.off('trim', this.#onTrim);
    this.#config.signal?.removeEventListener('abort', this.#onAbort);
    if (current === this) current = null;
  }

  async #tick(): Promise<void> {
    if (!this.#running) return;
    await (this.#inFlight ?? this.#take());
    this.#schedule();
  }

  #schedule(): void {
    if (!this.#running) return;
    const next = scheduleNext(this.#timer, this.#config.intervalMs, this.#totals.lastSampleMs, this.#config.budget, () => void this.#tick());
    this.#timer = next.timer;
    this.#delay = next.delayMs;
  }

  #take(): Promise<MonitorSample | null> {
    const run = async (): Promise<MonitorSample | null> => {
      const started = performance.now();
      this.#lastSampleAt = started;
      const self = this.#source.self;
      const mark = performance.eventLoopUtilization();
      const elu = self ? performance.eventLoopUtilization(mark, this.#eluMark).utilization : null;
      this.#eluMark = mark;
      let stats: SourceStats;
      try {
        stats = await this.#source.stats({ releasable: this.#config.releasable });
      } catch (error) {
        this.#totals.errors++;
        this.#totals.lastError = error instanceof Error ? error.message : String(error);
        return null;
      }
      if (typeof stats.raw.backgroundThread === 'boolean') this.#backgroundThread = stats.raw.backgroundThread;
      const gauges: Record<string, number> = {};
      for (const [name, fn] of this.#gauges) {
        try {
          const v = fn();
          if (typeof v === 'number' && Number.isFinite(v)) gauges[name] = v;
        } catch {
          // A gauge that throws is left out of this sample (unknown), never recorded as 0.
        }
      }
      const sample = toSample(stats, elu, {
        gauges: this.#gauges.size ? gauges : undefined,
        // This process's cgroup: another process may live in another one.
        cgroup: self ? cgroupMemory() : null,
        trimmedBytes: this.#trimSeen ? this.#trimmed : null,
        gcMs: self ? this.#gcMs : null,
      });
      this.#trimmed = 0;
      this.#trimSeen = false;
      this.#gcMs = 0;
      const cost = performance.now() - started;
      this.#totals.samples++;
      this.#totals.sampleTimeMs += cost;
      this.#totals.lastSampleMs = cost;
      if (!this.#running) return null;
      this.#ring.push(sample);
      const oldest = sample.time - this.#config.windowMs;
      let drop = 0;
      while (drop < this.#ring.length && this.#ring[drop].time < oldest) drop++;
      if (drop) this.#ring.splice(0, drop);
      return sample;
    };
    this.#inFlight = run().finally(() => {
      this.#inFlight = null;
    });
    return this.#inFlight;
  }
}

let current: MemoryMonitor | null = null;

/**
 * Starts sampling memory over time for diagnose(). One monitor per thread: a second call
 * while one runs throws ERR_MONITOR_RUNNING (runningMonitor() returns the one running).
 */
export function createMonitor(options?: MonitorOptions): Monitor {
  return createMonitorAt(options, 'options');
}

/** Checks monitor options without starting a monitor; errors name `name`. */
export function checkMonitorOptions(options: unknown, name: string): void {
  configure(options, name);
}

/** createMonitor() with the options' path for error messages (the endpoint's `options.monitor`). */
export function createMonitorAt(options: unknown, name: string): Monitor {
  return createMonitorOf(SELF_SOURCE, options, name);
}

/**
 * A monitor of `source`. This process's is the thread's one monitor (runningMonitor()); one of
 * another process is not, and several may run.
 */
export function createMonitorOf(source: StatsSource, options: unknown, name: string): Monitor {
  const config = configure(options, name);
  if (!source.self) return new MemoryMonitor(config, source);
  if (current?.running) {
    throw withCode(new Error('A monitor is already running in this thread: stop() it, or use runningMonitor()'), 'ERR_MONITOR_RUNNING');
  }
  const m = new MemoryMonitor(config, source);
  if (m.running) current = m;
  return m;
}

/** The monitor running in this thread, or null. */
export function runningMonitor(): Monitor | null {
  return current?.running ? current : null;
}
