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

import { addon, type BackendBinding } from '../../core/binding';

/** The names of the rows' fields and kinds, as the addon (or an agent) exports them. */
export type MallocInfoWire = Pick<BackendBinding['glibcWire'], 'mallocInfoRow' | 'mallocInfoRowKinds'>;

// Row layout of the native malloc_info() reader, by the names native/glibc/malloc-info.cc exports:
// kind, arena (-1: process totals), a, b, c, d; a row's kind is an index into its kinds.
// Read once per wire, on its first decode.
function rowLayout(wire: MallocInfoWire) {
  const { mallocInfoRow: row, mallocInfoRowKinds: kinds } = wire;
  const column = (name: string): number => {
    const i = row.indexOf(name);
    if (i < 0) throw new Error(`the native malloc_info row has no field ${name}: the addon and lib/ are from different builds`);
    return i;
  };
  const kind = (name: string): number => {
    const i = kinds.indexOf(name);
    if (i < 0) throw new Error(`the native malloc_info rows have no kind ${name}: the addon and lib/ are from different builds`);
    return i;
  };
  return {
    size: row.length,
    KIND: column('kind'),
    ARENA: column('arena'),
    A: column('a'),
    B: column('b'),
    C: column('c'),
    D: column('d'),
    BUCKET: kind('bucket'),
    UNSORTED: kind('unsorted'),
    TOTAL_FAST: kind('totalFast'),
    TOTAL_REST: kind('totalRest'),
    TOTAL_MMAP: kind('totalMmap'),
    SYSTEM_CURRENT: kind('systemCurrent'),
    SYSTEM_MAX: kind('systemMax'),
  };
}
const layouts = new WeakMap<MallocInfoWire, ReturnType<typeof rowLayout>>();
function layoutOf(wire: MallocInfoWire): ReturnType<typeof rowLayout> {
  let layout = layouts.get(wire);
  if (!layout) layouts.set(wire, (layout = rowLayout(wire)));
  return layout;
}

function emptyArena(index: number): MallocInfoArena {
  return { index, fast: { count: 0, size: 0 }, rest: { count: 0, size: 0 }, top: 0, systemCurrent: 0, systemMax: 0, buckets: [] };
}

/** Builds per-arena objects from the rows the native layer extracted from malloc_info()'s XML. */
export function mallocInfoFromRows(rows: Float64Array, offset = 0, wire: MallocInfoWire = addon().glibcWire): MallocInfo {
  const { size, KIND, ARENA, A, B, C, D, BUCKET, UNSORTED, TOTAL_FAST, TOTAL_REST, TOTAL_MMAP, SYSTEM_CURRENT, SYSTEM_MAX } = layoutOf(wire);
  const arenas: MallocInfoArena[] = [];
  const byIndex = new Map<number, MallocInfoArena>();
  const totals: MallocInfo['totals'] = {
    fast: { count: 0, size: 0 },
    rest: { count: 0, size: 0 },
    mmap: { count: 0, size: 0 },
    systemCurrent: 0,
    systemMax: 0,
  };
  for (let i = offset; i + size <= rows.length; i += size) {
    const kind = rows[i + KIND];
    const index = rows[i + ARENA];
    const a = rows[i + A];
    const b = rows[i + B];
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
        arena?.buckets.push({ from: a, to: b, total: rows[i + C], count: rows[i + D], kind: kind === BUCKET ? 'size' : 'unsorted' });
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
