// For allocators with nothing to read or trim (musl's mallocng has no statistics API and
// unmaps eagerly; an unknown allocator tells us nothing): every number is null, with a reason.
import { addon } from '../core/binding';
import type { Backend, BackendSample, BackendTrim } from './types';

export function noneBackend(name: string, reason: string): Backend {
  const sampleSync = (): BackendSample => ({
    numbers: { allocated: null, resident: null, heldBack: null, releasable: null, mapped: null, raw: {}, notes: [reason] },
    process: addon().processMemory(),
  });
  const trimSync = (): BackendTrim => {
    const rss = addon().processMemory().rss;
    return {
      supported: false,
      rssBefore: rss,
      rssAfter: rss,
      heldBackBefore: null,
      heldBackAfter: null,
      durationMs: 0,
      notes: [reason],
    };
  };
  return {
    name,
    canTrim: false,
    sampleSync,
    sample: async () => sampleSync(),
    trimSync,
    trim: async () => trimSync(),
  };
}
