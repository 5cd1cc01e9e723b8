// What every allocator backend provides: raw numbers turned into the unified ones; and what a
// registry row's advice hooks are given.
import type { ProcessMemory, RawValue } from '../core/types';

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
  /** jemalloc: return only what the decay curves allow now (arena.4096.decay) rather than purge. */
  decay?: boolean;
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
  /** Its registry row's name. */
  readonly name: string;
  /** Whether trim() can do anything under this allocator. */
  readonly canTrim: boolean;
  sampleSync(request: SampleRequest): BackendSample;
  sample(request: SampleRequest): Promise<BackendSample>;
  trimSync(request: TrimRequest): BackendTrim;
  trim(request: TrimRequest): Promise<BackendTrim>;
  /** The allocator's configuration in effect (e.g. jemalloc opt.*), for diagnostics. */
  config?(): Record<string, RawValue>;
}

/** What the doctor knows when it advises on memory an allocator holds back. */
export interface RetentionInput {
  /** The allocator's environment variables that the doctor reads (registry rows' env.doctor). */
  env: Readonly<Record<string, string | undefined>>;
  /** Threads of the process, when known. */
  threads: number | null | undefined;
  /** jemalloc's background_thread as sampled, when known. */
  backgroundThread: boolean | null | undefined;
  version: string | null;
  /** How to trim, or null when auto-trim already runs. */
  trimAdvice: string | null;
  releasable: number | null;
  heldBack: number;
  /** Most of what is held back is not releasable. */
  fragmented: boolean;
}

/** A tuned variant of an allocator that `compare` runs by default. */
export interface TunedCandidate {
  label: string;
  env: Record<string, string>;
}

export function envHas(value: string | undefined, pattern: RegExp): boolean {
  return typeof value === 'string' && pattern.test(value);
}
