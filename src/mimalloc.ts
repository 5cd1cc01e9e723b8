// The mimalloc namespace: version, options, process info, collect on every JS thread.
import { binding, type NativeMimallocProcessInfo } from './binding';
import {
  getCollectTimeout,
  mimallocConfig,
  mimallocOptionNames,
  mimallocProcessInfo,
  mimallocVersion,
  setCollectTimeout as setTimeout_,
} from './backends/mimalloc';
import { requireAllocator } from './detect';
import { typeError, unsupported, withCode } from './errors';
import { trim as unifiedTrim } from './trim';
import type { RawValue, TrimResult } from './types';
import { integer } from './validate';

export type MimallocProcessInfo = NativeMimallocProcessInfo;

const requireMimalloc = (what: string): void => requireAllocator('mimalloc', what);

/** mi_version() as "major.minor.patch". */
export function version(): string | null {
  requireMimalloc('mimalloc.version()');
  return mimallocVersion();
}

function optionIndex(name: unknown): number {
  if (typeof name !== 'string') throw typeError('a mimalloc option name', 'name', name);
  const names = mimallocOptionNames();
  const i = names.indexOf(name);
  if (i < 0 || name.startsWith('deprecated_')) {
    throw withCode(
      new TypeError(`Expected one of ${names.filter((n) => !n.startsWith('deprecated_')).join(', ')} for name but received ${JSON.stringify(name)}`),
      'ERR_MIMALLOC_OPTION',
    );
  }
  return i;
}

/** mi_option_get(name); with a value, mi_option_set(name, value) first. Returns the value in effect. */
export function option(name: string, value?: number): number | null {
  const i = optionIndex(name);
  if (value !== undefined) integer(value, 'value', -(2 ** 31), 2 ** 31 - 1);
  requireMimalloc('mimalloc.option()');
  if (value !== undefined) binding.mimallocOptionSet(i, value);
  return binding.mimallocOptionGet(i);
}

/** mi_process_info(). */
export function processInfo(): MimallocProcessInfo {
  requireMimalloc('mimalloc.processInfo()');
  const info = mimallocProcessInfo();
  if (info === null) throw unsupported('mi_process_info() is not available');
  return info;
}

/** mimalloc's own statistics text (what it counts depends on how it was built). */
export function statsText(): string | null {
  requireMimalloc('mimalloc.statsText()');
  return binding.mimallocStatsText();
}

/** mi_collect(true) on every JS thread that loaded allocator-stats, measured like trim(). */
export function collect(): Promise<TrimResult> {
  try {
    requireMimalloc('mimalloc.collect()');
  } catch (error) {
    return Promise.reject(error);
  }
  return unifiedTrim();
}

/** How long a trim waits for other JS threads to collect (default 2000 ms). */
export function setCollectTimeout(ms: number): void {
  setTimeout_(integer(ms, 'ms', 0, 600_000));
}

export function collectTimeout(): number {
  return getCollectTimeout();
}

export function config(): Record<string, RawValue> {
  requireMimalloc('mimalloc.config()');
  return mimallocConfig();
}
