import v8 from 'node:v8';
import type { V8Memory } from './types';

export function v8Memory(): V8Memory {
  const usage = process.memoryUsage();
  const heap = v8.getHeapStatistics();
  return {
    heapTotal: usage.heapTotal,
    heapUsed: usage.heapUsed,
    physical: heap.total_physical_size,
    external: usage.external,
    arrayBuffers: usage.arrayBuffers,
  };
}
