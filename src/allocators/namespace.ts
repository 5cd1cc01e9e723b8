// What the allocators' public namespaces do alike.
import type { RawValue } from '../core/types';
import { integer } from '../core/validate';
import { requireAllocator } from './identity';
import { backendFor, type BackendName } from './registry';

/** `<name>.config()`: the allocator's settings in effect; throws unless it serves malloc. */
export function configOf(name: BackendName): Record<string, RawValue> {
  requireAllocator(name, `${name}.config()`);
  return backendFor(name).config?.() ?? {};
}

/**
 * A whole number a namespace lets callers set and read (jemalloc's epoch interval, mimalloc's
 * collect timeout), kept in its backend's settings: the setter checks it is in [min, max].
 */
export function integerSetting<K extends string>(
  settings: Record<K, number>,
  key: K,
  argument: string,
  min: number,
  max: number,
): { set(value: number): void; get(): number } {
  return {
    set: (value) => {
      settings[key] = integer(value, argument, min, max);
    },
    get: () => settings[key],
  };
}
