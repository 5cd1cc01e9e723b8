// Public types. All sizes are bytes as numbers; a number that cannot be known is null, never 0.

import type { AllocatorName } from './allocators/registry';
import type { ProcessMemory, RawValue, V8Memory } from './core/types';

/** 'glibc' | 'jemalloc' | 'tcmalloc' | 'mimalloc' | 'musl' | 'unknown': the rows of src/allocators/registry.ts. */
export type { AllocatorName };
export type { ProcessMemory, RawValue, V8Memory };

export interface PreloadEntry {
  /** The entry as written in LD_PRELOAD. */
  entry: string;
  /** Whether a library by that name is mapped into this process; null when /proc/self/maps cannot be read. */
  loaded: boolean | null;
}

export interface AllocatorInfo {
  name: AllocatorName;
  version: string | null;
  /** How the allocator was identified. */
  method: string;
  /** The shared object that defines the allocator's symbols, when known. */
  library: string | null;
  /** Allocators whose symbols are present in the process but which do not serve malloc. */
  inactive: Array<{ name: AllocatorName; library: string | null }>;
  /** LD_PRELOAD as this process sees it, and whether each entry was really loaded. */
  preload: { value: string | null; entries: PreloadEntry[] };
  /** Caveats in words, e.g. an LD_PRELOAD that did not take effect. */
  notes: string[];
}

export interface MemoryStats {
  /** When the sample was taken (milliseconds since the epoch). */
  time: number;
  allocator: { name: AllocatorName; version: string | null };
  /** Bytes the program holds through malloc. */
  allocated: number | null;
  /** Bytes of the allocator's memory that are in RAM. */
  resident: number | null;
  /** resident − allocated: freed memory the allocator keeps instead of returning it. */
  heldBack: number | null;
  /** heldBack / resident. */
  heldBackRatio: number | null;
  /** What a trim would give back to the OS now (at most heldBack; the rest is fragmentation). */
  releasable: number | null;
  /** Bytes of address space the allocator has mapped. */
  mapped: number | null;
  process: ProcessMemory;
  v8: V8Memory;
  /** What taking this sample cost, in milliseconds (wall time of the whole call). */
  costMs: number;
  /** The allocator's own fields, under their own names. */
  raw: Record<string, RawValue>;
  /** Caveats in words. */
  notes: string[];
}

export interface StatsOptions {
  /**
   * Compute `releasable` (glibc: reads malloc_info()'s free-chunk histogram, a walk over every
   * free chunk). Default: true for allocatorStats(), false for allocatorStatsSync(), which
   * runs on the JS thread. When false, `releasable` is null.
   */
  releasable?: boolean;
}

export interface TrimOptions {
  /** glibc only: bytes to leave untrimmed at the top of the main heap (malloc_trim's pad). Default 0. */
  pad?: number;
}

export interface TrimResult {
  time: number;
  allocator: { name: AllocatorName; version: string | null };
  /** False when this allocator has nothing a trim can do (musl, unknown). */
  supported: boolean;
  /** RSS right before and after the trim, from the OS. */
  rssBefore: number | null;
  rssAfter: number | null;
  /** rssBefore − rssAfter, never below 0 (see notes if RSS grew meanwhile). */
  releasedBytes: number | null;
  heldBackBefore: number | null;
  heldBackAfter: number | null;
  /** How long the allocator's own trim call took, in milliseconds. */
  durationMs: number;
  notes: string[];
}
