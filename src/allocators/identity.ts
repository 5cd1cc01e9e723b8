// Which allocator serves malloc(), as the addon decided it (from the allocators' own symbols plus
// a check that malloc really goes to them), named and versioned by the registry. Decided once
// per thread; the public detectAllocator() (api/detect.ts) adds what LD_PRELOAD asked for.
import { addon, type NativeDetection } from '../core/binding';
import { unsupported } from '../core/errors';
import { ALLOCATOR_NAMES, allocatorFacts, type AllocatorName } from './registry';

export function asName(name: string): AllocatorName {
  return (ALLOCATOR_NAMES as readonly string[]).includes(name) ? (name as AllocatorName) : 'unknown';
}

// Allocators that report numbers instead of a version string say how to write them (their row).
export function versionOf(native: NativeDetection): string | null {
  if (native.version !== null) return native.version;
  return allocatorFacts(native.name)?.version?.(native.versionNumbers, native.versionSuffix) ?? null;
}

interface Identity {
  native: NativeDetection;
  name: AllocatorName;
  version: string | null;
}

let identity: Identity | undefined;

function identify(): Identity {
  if (identity) return identity;
  const native = addon().detect();
  identity = { native, name: asName(native.name), version: versionOf(native) };
  return identity;
}

/** What the addon's detection found (the same object every time: do not change it). */
export function nativeDetection(): NativeDetection {
  return identify().native;
}

export function allocatorIdentity(): { name: AllocatorName; version: string | null } {
  const { name, version } = identify();
  return { name, version };
}

/** Throws ERR_ALLOCATOR_UNSUPPORTED unless `expected` serves malloc: `what` needs `label`. */
export function requireAllocator(expected: AllocatorName, what: string, label: string = expected): void {
  const { name } = identify();
  if (name !== expected) throw unsupported(`${what} needs ${label}, but ${name} serves malloc() in this process`);
}
