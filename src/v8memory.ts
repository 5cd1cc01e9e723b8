import v8 from 'node:v8';
import type { V8Memory } from './types';

/** What this thread's V8 heap holds. `note` says why a figure is null. */
export function v8Memory(): { memory: V8Memory; note: string | null } {
  const heap = v8.getHeapStatistics();
  let usage: NodeJS.MemoryUsage;
  try {
    usage = process.memoryUsage();
  } catch (error) {
    // process.memoryUsage() reads the RSS from /proc and throws when /proc cannot be read
    // (a sandbox or a mount namespace without it); V8's own statistics still answer.
    return {
      memory: {
        heapTotal: heap.total_heap_size,
        heapUsed: heap.used_heap_size,
        physical: heap.total_physical_size,
        // Node >= 20 reports it (the same figure as process.memoryUsage().external).
        external: (heap as v8.HeapInfo & { external_memory: number }).external_memory,
        arrayBuffers: null,
      },
      note: `v8.arrayBuffers is null: process.memoryUsage() failed (${(error as Error).message})`,
    };
  }
  return {
    memory: {
      heapTotal: usage.heapTotal,
      heapUsed: usage.heapUsed,
      physical: heap.total_physical_size,
      external: usage.external,
      arrayBuffers: usage.arrayBuffers,
    },
    note: null,
  };
}
