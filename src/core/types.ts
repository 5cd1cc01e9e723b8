// The figures every layer passes around: what the addon reads of the process, of V8, and raw values.

export interface ProcessMemory {
  /** Resident set size (VmRSS). */
  rss: number | null;
  /** Anonymous resident memory: where malloc's memory lives. */
  rssAnon: number | null;
  /** Resident file-backed memory (code, mapped files). */
  rssFile: number | null;
  /** Resident shared memory. */
  rssShmem: number | null;
  /** Swapped-out memory (VmSwap). */
  swap: number | null;
}

export interface V8Memory {
  heapTotal: number;
  heapUsed: number;
  physical: number;
  external: number;
  /**
   * From process.memoryUsage(), its only source: null when that fails (no readable /proc). In
   * allocatorStatsSync() up to 100 ms old while `external` stays within 1 MiB, with a note (the
   * other V8 figures are current).
   */
  arrayBuffers: number | null;
}

export type RawValue = number | string | boolean | bigint | null;
