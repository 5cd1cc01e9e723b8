// allocator-stats: how much freed memory the C allocator holds back from the OS, and trim().
/// <reference types="node" preserve="true" />
// Kept in lib/index.d.ts: the public types use Node's (EventEmitter, node:http), so a consumer
// whose tsconfig lists no "types" still loads @types/node (a dependency of this package).
import { loadPackage } from './allocators/registry';
export { detectAllocator } from './api/detect';
export { allocatorStats, allocatorStatsSync } from './api/stats';
export { trim, trimSync } from './api/trim';
export { startAutoTrim } from './autotrim';
export type { AutoTrimEvents, AutoTrimmer, AutoTrimOptions, AutoTrimTotals, SkipEvent, SkipReason } from './autotrim';
export * as glibc from './allocators/glibc';
export * as jemalloc from './allocators/jemalloc';
export * as tcmalloc from './allocators/tcmalloc';
export * as mimalloc from './allocators/mimalloc';
export type {
  AllocatorInfo,
  AllocatorName,
  MemoryStats,
  PreloadEntry,
  ProcessMemory,
  RawValue,
  StatsOptions,
  TrimOptions,
  TrimResult,
  V8Memory,
} from './types';
export type { CodedError, ErrorCode } from './core/errors';
export { createDiagnosticHandler } from './diagnostics/handler';
export type { DiagnosticHandler, DiagnosticHandlerOptions, NextFunction } from './diagnostics/handler';
export { serveDiagnostics } from './diagnostics/server';
export type { DiagnosticServer, ServeDiagnosticsOptions } from './diagnostics/server';
export { collectAllocatorMetrics } from './diagnostics/prometheus';
export type { AllocatorMetricsHandle, CollectAllocatorMetricsOptions, PromRegistry } from './diagnostics/prometheus';
export { registerOtelMetrics } from './diagnostics/otel';
export type { OtelMeter, OtelMetricsHandle, OtelMetricsOptions } from './diagnostics/otel';
export { createMonitor, runningMonitor } from './doctor/monitor';
export { diagnose } from './doctor/diagnose';
export type {
  DiagnoseContext,
  DiagnoseOptions,
  DiagnoseThresholds,
  Diagnosis,
  Finding,
  FindingId,
  Monitor,
  MonitorOptions,
  MonitorSample,
  MonitorTotals,
  RssParts,
  Severity,
} from './doctor/types';

// Requiring the package loads the addon in this thread (allocators/registry.ts says why).
loadPackage();
