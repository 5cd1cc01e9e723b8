// ES module entry: the same objects as the CommonJS entry, with named exports.
import cjs from './lib/index.js';

export const {
  detectAllocator,
  allocatorStats,
  allocatorStatsSync,
  trim,
  trimSync,
  startAutoTrim,
  createDiagnosticHandler,
  serveDiagnostics,
  collectAllocatorMetrics,
  registerOtelMetrics,
  createMonitor,
  runningMonitor,
  diagnose,
  glibc,
  jemalloc,
  tcmalloc,
  mimalloc,
} = cjs;
export default cjs;
