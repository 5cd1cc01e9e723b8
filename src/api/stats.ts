// allocatorStats(): one sample of the allocator, the process and V8, in the unified shape.
// The module's own binding: the global `performance` is an accessor, looked up on every sample.
import { performance } from 'node:perf_hooks';
import { allocatorIdentity } from '../allocators/identity';
import { backendFor } from '../allocators/registry';
import type { BackendSample, SampleRequest } from '../allocators/types';
import { clampToProcess } from '../core/clamp';
import { optionalBoolean, optionsObject } from '../core/validate';
import { ARRAY_BUFFERS_MAX_AGE_MS, v8Memory } from '../core/v8memory';
import type { MemoryStats, StatsOptions, V8Memory } from '../types';

const OPTIONS = ['releasable'] as const;

// On the JS thread the process figures come from /proc/self/statm, a seventh of the cost of
// /proc/self/status: resident and anonymous memory only.
const NO_PROC_NOTE = 'the process figures are null: /proc/self cannot be read here (a sandbox or a mount namespace without /proc)';

const STATM_NOTE =
  'process.rssFile, rssShmem and swap are null: allocatorStatsSync() reads only /proc/self/statm (rss and rssAnon) ' +
  'to stay cheap on the JS thread; allocatorStats() reads them from /proc/self/status';

// Without options (the usual call) there is nothing to check or build.
const DEFAULT_REQUESTS: Readonly<Record<'true' | 'false', Readonly<SampleRequest>>> = {
  true: Object.freeze({ releasable: true }),
  false: Object.freeze({ releasable: false }),
};

function request(options: unknown, name: string, releasableByDefault: boolean): SampleRequest {
  if (options === undefined) return DEFAULT_REQUESTS[releasableByDefault ? 'true' : 'false'];
  const o = optionsObject<StatsOptions>(options, name, OPTIONS);
  return { releasable: optionalBoolean(o.releasable, `${name}.releasable`, releasableByDefault) };
}

/**
 * A backend's sample as MemoryStats, whichever process it comes from: its numbers held to what
 * the OS shows (V8's used heap taken out of the anonymous memory when the process has a V8), with
 * their notes and then `note`. `v8` is null for a process without V8 (read through its agent).
 * `costMs` runs from `started` (performance.now()) to the end of this assembly.
 */
export function statsOf<V extends V8Memory | null>(
  sample: BackendSample,
  time: number,
  started: number,
  allocator: MemoryStats['allocator'],
  v8: V,
  note: string | null,
): Omit<MemoryStats, 'v8'> & { v8: V } {
  // Read field by field: spreading these objects into a new one made V8 derive fresh hidden
  // classes on every sample, which outlived scavenges and made each sample cost several times more.
  const n = clampToProcess(sample.numbers, sample.process, v8 === null ? null : { heapUsed: v8.heapUsed });
  // The sample's notes are its own (a fresh array per sample): the clamp's follow them.
  const notes = sample.numbers.notes;
  if (n.notes.length > 0) notes.push(...n.notes);
  if (n.releasable !== null && n.heldBack !== null && n.heldBack - n.releasable > 0 && n.heldBack > 0) {
    const frag = n.heldBack - n.releasable;
    if (frag / n.heldBack > 0.25 && frag > 16 * 1024 * 1024) {
      notes.push(`${frag} held-back bytes are not releasable by a trim: free space inside partly used pages (fragmentation)`);
    }
  }
  if (note !== null) notes.push(note);
  return {
    time,
    allocator,
    allocated: n.allocated,
    resident: n.resident,
    heldBack: n.heldBack,
    heldBackRatio: n.heldBack !== null && n.resident ? n.heldBack / n.resident : n.heldBack === null ? null : 0,
    releasable: n.releasable,
    mapped: sample.numbers.mapped,
    process: sample.process,
    v8,
    costMs: performance.now() - started,
    raw: sample.numbers.raw,
    notes,
  };
}

// `now` is when the V8 figures are read; `arrayBuffersMaxAgeMs` how old arrayBuffers may be.
function assemble(sample: BackendSample, started: number, time: number, now: number, arrayBuffersMaxAgeMs: number): MemoryStats {
  const v8 = v8Memory(now, arrayBuffersMaxAgeMs);
  return statsOf(sample, time, started, allocatorIdentity(), v8.memory, v8.note);
}

/**
 * Samples the allocator on the JS thread. Cheap on a small heap; on glibc with a very
 * fragmented heap mallinfo2() walks every free chunk (tens of ms at 1 M free chunks): prefer
 * allocatorStats() there. `releasable` is computed only when asked for ({ releasable: true }):
 * it needs a second walk (malloc_info) that would more than double the cost. `v8.arrayBuffers`
 * may be up to 100 ms old while V8's external memory holds still (with a note): process.memoryUsage(),
 * its only source, costs as much as the rest of the sample.
 */
export function allocatorStatsSync(options?: StatsOptions): MemoryStats {
  const req = request(options, 'options', false);
  const started = performance.now();
  const time = Date.now();
  const backend = backendFor(allocatorIdentity().name);
  const stats = assemble(backend.sampleSync(req), started, time, started, ARRAY_BUFFERS_MAX_AGE_MS);
  if (stats.process.rss !== null && stats.process.rssFile === null) stats.notes.push(STATM_NOTE);
  if (stats.process.rss === null) stats.notes.push(NO_PROC_NOTE);
  return stats;
}

/** Samples the allocator; the walk over the allocator's structures runs on the libuv threadpool. */
export async function allocatorStats(options?: StatsOptions): Promise<MemoryStats> {
  const req = request(options, 'options', true);
  const started = performance.now();
  const time = Date.now();
  const backend = backendFor(allocatorIdentity().name);
  const sample = await backend.sample(req);
  const stats = assemble(sample, started, time, performance.now(), 0);
  if (stats.process.rss === null) stats.notes.push(NO_PROC_NOTE);
  return stats;
}
