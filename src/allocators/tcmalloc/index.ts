// The tcmalloc (gperftools) namespace: numeric properties, release rate, release.
import { addon } from '../../core/binding';
import { unsupported, withCode } from '../../core/errors';
import type { RawValue } from '../../core/types';
import { cName, integer, optionalNumber } from '../../core/validate';
import type { TrimResult } from '../../types';
import { requireAllocator } from '../identity';
import { configOf } from '../namespace';
import { trimUnder } from '../trims';
import { tcmallocProperties } from './backend';
import { TCMALLOC_PROPERTIES, TCMALLOC_SETTINGS } from './numbers';

const requireTcmalloc = (what: string): void => requireAllocator('tcmalloc', what);

const checkName = (name: unknown): string => cName(name, 'a property name', 'name');

/** MallocExtension::GetNumericProperty(name); null when this tcmalloc does not know the name. */
export function property(name: string): number | null {
  const n = checkName(name);
  requireTcmalloc('tcmalloc.property()');
  return tcmallocProperties([n])[n] ?? null;
}

/** Every property allocator-stats knows, by name. */
export function properties(): Record<string, number | null> {
  requireTcmalloc('tcmalloc.properties()');
  return tcmallocProperties([...TCMALLOC_PROPERTIES, ...TCMALLOC_SETTINGS]);
}

/** MallocExtension::SetNumericProperty(name, value). Throws ERR_TCMALLOC_PROPERTY when tcmalloc refuses it. */
export function setProperty(name: string, value: number): void {
  const n = checkName(name);
  integer(value, 'value', 0, Number.MAX_SAFE_INTEGER);
  requireTcmalloc('tcmalloc.setProperty()');
  if (!addon().tcmallocSetProperty(n, value)) {
    throw withCode(new Error(`tcmalloc refused to set ${n} to ${value}`), 'ERR_TCMALLOC_PROPERTY');
  }
}

/**
 * The release rate (how eagerly tcmalloc returns free pages on its own; 0 never, default 1,
 * higher is faster). With a number, sets it first. Returns the rate in effect; throws
 * ERR_ALLOCATOR_UNSUPPORTED when this tcmalloc does not export it.
 */
export function releaseRate(rate?: number): number {
  const r = optionalNumber(rate, 'rate', -1, 0, 1e6);
  requireTcmalloc('tcmalloc.releaseRate()');
  const now = addon().tcmallocReleaseRate(r < 0 ? undefined : r);
  if (now === null) throw unsupported('this tcmalloc does not export Get/SetMemoryReleaseRate');
  return now;
}

/** MallocExtension::ReleaseFreeMemory(), measured like trim(). */
export function releaseFreeMemory(): Promise<TrimResult> {
  return trimUnder(() => requireTcmalloc('tcmalloc.releaseFreeMemory()'));
}

export function config(): Record<string, RawValue> {
  return configOf('tcmalloc');
}

