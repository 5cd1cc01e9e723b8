// Holds an allocator's own figures against what the OS says about the whole process. An
// allocator counts pages as resident by its own bookkeeping (jemalloc and tcmalloc count
// dirty pages whether or not they were ever written; mimalloc counts committed pages), but
// only the kernel knows what is in RAM. A part never exceeds the whole: the allocator's
// resident memory is anonymous memory, and V8's heap (mapped by V8 itself, not through
// malloc) takes its used bytes out of the same anonymous memory.
import type { ProcessMemory, V8Memory } from './types';

export interface ClampInput {
  allocated: number | null;
  resident: number | null;
  heldBack: number | null;
  releasable: number | null;
}

export interface Clamped extends ClampInput {
  /** The corrections applied, in words (empty when the allocator's figures fit). */
  notes: string[];
}

/**
 * The most the allocator can have resident: RssAnon, less V8's used heap when nothing is
 * swapped out (with swap, V8's pages may be out of RAM). null when RssAnon is unknown.
 */
export function residentCeiling(process: ProcessMemory, v8: Pick<V8Memory, 'heapUsed'>): number | null {
  if (process.rssAnon === null) return null;
  const v8Resident = process.swap === 0 ? v8.heapUsed : 0;
  return Math.max(0, process.rssAnon - v8Resident);
}

/**
 * The allocator's numbers, corrected so that none claims more than the OS shows. `v8` is null in
 * a process without V8 (read through its agent).
 */
export function clampToProcess(n: ClampInput, process: ProcessMemory, v8: Pick<V8Memory, 'heapUsed'> | null): Clamped {
  const notes: string[] = [];
  const ceiling = residentCeiling(process, v8 ?? { heapUsed: 0 });
  let { resident, heldBack, releasable } = n;
  if (ceiling === null || resident === null || resident <= ceiling) return { allocated: n.allocated, resident, heldBack, releasable, notes };
  notes.push(
    `the allocator counts ${resident} bytes as resident but the process has only ${ceiling} bytes of anonymous memory ` +
      `${v8 ? "outside V8's heap " : ''}(RssAnon ${process.rssAnon}): pages it never wrote are not in RAM; resident, heldBack and ` +
      'releasable are held to what the OS shows',
  );
  resident = ceiling;
  if (n.allocated !== null) {
    if (n.allocated > ceiling) {
      notes.push(`allocated (${n.allocated} bytes) includes memory never written: heldBack is shown as 0`);
    }
    heldBack = Math.max(0, ceiling - n.allocated);
  }
  if (releasable !== null) releasable = Math.min(releasable, heldBack ?? ceiling);
  return { allocated: n.allocated, resident, heldBack, releasable, notes };
}

/** A held-back figure from around a trim, at most the RSS measured with it (a part never exceeds the whole). */
export function heldBackWithinRss(heldBack: number | null, rss: number | null, when: string, notes: string[]): number | null {
  if (heldBack === null || rss === null || heldBack <= rss) return heldBack;
  notes.push(`the allocator counted ${heldBack} bytes held back ${when} the trim, more than the whole RSS (${rss}): shown as the RSS`);
  return rss;
}
