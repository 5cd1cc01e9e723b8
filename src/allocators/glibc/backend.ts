// The glibc backend: a native sample or trim turned into the unified numbers.
import { addon, type BackendBinding } from '../../core/binding';
import { nativeBackend, type NativeRef } from '../../core/wire';
import { backendOver } from '../native';
import type { Backend } from '../types';
import { AllocatedCount, glibcNumbers, glibcTrimOutcome, NS_PER_MS, RESIDENCY_MAX_AGE_MS, SHAPE, type GlibcContext } from './numbers';

// The arguments of a JS-thread sample, built once.
const SYNC_ARGS = {
  releasable: { releasable: 1, residencyMaxAgeNs: RESIDENCY_MAX_AGE_MS * NS_PER_MS },
  counters: { releasable: 0, residencyMaxAgeNs: RESIDENCY_MAX_AGE_MS * NS_PER_MS },
} as const;

/** `binding`: the addon by default, or an agent's (another process). */
export function glibcBackend(ref: NativeRef, binding: BackendBinding = addon()): Backend {
  const native = nativeBackend(ref, SHAPE, binding);
  let pageSize: number | undefined;
  const context: GlibcContext = {
    sources: binding.glibcWire.mallinfoSources,
    pageSize: () => (pageSize ??= binding.glibcInfo().pageSize),
    rows: binding.glibcWire,
  };
  const count = new AllocatedCount();
  return backendOver('glibc', native, {
    // A JS-thread sample may reuse recent arena residency; one on the threadpool always measures.
    sampleArgs: (request, sync) =>
      sync ? (request.releasable ? SYNC_ARGS.releasable : SYNC_ARGS.counters) : { releasable: request.releasable ? 1 : 0, residencyMaxAgeNs: 0 },
    trimArgs: (request) => ({ pad: request.pad, residencyMaxAgeNs: RESIDENCY_MAX_AGE_MS * NS_PER_MS }),
    toSample: (sample) => {
      count.record(sample);
      return { numbers: glibcNumbers(sample, context), process: sample.process };
    },
    toTrim: (trim) => glibcTrimOutcome(trim, count),
  });
}
