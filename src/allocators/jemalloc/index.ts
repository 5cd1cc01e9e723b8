// The jemalloc namespace: mallctl by name, purge/decay, background threads.
import { addon, type MallctlValue } from '../../core/binding';
import type { RawValue } from '../../core/types';
import { integer, optionalBoolean } from '../../core/validate';
import type { TrimResult } from '../../types';
import { requireAllocator } from '../identity';
import { configOf } from '../namespace';
import { trimUnder } from '../trims';
import { jemallocSettings } from './backend';
import { mallctlRead, mallctlType, mallctlWrite } from './mallctl';

export type { MallctlType, MallctlValue } from '../../core/binding';

const requireJemalloc = (what: string): void => requireAllocator('jemalloc', what);

export const mallctl = {
  /**
   * Reads a mallctl by name. The type comes from allocator-stats' table of jemalloc 5.x
   * names: uint64_t counters are bigint, sizes numbers, strings strings. Throws
   * ERR_MALLCTL_NAME for a name jemalloc does not have, ERR_MALLCTL_TYPE for a name whose
   * type is not known, ERR_MALLCTL_ACCESS for a write-only name or an action.
   */
  read(name: string): MallctlValue {
    return mallctlRead(name);
  },
  /** Writes a mallctl; an action (e.g. "arena.0.purge", "thread.tcache.flush") takes no value. */
  write(name: string, value?: MallctlValue): void {
    mallctlWrite(name, value);
  },
  /** The type allocator-stats reads a name as, or undefined when it does not know it. */
  type(name: string): string | undefined {
    return typeof name === 'string' ? mallctlType(name) : undefined;
  },
};

/** Returns every dirty and muzzy page of every arena (arena.4096.purge): the same as trim(). */
export function purge(): Promise<TrimResult> {
  return trimUnder(() => requireJemalloc('jemalloc.purge()'));
}

const DECAY = Object.freeze({ pad: 0, decay: true });

/** Returns only what the decay curves allow now (arena.4096.decay), measured and counted like trim(). */
export function decay(): Promise<TrimResult> {
  return trimUnder(() => requireJemalloc('jemalloc.decay()'), () => DECAY);
}

/**
 * The runtime background_thread switch: with no argument, whether background threads purge
 * dirty pages; with a boolean, turns them on or off and returns the new state.
 */
export function backgroundThread(on?: boolean): boolean {
  const value = optionalBoolean(on, 'on', undefined as unknown as boolean);
  requireJemalloc('jemalloc.backgroundThread()');
  if (value !== undefined) mallctlWrite('background_thread', value);
  return addon().jemallocRead('background_thread', 'bool') as boolean;
}

/** Stats refresh (epoch) at most every `ms` milliseconds; 0 refreshes on every sample. Default 100. */
export function setEpochInterval(ms: number): void {
  jemallocSettings.epochIntervalMs = integer(ms, 'ms', 0, 3_600_000);
}

export function epochInterval(): number {
  return jemallocSettings.epochIntervalMs;
}

/** opt.* and the runtime settings in effect. */
export function config(): Record<string, RawValue> {
  return configOf('jemalloc');
}

