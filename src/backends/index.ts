// Which backend serves which allocator. Each allocator in the registry (src/allocators.ts) has
// its file src/<name>.ts, which holds its numbers and its public namespace and registers its
// backend when it is loaded.
import { allocatorFacts, WITHOUT_BACKEND } from '../allocators';
import type { AllocatorName } from '../types';
import { noneBackend } from './none';
import type { Backend } from './types';

const NONE: Partial<Record<AllocatorName, string>> = WITHOUT_BACKEND;

const registered = new Map<AllocatorName, Backend>();

/** Called by each allocator's file when it loads. */
export function registerBackend(backend: Backend): void {
  registered.set(backend.name, backend);
}

export function backendFor(name: AllocatorName): Backend {
  let backend = registered.get(name);
  if (backend) return backend;
  if (allocatorFacts(name)) {
    // Loaded on first use (index.ts loads every allocator file anyway); required lazily so
    // that the allocator files may import the unified API without an import cycle.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    require(`../${name}`);
    backend = registered.get(name);
  }
  if (!backend) {
    const reason = NONE[name] ?? `${name} serves malloc() but this build has no ${name} backend: its numbers are unknown`;
    backend = noneBackend(name, reason);
    registered.set(name, backend);
  }
  return backend;
}
