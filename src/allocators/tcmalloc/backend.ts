// The tcmalloc backend: a native sample or release turned into the unified numbers.
import { addon, type BackendBinding } from '../../core/binding';
import type { RawValue } from '../../core/types';
import { nativeBackend, type NativeRef } from '../../core/wire';
import { backendOver } from '../native';
import type { Backend } from '../types';
import { TCMALLOC_PROPERTIES, TCMALLOC_SETTINGS, tcmallocToSample, tcmallocToTrim } from './numbers';

/** Numeric properties by name; null for a name this tcmalloc does not know. */
export function tcmallocProperties(names: readonly string[]): Record<string, number | null> {
  const values = addon().tcmallocProperties(names);
  const out: Record<string, number | null> = {};
  names.forEach((name, i) => (out[name] = Number.isNaN(values[i]) ? null : values[i]));
  return out;
}

/** `binding`: the addon by default, or an agent's (another process, whose configuration is not read). */
export function tcmallocBackend(ref: NativeRef, binding?: BackendBinding): Backend {
  const native = nativeBackend(ref, {
    // source: 1 when the properties come from one statistics snapshot, 0 when read one by one.
    sample: [...TCMALLOC_PROPERTIES, 'source'],
    sampleArgs: [],
    gauge: TCMALLOC_PROPERTIES,
    trim: [],
    trimArgs: [],
  }, binding);
  const config = (): Record<string, RawValue> => {
    if (!native.sampleSync({}).serving) return {};
    return { ...tcmallocProperties(TCMALLOC_SETTINGS), releaseRate: addon().tcmallocReleaseRate() };
  };
  return backendOver('tcmalloc', native, { sampleArgs: () => ({}), trimArgs: () => ({}), toSample: tcmallocToSample, toTrim: tcmallocToTrim, config: binding ? undefined : config });
}
