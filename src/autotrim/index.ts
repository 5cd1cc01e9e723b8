// startAutoTrim(): a periodic trim a service can leave on. It trims only when a sample says
// enough memory would come back, never while the event loop is busy, backs off when trims
// return little, and keeps the cost of its own sampling within a budget by stretching its
// interval; trims are spaced so that the time spent inside them stays within a budget too.
// Samples and trims run on the libuv threadpool; trims go through trim(), so they
// never overlap with each other or with a caller's own trim(). What to do at each step is
// decide() in ./decide.ts, a pure function; this file keeps the timers, the GC observer,
// the totals and the events.
import { EventEmitter } from 'node:events';
import { PerformanceObserver, constants as perfConstants, performance, type EventLoopUtilization } from 'node:perf_hooks';
import { backendFor } from '../allocators/registry';
import { MAX_DELAY_MS, scheduleNext, withinBudget } from '../core/budget';
import { allocatorIdentity } from '../allocators/identity';
import { typeError, withCode } from '../core/errors';
import { allocatorStats } from '../api/stats';
import { trim } from '../api/trim';
import type { MemoryStats, TrimResult } from '../types';
import { optionalBoolean, optionalFunction, optionalInteger, optionalNumber, optionsObject } from '../core/validate';
import { INITIAL_STATE, SKIP_REASONS, decide, type Decision, type DecisionInput, type DecisionState, type SkipEvent, type SkipReason } from './decide';

export { SKIP_REASONS } from './decide';
export type { SkipEvent, SkipReason } from './decide';

const MiB = 1024 * 1024;
// After a major GC, wait for the sweep (and the frees it triggers) to settle before sampling.
const GC_SETTLE_MS = 1000;
// GC-triggered checks come at most this often, whatever the GC rate.
const GC_MIN_GAP_MS = 1000;

export interface AutoTrimOptions {
  /** Milliseconds between checks. Default 30000. Stretched when a sample costs more than the budget allows. */
  intervalMs?: number;
  /** Trim only when at least this many bytes would come back. Default 64 MiB. */
  minReleasableBytes?: number;
  /** Trim only when heldBack / resident is at least this. Default 0.25. */
  minHeldBackRatio?: number;
  /** Postpone while event-loop utilisation since the previous check is above this (0..1). Default 0.7. */
  maxBusy?: number;
  /** Also check shortly after a major GC (debounced). Default false. */
  afterGC?: boolean;
  /** Fraction of one core that sampling may use; the interval is stretched to stay within it. Default 0.005. */
  sampleBudget?: number;
  /**
   * Fraction of wall time that trims may take: a trim holds each arena's lock while it works,
   * stalling threads that allocate there, so after a trim of d ms the next waits d / trimBudget ms.
   * Default 0.005.
   */
  trimBudget?: number;
  /** Called with each TrimResult (as the 'trim' event). */
  onTrim?: (result: TrimResult) => void;
  /** Stops the trimmer when aborted. */
  signal?: AbortSignal;
}

export interface AutoTrimTotals {
  /** False once stop() was called or the signal aborted. */
  running: boolean;
  /** Current time between checks: intervalMs, or longer when the sampling budget requires it. */
  intervalMs: number;
  /** intervalMs as configured. */
  baseIntervalMs: number;
  /** When the trimmer started (milliseconds since the epoch). */
  startedAt: number;
  /** Checks that ended in a trim or a skip: checks = trims + the sum of skips. */
  checks: number;
  /** Trims the trimmer ran, the bytes they released (from RSS) and the time they took. */
  trims: number;
  skips: Record<SkipReason, number>;
  releasedBytes: number;
  trimTimeMs: number;
  /** Samples taken, what they cost in total, and what the last one cost. */
  samples: number;
  sampleTimeMs: number;
  lastSampleMs: number | null;
  /** 0 when not backing off; trims are at least intervalMs × 2^backoffLevel apart. */
  backoffLevel: number;
  lastTrim: TrimResult | null;
  lastSkip: { reason: SkipReason; time: number } | null;
}

