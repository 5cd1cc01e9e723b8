// RSS of each sample split into parts that add up to it. A part is null when a number it
// needs is unknown (a sample taken from outside the process has RSS only).
import type { MonitorSample, RssParts } from './types';

const num = (v: number | null | undefined): v is number => typeof v === 'number' && Number.isFinite(v);

/** Malloc in use that V8 does not account for as ArrayBuffers (allocated − arrayBuffers), or null. */
export function nativeInUse(s: MonitorSample): number | null {
  return num(s.allocated) && num(s.arrayBuffers) ? Math.max(0, s.allocated - s.arrayBuffers) : null;
}

/** In-use memory of the program: the V8 heap in use plus everything malloc holds for it. */
export function inUse(s: MonitorSample): number | null {
  if (!num(s.heapUsed)) return null;
  if (num(s.allocated)) return s.heapUsed + Math.max(s.allocated, num(s.arrayBuffers) ? s.arrayBuffers : 0);
  return num(s.external) ? s.heapUsed + s.external : null;
}

export function split(s: MonitorSample): RssParts {
  const v8Heap = num(s.heapTotal) ? s.heapTotal : null;
  const arrayBuffers = num(s.arrayBuffers) ? s.arrayBuffers : null;
  const native = nativeInUse(s);
  const heldBack = num(s.heldBack) ? s.heldBack : null;
  const rss = num(s.rss) ? s.rss : null;
  let other: number | null = null;
  if (rss !== null && v8Heap !== null && arrayBuffers !== null && native !== null && heldBack !== null) {
    // The V8 heap may be partly non-resident and the allocator's regions overlap little else:
    // a negative rest means the parts over-count, and the rest is then shown as 0.
    other = Math.max(0, rss - v8Heap - arrayBuffers - native - heldBack);
  }
  return {
    time: s.time,
    rss,
    v8Heap,
    arrayBuffers,
    nativeInUse: native,
    heldBack,
    other,
    trimmedBytes: num(s.trimmedBytes) ? s.trimmedBytes : null,
  };
}
