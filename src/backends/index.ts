// Picks the backend for the allocator that serves malloc in this process.
import type { AllocatorName } from '../types';
import { glibcBackend } from './glibc';
import { jemallocBackend } from './jemalloc';
import { mimallocBackend } from './mimalloc';
import { noneBackend } from './none';
import { tcmallocBackend } from './tcmalloc';
import type { Backend } from './types';

const backends: Partial<Record<AllocatorName, () => Backend>> = {
  glibc: () => glibcBackend,
  jemalloc: () => jemallocBackend,
  tcmalloc: () => tcmallocBackend,
  mimalloc: () => mimallocBackend,
  musl: () => noneBackend('musl', 'musl malloc has no statistics API and returns freed memory eagerly: nothing to report or trim'),
  unknown: () => noneBackend('unknown', 'the allocator serving malloc() was not recognised: its numbers are unknown'),
};

const cache = new Map<AllocatorName, Backend>();

export function backendFor(name: AllocatorName): Backend {
  let backend = cache.get(name);
  if (!backend) {
    const make = backends[name];
    backend = make ? make() : noneBackend(name, `${name} serves malloc() but this build has no ${name} backend: its numbers are unknown`);
    cache.set(name, backend);
  }
  return backend;
}
