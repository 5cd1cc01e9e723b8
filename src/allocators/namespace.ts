// What the allocators' public namespaces do alike.
import type { RawValue } from '../core/types';
import { requireAllocator } from './identity';
import { backendFor, type BackendName } from './registry';

/** `<name>.config()`: the allocator's settings in effect; throws unless it serves malloc. */
export function configOf(name: BackendName): Record<string, RawValue> {
  requireAllocator(name, `${name}.config()`);
  return backendFor(name).config?.() ?? {};
}
