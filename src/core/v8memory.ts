import v8 from 'node:v8';
import type { V8Memory } from './types';

/**
 * How old the `arrayBuffers` figure of a JS-thread sample may be. Its only source is
 * process.memoryUsage(), which re-reads /proc/self/stat for an RSS the sample already has from
 * statm: nine tenths of its cost, about as much as the rest of a sync sample together. So
 * allocatorStatsSync() reads it at most this often and says so in a note; the other V8 figures
 * come from v8.getHeapStatistics() (a twentieth of that cost) on every call. The same bound as
 * glibc's reused arena residency.
 */
export const ARRAY_BUFFERS_MAX_AGE_MS = 100;

/**
 * V8's external memory holds the ArrayBuffers' backing stores, and getHeapStatistics() reads it
 * on every call: a reading is reused only while external memory is within this of what it was
 * then, so that the reused figure is off by at most about as much, and never above external.
 */
export const ARRAY_BUFFERS_MAX_DRIFT_BYTES = 1024 * 1024;

// One string for every such sample.
const REUSED_ARRAY_BUFFERS_NOTE =
  `v8.arrayBuffers is reused from a process.memoryUsage() reading up to ${ARRAY_BUFFERS_MAX_AGE_MS} ms old, ` +
  'taken while V8 external memory (which holds it) was within 1 MiB of its size now: allocatorStatsSync() reads it ' +
  'at most that often (process.memoryUsage() re-reads /proc/self/stat, as costly as the rest of the sample); ' +
  'heapTotal, heapUsed, physical and external are current';

type HeapStatistics = v8.HeapInfo & { external_memory: number };

// The last process.memoryUsage() reading on this thread (module state is per thread).
let readAt = Number.NEGATIVE_INFINITY;
let externalThen = 0;
let arrayBuffers: number | null = null;
let failure: string | null = null;

function readArrayBuffers(now: number, external: number): void {
  readAt = now;
  externalThen = external;
  try {
    arrayBuffers = process.memoryUsage().arrayBuffers;
    failure = null;
  } catch (error) {
    // process.memoryUsage() reads the RSS from /proc and throws when /proc cannot be read
    // (a sandbox or a mount namespace without it); V8's own statistics still answer.
    arrayBuffers = null;
    failure = `v8.arrayBuffers is null: process.memoryUsage() failed (${(error as Error).message})`;
  }
}

/**
 * What this thread's V8 heap holds. `now` is performance.now() at the sample; `maxAgeMs` how
 * old `arrayBuffers` may be (0: read it now). `note` says why a figure is null or reused.
 */
export function v8Memory(now: number, maxAgeMs: number): { memory: V8Memory; note: string | null } {
  const heap = v8.getHeapStatistics() as HeapStatistics;
  const external = heap.external_memory;
  const age = now - readAt;
  const reused =
    maxAgeMs > 0 &&
    age >= 0 &&
    age <= maxAgeMs &&
    Math.abs(external - externalThen) <= ARRAY_BUFFERS_MAX_DRIFT_BYTES &&
    (arrayBuffers === null || arrayBuffers <= external);
  if (!reused) readArrayBuffers(now, external);
  return {
    memory: {
      // The same V8 figures process.memoryUsage() reports under these names.
      heapTotal: heap.total_heap_size,
      heapUsed: heap.used_heap_size,
      physical: heap.total_physical_size,
      external,
      arrayBuffers,
    },
    note: failure ?? (reused ? REUSED_ARRAY_BUFFERS_NOTE : null),
  };
}
