// The jemalloc backend: arena.4096.purge (4096 = all arenas) for trim(), arena.4096.decay for
// jemalloc.decay(), opt.* for its configuration.
import { addon, type BackendBinding } from '../../core/binding';
import type { RawValue } from '../../core/types';
import { nativeBackend, type NativeRef } from '../../core/wire';
import { backendOver } from '../native';
import type { Backend } from '../types';
import { readOrNull } from './mallctl';
import { action, DEFAULT_EPOCH_INTERVAL_MS, jemallocToSample, jemallocTrimOutcome, NS_PER_MS, SAMPLE_FIELDS } from './numbers';

/** Settings of this thread's jemalloc backend (jemalloc.setEpochInterval()). */
export const jemallocSettings = { epochIntervalMs: DEFAULT_EPOCH_INTERVAL_MS };

const CONFIG = [
  'version',
  'config.stats',
  'opt.narenas',
  'opt.dirty_decay_ms',
  'opt.muzzy_decay_ms',
  'opt.background_thread',
  'opt.max_background_threads',
  'opt.tcache',
  'opt.retain',
  'opt.thp',
  'background_thread',
  'arenas.narenas',
  'arenas.dirty_decay_ms',
  'arenas.muzzy_decay_ms',
  'config.malloc_conf',
];

export function jemallocConfig(): Record<string, RawValue> {
  const out: Record<string, RawValue> = {};
  const info = addon().jemallocInfo();
  if (!info.serving) return out;
  out.symbolPrefix = info.prefix;
  for (const name of CONFIG) out[name] = readOrNull(name);
  out.epochIntervalMs = jemallocSettings.epochIntervalMs;
  return out;
}

/** `binding`: the addon by default, or an agent's (another process, whose configuration is not read). */
export function jemallocBackend(ref: NativeRef, binding?: BackendBinding): Backend {
  const native = nativeBackend(ref, { sample: SAMPLE_FIELDS, sampleArgs: ['epochIntervalNs'], gauge: SAMPLE_FIELDS, trim: [], trimArgs: ['decay'] }, binding);
  return backendOver('jemalloc', native, {
    sampleArgs: () => ({ epochIntervalNs: jemallocSettings.epochIntervalMs * NS_PER_MS }),
    // trim() purges; jemalloc.decay() asks for the other action through the same native trim.
    trimArgs: (request) => ({ decay: request.decay ? 1 : 0 }),
    toSample: (n) => jemallocToSample(n, jemallocSettings.epochIntervalMs),
    toTrim: (t, request) => jemallocTrimOutcome(t, action(request.decay === true), jemallocSettings.epochIntervalMs),
    config: binding ? undefined : jemallocConfig,
  });
}
