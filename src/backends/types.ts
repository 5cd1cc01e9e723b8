// What every allocator backend provides: raw numbers turned into the unified ones.
import type { AllocatorName, ProcessMemory, RawValue } from '../types';

export interface AllocatorNumbers {
  allocated: number | null;
  resident: number | null;
  heldBack: number | null;
  releasable: number | null;
  mapped: number | null;
  raw: Record<string, RawValue>;
  notes: string[];
}

export interface BackendSample {
  numbers: AllocatorNumbers;
  /** Read in the same native call as the allocator's numbers. */
  process: ProcessMemory;
}

export interface SampleRequest {
  releasable: boolean;
}

export interface TrimRequest {
  pad: number;
}

export interface BackendTrim {
  supported: boolean;
  rssBefore: number | null;
  rssAfter: number | null;
  heldBackBefore: number | null;
  heldBackAfter: number | null;
  durationMs: number;
  notes: string[];
}

export interface Backend {
  readonly name: AllocatorName;
  /** Whether trim() can do anything under this allocator. */
  readonly canTrim: boolean;
  sampleSync(request: SampleRequest): BackendSample;
  sample(request: SampleRequest): Promise<BackendSample>;
  trimSync(request: TrimRequest): BackendTrim;
  trim(request: TrimRequest): Promise<BackendTrim>;
  /** The allocator's configuration in effect (e.g. jemalloc opt.*), for diagnostics. */
  config?(): Record<string, RawValue>;
}