/** The events an auto-trimmer emits, with the arguments their listeners receive. */
export interface AutoTrimEvents {
  /** A trim ran (also passed to options.onTrim). */
  trim: [result: TrimResult];
  /** A check ended without a trim; `reason` says why. */
  skip: [skip: SkipEvent];
}

type AutoTrimListener<E extends keyof AutoTrimEvents> = (...args: AutoTrimEvents[E]) => void;

/**
 * The handle startAutoTrim() returns: an EventEmitter whose typed methods accept only its
 * events ('trim', 'skip') with their listener signatures.
 */
export interface AutoTrimmer {
  /** False once stopped. */
  readonly running: boolean;
  /** A snapshot of what the trimmer has done so far. */
  totals(): AutoTrimTotals;
  /** Stops the trimmer. Idempotent. A trim already running finishes (and is counted) but emits nothing. */
  stop(): void;
  on<E extends keyof AutoTrimEvents>(event: E, listener: AutoTrimListener<E>): this;
  once<E extends keyof AutoTrimEvents>(event: E, listener: AutoTrimListener<E>): this;
  addListener<E extends keyof AutoTrimEvents>(event: E, listener: AutoTrimListener<E>): this;
  prependListener<E extends keyof AutoTrimEvents>(event: E, listener: AutoTrimListener<E>): this;
  prependOnceListener<E extends keyof AutoTrimEvents>(event: E, listener: AutoTrimListener<E>): this;
  off<E extends keyof AutoTrimEvents>(event: E, listener: AutoTrimListener<E>): this;
  removeListener<E extends keyof AutoTrimEvents>(event: E, listener: AutoTrimListener<E>): this;
  removeAllListeners(event?: keyof AutoTrimEvents): this;
  listenerCount(event: keyof AutoTrimEvents): number;
}

interface Config {
  intervalMs: number;
  minReleasableBytes: number;
  minHeldBackRatio: number;
  maxBusy: number;
  afterGC: boolean;
  sampleBudget: number;
  trimBudget: number;
  onTrim: ((result: TrimResult) => void) | undefined;
  signal: AbortSignal | undefined;
}

const OPTIONS = ['intervalMs', 'minReleasableBytes', 'minHeldBackRatio', 'maxBusy', 'afterGC', 'sampleBudget', 'trimBudget', 'onTrim', 'signal'] as const;

function configure(options: unknown): Config {
  const o = optionsObject<AutoTrimOptions>(options, 'options', OPTIONS);
  const signal = o.signal;
  if (signal !== undefined && !(signal instanceof AbortSignal)) throw typeError('an AbortSignal', 'options.signal', signal);
  return {
    intervalMs: optionalInteger(o.intervalMs, 'options.intervalMs', 30000, 50, MAX_DELAY_MS),
    minReleasableBytes: optionalInteger(o.minReleasableBytes, 'options.minReleasableBytes', 64 * MiB),
    minHeldBackRatio: optionalNumber(o.minHeldBackRatio, 'options.minHeldBackRatio', 0.25, 0, 1),
    maxBusy: optionalNumber(o.maxBusy, 'options.maxBusy', 0.7, 0, 1),
    afterGC: optionalBoolean(o.afterGC, 'options.afterGC', false),
    sampleBudget: optionalNumber(o.sampleBudget, 'options.sampleBudget', 0.005, Number.MIN_VALUE, 1),
    trimBudget: optionalNumber(o.trimBudget, 'options.trimBudget', 0.005, Number.MIN_VALUE, 1),
    onTrim: optionalFunction<(result: TrimResult) => void>(o.onTrim, 'options.onTrim'),
    signal,
  };
}

function emptySkips(): Record<SkipReason, number> {
  return Object.fromEntries(SKIP_REASONS.map((r) => [r, 0])) as Record<SkipReason, number>;
}

