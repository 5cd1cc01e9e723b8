// The mimalloc namespace: version, options, process info, collect on every JS thread.
import { addon, type NativeMimallocProcessInfo } from '../../core/binding';
import { typeError, unsupported, withCode } from '../../core/errors';
import type { RawValue } from '../../core/types';
import { integer } from '../../core/validate';
import type { TrimResult } from '../../types';
import { requireAllocator } from '../identity';
import { configOf } from '../namespace';
import { backendOf } from '../registry';
import { trimUnder } from '../trims';
import { mimallocSettings } from './backend';
import { mimallocOptionNames, mimallocVersion } from './numbers';

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
  if (value !== undefined) addon().mimallocOptionSet(i, value);
  return addon().mimallocOptionGet(i);
}

/** mi_process_info(). */
export function processInfo(): MimallocProcessInfo {
  requireMimalloc('mimalloc.processInfo()');
  const info = backendOf('mimalloc').processInfo();
  if (info === null) throw unsupported('mi_process_info() is not available');
  return info;
}

/** mimalloc's own statistics text (what it counts depends on how it was built). */
export function statsText(): string | null {
  requireMimalloc('mimalloc.statsText()');
  return addon().mimallocStatsText();
}

/** mi_collect(true) on every JS thread that loaded allocator-stats, measured like trim(). */
export function collect(): Promise<TrimResult> {
  return trimUnder(() => requireMimalloc('mimalloc.collect()'));
}

/** How long a trim waits for other JS threads to collect (default 2000 ms). */
export function setCollectTimeout(ms: number): void {
  mimallocSettings.collectTimeoutMs = integer(ms, 'ms', 0, 600_000);
}

export function collectTimeout(): number {
  return mimallocSettings.collectTimeoutMs;
}

export function config(): Record<string, RawValue> {
  return configOf('mimalloc');
}
