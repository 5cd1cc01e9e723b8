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

const ATTR = /(\w+)="([^"]*)"/g;

function attributes(tag: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of tag.matchAll(ATTR)) out[m[1]] = m[2];
  return out;
}

const num = (s: string | undefined): number => (s === undefined ? 0 : Number(s));

export function parseMallocInfo(xml: string): MallocInfo {
  const arenas: MallocInfoArena[] = [];
  const totals: MallocInfo['totals'] = {
    fast: { count: 0, size: 0 },
    rest: { count: 0, size: 0 },
    mmap: { count: 0, size: 0 },
    systemCurrent: 0,
    systemMax: 0,
  };
  let arena: MallocInfoArena | null = null;
  for (const m of xml.matchAll(/<(\/?)(heap|size|unsorted|total|system)\b([^>]*)>/g)) {
    const [, closing, tag, rest] = m;
    if (tag === 'heap') {
      if (closing) {
        if (arena) {
          // The histogram lists fast-bin chunks too; `rest` counts the other bins plus top.
          const binned = arena.buckets.reduce((sum, b) => sum + b.total, 0) - arena.fast.size;
          arena.top = Math.max(0, arena.rest.size - binned);
          arenas.push(arena);
        }
        arena = null;
      } else {
        arena = {
          index: num(attributes(rest).nr),
          fast: { count: 0, size: 0 },
          rest: { count: 0, size: 0 },
          top: 0,
          systemCurrent: 0,
          systemMax: 0,
          buckets: [],
        };
      }
      continue;
    }
    const a = attributes(rest);
    if (tag === 'size' || tag === 'unsorted') {
      arena?.buckets.push({
        from: num(a.from),
        to: num(a.to),
        total: num(a.total),
        count: num(a.count),
        kind: tag === 'unsorted' ? 'unsorted' : 'size',
      });
    } else if (tag === 'total') {
      const target = arena ?? totals;
      const value = { count: num(a.count), size: num(a.size) };
      if (a.type === 'fast') target.fast = value;
      else if (a.type === 'rest') target.rest = value;
      else if (a.type === 'mmap' && !arena) totals.mmap = value;
    } else if (tag === 'system') {
      const target = arena ?? totals;
      if (a.type === 'current') target.systemCurrent = num(a.size);
      else if (a.type === 'max') target.systemMax = num(a.size);
    }
  }
  return { arenas, totals };
}

/**
 * Bytes that malloc_trim() could hand back by madvise: whole pages inside free chunks of the
 * regular bins (fast-bin chunks are tiny) plus, for the main arena, the top chunk above
 * `pad`. Each free chunk loses on average about a page to its header and page alignment.
 * Pages already returned by an earlier trim stay in the bins, so callers cap this by what
 * is resident.
 */
export function trimmableEstimate(info: MallocInfo, pageSize: number, pad: number): number {
  let bytes = 0;
  for (const arena of info.arenas) {
    for (const b of arena.buckets) {
      if (b.kind === 'size' && b.to <= 160) continue; // fast bins
      bytes += Math.max(0, b.total - b.count * pageSize);
    }
    // malloc_trim shrinks only the main arena's top (sbrk); thread-arena tops are trimmed by free().
    if (arena.index === 0 && arena.top > pad + pageSize) {
      bytes += Math.floor((arena.top - pad) / pageSize) * pageSize - pageSize;
    }
  }
  return Math.max(0, bytes);
}
