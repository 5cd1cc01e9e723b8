// What a trim would give back now, held against what the OS says is resident. Pure: numbers
// in, numbers and notes out; the per-allocator formulas call it.
import type { MallocInfo, MallocInfoArena } from './mallocinfo';

/** Residency of glibc's arena regions, measured with mincore() (native/glibc/). */
export interface ArenaResidency {
  /** [heap] (main arena): bytes from its start to the program break, and how many are resident. */
  mainMapped: number;
  mainResident: number;
  /** Thread-arena heaps: the read/write part of each (heap_info.size), and how many are resident. */
  threadMapped: number;
  threadResident: number;
  /** Non-resident bytes that end each arena's newest heap (where its top chunk is). */
  threadTail: number;
  /**
   * Main-arena bytes outside [heap] (glibc continued the arena in mmap()ed memory when the
   * program break could not grow): the main arena's free pages can then not be told resident
   * or not, and none of them is promised.
   */
  mainOutside: number;
}

export interface GlibcReleasable {
  /** What malloc_trim() would return now. */
  bytes: number;
  /** Whole pages inside free chunks (and the main arena's top), resident or not. */
  freePages: number;
  /** Of those, the pages no longer resident (returned by an earlier trim, or never touched). */
  nonResident: number;
}

const FAST_BIN_MAX = 160;

/** Whole pages malloc_trim() can madvise in one arena: inside free chunks of the regular bins, and for the main arena the top above pad. */
function arenaFreePages(arena: MallocInfoArena, pageSize: number, pad: number): number {
  let bytes = 0;
  for (const b of arena.buckets) {
    if (b.kind === 'size' && b.to <= FAST_BIN_MAX) continue;
    // Each free chunk loses about a page to its header and page alignment.
    bytes += Math.max(0, b.total - b.count * pageSize);
  }
  // malloc_trim shrinks only the main arena's top (sbrk); thread-arena tops are trimmed by free().
  if (arena.index === 0 && arena.top > pad + pageSize) {
    bytes += Math.floor((arena.top - pad) / pageSize) * pageSize - pageSize;
  }
  return bytes;
}

/**
 * malloc_trim() madvises whole free pages, but the chunks stay in the bins afterwards, so the
 * free-chunk histogram alone keeps promising pages an earlier trim already returned. The
 * pages of an arena region that are not resident are free pages already returned (or never
 * touched): subtract them, region by region, from the free pages. Except the run of
 * non-resident pages that ends a thread arena's newest heap: that is the untouched end of its
 * top chunk (a new heap is what was asked plus M_TOP_PAD: 128 KiB by default, as much as a
 * whole 64 MiB heap if so configured), which is not in the free pages, and allocated pages never written below it.
 * Other pages allocated but never written are not resident either: then this says too little.
 */
export function glibcReleasable(info: MallocInfo, regions: ArenaResidency, pageSize: number, pad: number): GlibcReleasable {
  let mainFree = 0;
  let threadFree = 0;
  for (const arena of info.arenas) {
    const free = arenaFreePages(arena, pageSize, pad);
    if (arena.index === 0) {
      if (regions.mainOutside === 0) mainFree += free;
    } else threadFree += free;
  }
  const mainGone = Math.max(0, regions.mainMapped - regions.mainResident);
  const threadGone = Math.max(0, regions.threadMapped - regions.threadResident - regions.threadTail);
  const bytes = Math.max(0, mainFree - mainGone) + Math.max(0, threadFree - threadGone);
  return { bytes, freePages: mainFree + threadFree, nonResident: Math.min(mainFree, mainGone) + Math.min(threadFree, threadGone) };
}
