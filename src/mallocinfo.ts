// Parses glibc's malloc_info(3) XML into per-arena objects.

export interface MallocInfoBucket {
  /** Chunk sizes in this bin, inclusive. */
  from: number;
  to: number;
  /** Bytes in free chunks of this bin, and how many chunks. */
  total: number;
  count: number;
  /** 'unsorted' for the unsorted bin. */
  kind: 'size' | 'unsorted';
}

export interface MallocInfoArena {
  /** 0 is the main arena (the brk heap); the others are thread arenas. */
  index: number;
  /** Free chunks, fast bins apart from the rest; `rest` includes the top chunk. */
  fast: { count: number; size: number };
  rest: { count: number; size: number };
  /** Size of the top chunk: `rest.size` minus the binned free chunks. */
  top: number;
  /** Memory the arena got from the system, now and at its peak. */
  systemCurrent: number;
  systemMax: number;
  /** Free chunks by size; fast bins have kind 'size' and sizes up to 160 bytes. */
  buckets: MallocInfoBucket[];
}

export interface MallocInfo {
  arenas: MallocInfoArena[];
  totals: {
    fast: { count: number; size: number };
    rest: { count: number; size: number };
    mmap: { count: number; size: number };
    systemCurrent: number;
    systemMax: number;
  };
}

// Row layout of the native malloc_info() reader: kind, arena (-1: process totals), a, b, c, d.
export const MALLOC_INFO_ROW = 6;
const BUCKET = 1;
const UNSORTED = 2;
const TOTAL_FAST = 3;
const TOTAL_REST = 4;
const TOTAL_MMAP = 5;
const SYSTEM_CURRENT = 6;
const SYSTEM_MAX = 7;

function emptyArena(index: number): MallocInfoArena {
  return { index, fast: { count: 0, size: 0 }, rest: { count: 0, size: 0 }, top: 0, systemCurrent: 0, systemMax: 0, buckets: [] };
}

/** Builds per-arena objects from the rows the native layer extracted from malloc_info()'s XML. */
export function mallocInfoFromRows(rows: Float64Array, offset = 0): MallocInfo {
  const arenas: MallocInfoArena[] = [];
  const byIndex = new Map<number, MallocInfoArena>();
  const totals: MallocInfo['totals'] = {
    fast: { count: 0, size: 0 },
    rest: { count: 0, size: 0 },
    mmap: { count: 0, size: 0 },
    systemCurrent: 0,
    systemMax: 0,
  };
  for (let i = offset; i + MALLOC_INFO_ROW <= rows.length; i += MALLOC_INFO_ROW) {
    const kind = rows[i];
    const index = rows[i + 1];
    const a = rows[i + 2];
    const b = rows[i + 3];
    let arena: MallocInfoArena | undefined;
    if (index >= 0) {
      arena = byIndex.get(index);
      if (!arena) {
        arena = emptyArena(index);
        byIndex.set(index, arena);
        arenas.push(arena);
      }
    }
    const target = arena ?? totals;
    switch (kind) {
      case BUCKET:
      case UNSORTED:
        arena?.buckets.push({ from: a, to: b, total: rows[i + 4], count: rows[i + 5], kind: kind === BUCKET ? 'size' : 'unsorted' });
        break;
      case TOTAL_FAST:
        target.fast = { count: a, size: b };
        break;
      case TOTAL_REST:
        target.rest = { count: a, size: b };
        break;
      case TOTAL_MMAP:
        if (!arena) totals.mmap = { count: a, size: b };
        break;
      case SYSTEM_CURRENT:
        target.systemCurrent = a;
        break;
      case SYSTEM_MAX:
        target.systemMax = a;
        break;
    }
  }
  for (const arena of arenas) {
    // The histogram lists fast-bin chunks too; `rest` counts the other bins plus top.
    let binned = -arena.fast.size;
    for (const bucket of arena.buckets) binned += bucket.total;
    arena.top = Math.max(0, arena.rest.size - binned);
  }
  return { arenas, totals };
}
