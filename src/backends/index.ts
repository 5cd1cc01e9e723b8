// The registry: which backend serves which allocator. Each allocator's file (src/glibc.ts, …)
// holds its numbers and its public namespace and registers its backend when it is loaded;
// this table says which file that is. Adding an allocator adds one line here.
import type { AllocatorName } from '../types';
import { noneBackend } from './none';
import type { Backend } from './types';

const FILES: Partial<Record<AllocatorName, string>> = {
  glibc: '../glibc',
  jemalloc: '../jemalloc',
  tcmalloc: '../tcmalloc',
  mimalloc: '../mimalloc',
};

// Allocators with nothing to read or trim.
const NONE: Partial<Record<AllocatorName, string>> = {
  musl: 'musl malloc has no statistics API and returns freed memory eagerly: nothing to report or trim',
  unknown: 'the allocator serving malloc() was not recognised: its numbers are unknown',
};

const registered = new Map<AllocatorName, Backend>();

/** Called by each allocator's file when it loads. */
export function registerBackend(backend: Backend): void {
  registered.set(backend.name, backend);
}

export function backendFor(name: AllocatorName): Backend {
  let backend = registered.get(name);
  if (backend) return backend;
  const file = FILES[name];
  if (file !== undefined) {
    // Loaded on first use (index.ts loads every allocator file anyway); required lazily so
    // that the allocator files may import the unified API without an import cycle.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    require(file);
    backend = registered.get(name);
  }
  if (!backend) {
    const reason = NONE[name] ?? `${name} serves malloc() but this build has no ${name} backend: its numbers are unknown`;
    backend = noneBackend(name, reason);
    registered.set(name, backend);
  }
  return backend;
}
