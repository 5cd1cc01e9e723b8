// Where the diagnostic endpoint and the doctor's monitor take their numbers from: this process
// (SELF_SOURCE, through the addon) or another one (through its agent, src/agent/source.ts).
import { backendFor } from '../allocators/registry';
import type { AllocatorInfo, MemoryStats, RawValue, StatsOptions, TrimResult, V8Memory } from '../types';
import { detectAllocator } from './detect';
import { allocatorStats } from './stats';
import { trim } from './trim';

/** A sample of a source: MemoryStats, with `v8` null when the process has no V8 this package reads. */
export interface SourceStats extends Omit<MemoryStats, 'v8'> {
  v8: V8Memory | null;
}

export interface StatsSource {
  readonly pid: number;
  /**
   * This process: its V8, event loop, GC, auto-trimmer and trims in this thread (trimEvents)
   * belong to the numbers. False for another process.
   */
  readonly self: boolean;
  stats(options?: StatsOptions): Promise<SourceStats>;
  trim(): Promise<TrimResult>;
  /** Which allocator serves malloc() there (the labels of the metrics, the endpoint's `allocator`). */
  allocator(): AllocatorInfo;
  /** The allocator's own settings in effect; null when it has none to report. Throws when they cannot be read. */
  settings(): Record<string, RawValue> | null;
  /** The process's environment as far as it is known ({} when it is not). */
  env(): NodeJS.ProcessEnv;
}

let info: AllocatorInfo | undefined;

/** This process, read by the addon: what the endpoint and the monitor always read. */
export const SELF_SOURCE: StatsSource = Object.freeze({
  pid: process.pid,
  self: true,
  stats: (options?: StatsOptions) => allocatorStats(options),
  trim: () => trim(),
  allocator: () => (info ??= detectAllocator()),
  settings() {
    const backend = backendFor(SELF_SOURCE.allocator().name);
    return backend.config ? backend.config() : null;
  },
  env: () => process.env,
});