// A listener that throws must not stop the trimmer: its error surfaces as an uncaught
// exception, as it would from any EventEmitter listener, after the trimmer has moved on.
function rethrowLater(error: unknown): void {
  process.nextTick(() => {
    throw error;
  });
}

class Trimmer extends EventEmitter implements AutoTrimmer {
  readonly #config: Config;
  #running = true;
  #inFlight = false;
  #timer: NodeJS.Timeout | undefined;
  #gcTimer: NodeJS.Timeout | undefined;
  #observer: PerformanceObserver | undefined;
  #eluMark: EventLoopUtilization;
  #delay: number;
  #lastCheckAt = 0;
  #lastSampleAt = 0;
  #state: DecisionState = INITIAL_STATE;
  readonly #totals: Omit<AutoTrimTotals, 'running' | 'intervalMs' | 'checks' | 'skips'> & { skips: Record<SkipReason, number> };
  readonly #onAbort = (): void => this.stop();

  constructor(config: Config) {
    super();
    this.#config = config;
    this.#delay = config.intervalMs;
    this.#eluMark = performance.eventLoopUtilization();
    this.#totals = {
      baseIntervalMs: config.intervalMs,
      startedAt: Date.now(),
      trims: 0,
      skips: emptySkips(),
      releasedBytes: 0,
      trimTimeMs: 0,
      samples: 0,
      sampleTimeMs: 0,
      lastSampleMs: null,
      backoffLevel: 0,
      lastTrim: null,
      lastSkip: null,
    };
    if (config.signal) {
      if (config.signal.aborted) {
        this.#running = false;
        return;
      }
      config.signal.addEventListener('abort', this.#onAbort, { once: true });
    }
    if (!backendFor(allocatorIdentity().name).canTrim) {
      // Nothing a trim could do: say so once, after the caller has attached its listeners.
      setImmediate(() => {
        if (!this.#running) return;
        const name = allocatorIdentity().name;
        this.#skip({ reason: 'unsupported', time: Date.now(), message: `${name} has nothing a trim can give back: auto-trim does nothing` });
      }).unref();
      return;
    }
    if (config.afterGC) this.#observeGC();
    this.#schedule();
  }

  get running(): boolean {
    return this.#running;
  }

  totals(): AutoTrimTotals {
    const t = this.#totals;
    const skips = { ...t.skips };
    const skipped = Object.values(skips).reduce((a, b) => a + b, 0);
    return {
      running: this.#running,
      intervalMs: this.#delay,
      ...t,
      checks: t.trims + skipped,
      skips,
      lastTrim: t.lastTrim,
      lastSkip: t.lastSkip ? { ...t.lastSkip } : null,
    };
  }

  stop(): void {
    if (!this.#running) return;
    this.#running = false;
    clearTimeout(this.#timer);
    clearTimeout(this.#gcTimer);
    this.#observer?.disconnect();
    this.#config.signal?.removeEventListener('abort', this.#onAbort);
  }

  #schedule(): void {
    if (!this.#running) return;
    const next = scheduleNext(this.#timer, this.#config.intervalMs, this.#totals.lastSampleMs, this.#config.sampleBudget, () => void this.#check());
    this.#timer = next.timer;
    this.#delay = next.delayMs;
  }

  #observeGC(): void {
    const observer = new PerformanceObserver((list) => {
      if (!this.#running || this.#gcTimer) return;
      const major = list.getEntries().some((e) => (e as { detail?: { kind?: number } }).detail?.kind === perfConstants.NODE_PERFORMANCE_GC_MAJOR);
      if (!major) return;
      this.#gcTimer = setTimeout(() => {
        this.#gcTimer = undefined;
        const now = performance.now();
        // Debounced, and within the sampling budget like the periodic checks.
        if (now - this.#lastCheckAt < GC_MIN_GAP_MS) return;
        if (!withinBudget(now - this.#lastSampleAt, this.#totals.lastSampleMs, this.#config.sampleBudget)) return;
        void this.#check();
      }, GC_SETTLE_MS);
      this.#gcTimer.unref();
    });
    observer.observe({ entryTypes: ['gc'] });
    this.#observer = observer;
  }

  async #check(): Promise<void> {
    if (!this.#running || this.#inFlight) return;
    this.#inFlight = true;
    clearTimeout(this.#timer);
    try {
      await this.#decide();
    } finally {
      this.#inFlight = false;
      this.#lastCheckAt = performance.now();
      this.#schedule();
    }
  }

  async #decide(): Promise<void> {
    const config = this.#config;
    const time = Date.now();
    const mark = performance.eventLoopUtilization();
    const utilization = performance.eventLoopUtilization(mark, this.#eluMark).utilization;
    this.#eluMark = mark;

    const gate = this.#step({ kind: 'check', now: performance.now(), delay: this.#delay, utilization });
    if (gate.action === 'skip') return this.#skip({ ...gate.skip, time });

    let stats: MemoryStats;
    try {
      this.#lastSampleAt = performance.now();
      stats = await allocatorStats();
    } catch (error) {
      if (this.#running) this.#skip({ reason: 'error', time, message: `sampling failed: ${String((error as Error)?.message ?? error)}`, error: error as Error });
      return;
    }
    this.#totals.samples++;
    this.#totals.sampleTimeMs += stats.costMs;
    this.#totals.lastSampleMs = stats.costMs;
    if (!this.#running) return;

    const verdict = this.#step({ kind: 'sample', sample: stats });
    if (verdict.action === 'skip') return this.#skip({ ...verdict.skip, time });

    let result: TrimResult;
    try {
      result = await trim();
    } catch (error) {
      if (this.#running) this.#skip({ reason: 'error', time, message: `trim failed: ${String((error as Error)?.message ?? error)}`, error: error as Error });
      return;
    }
    const t = this.#totals;
    t.trims++;
    t.releasedBytes += result.releasedBytes ?? 0;
    t.trimTimeMs += result.durationMs;
    t.lastTrim = result;
    this.#step({ kind: 'trimmed', now: performance.now(), delay: this.#delay, releasedBytes: result.releasedBytes, durationMs: result.durationMs });
    if (!this.#running) return;
    try {
      config.onTrim?.(result);
    } catch (error) {
      rethrowLater(error);
    }
    this.#emitSafely('trim', result);
  }

  /** Runs the pure decision and keeps its next state. */
  #step(input: DecisionInput): Decision {
    const { decision, state } = decide(this.#config, this.#state, input);
    this.#state = state;
    this.#totals.backoffLevel = state.backoffLevel;
    return decision;
  }

  #skip(event: SkipEvent): void {
    this.#totals.skips[event.reason]++;
    this.#totals.lastSkip = { reason: event.reason, time: event.time };
    this.#emitSafely('skip', event);
  }

  #emitSafely(name: 'trim' | 'skip', value: unknown): void {
    try {
      this.emit(name, value);
    } catch (error) {
      rethrowLater(error);
    }
  }
}

let current: Trimmer | null = null;

/**
 * Starts trimming periodically, when worth it and when the event loop is not busy. One
 * auto-trimmer per thread: a second call while one runs throws ERR_AUTOTRIM_RUNNING.
 */
export function startAutoTrim(options?: AutoTrimOptions): AutoTrimmer {
  const config = configure(options);
  if (current?.running) {
    throw withCode(
      new Error('An auto-trimmer is already running in this thread: stop() it before starting another'),
      'ERR_AUTOTRIM_RUNNING',
    );
  }
  current = new Trimmer(config);
  return current;
}

/** Totals of the auto-trimmer running in this thread, or null when none has been started. */
export function autoTrimTotals(): AutoTrimTotals | null {
  return current ? current.totals() : null;
}
