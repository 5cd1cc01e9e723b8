// The glibc namespace: glibc's own calls, for when the unified numbers are not enough.
import { requireAllocator } from '../identity';
import { trimRequest, trimUnder } from '../trims';
import { addon } from '../../core/binding';
import { keepCallerStack, rejecting, typeError, unsupported, withCode } from '../../core/errors';
import { integer } from '../../core/validate';
import { Layout } from '../../core/wire';
import type { NativeMallinfo } from '../../core/binding';
import type { TrimOptions, TrimResult } from '../../types';
import { mallocInfoFromRows, type MallocInfo } from './mallocinfo';
import { MALLINFO_FIELDS } from './numbers';

export type { MallocInfo, MallocInfoArena, MallocInfoBucket } from './mallocinfo';
export type Mallinfo = NativeMallinfo;

/** mallopt(3) parameters, by glibc's names. */
export const MALLOPT_PARAMS = {
  M_MXFAST: 1,
  M_TRIM_THRESHOLD: -1,
  M_TOP_PAD: -2,
  M_MMAP_THRESHOLD: -3,
  M_MMAP_MAX: -4,
  M_ARENA_MAX: -8,
} as const;

export type MalloptParam = keyof typeof MALLOPT_PARAMS;

// sizeof(size_t) in this process: glibc's limits below are written in terms of it.
const SIZE_T_BYTES = /64|s390x/.test(process.arch) ? 8 : 4;
const INT_MAX = 2 ** 31 - 1;

/**
 * The values glibc's mallopt() accepts for each parameter (malloc/malloc.c): M_MXFAST at
 * most MAX_FAST_SIZE = 80 × sizeof(size_t) / 4; M_MMAP_THRESHOLD at most HEAP_MAX_SIZE / 2
 * (2 × 4 MiB × sizeof(long) / 2), which glibc before 2.35 enforces; the others any int
 * (M_ARENA_MAX ignores 0).
 */
export const MALLOPT_RANGES: Record<MalloptParam, { min: number; max: number; unit: string }> = {
  M_MXFAST: { min: 0, max: (80 * SIZE_T_BYTES) / 4, unit: 'bytes' },
  M_TRIM_THRESHOLD: { min: 0, max: INT_MAX, unit: 'bytes' },
  M_TOP_PAD: { min: 0, max: INT_MAX, unit: 'bytes' },
  M_MMAP_THRESHOLD: { min: 0, max: 4 * 1024 * 1024 * SIZE_T_BYTES, unit: 'bytes' },
  M_MMAP_MAX: { min: 0, max: INT_MAX, unit: 'mappings' },
  M_ARENA_MAX: { min: 1, max: INT_MAX, unit: 'arenas' },
};

const requireGlibc = (what: string): void => requireAllocator('glibc', what, 'glibc malloc');

const MALLINFO = ['source', ...MALLINFO_FIELDS] as const;
let mallinfoLayout: Layout<(typeof MALLINFO)[number]> | undefined;

function decodeMallinfo(v: Float64Array | null): Mallinfo {
  if (v === null) throw unsupported('neither mallinfo2() nor mallinfo() exists in this glibc');
  mallinfoLayout ??= new Layout('mallinfo', addon().glibcWire.mallinfo, MALLINFO);
  const f = mallinfoLayout.decode(v);
  const { source, ...fields } = f;
  const counters = {} as Omit<Mallinfo, 'source'>;
  for (const [k, value] of Object.entries(fields)) counters[k as keyof typeof counters] = value ?? 0;
  return { source: addon().glibcWire.mallinfoSources[source ?? 0] as Mallinfo['source'], ...counters };
}

/** A glibc call on the threadpool: rejects unless glibc serves malloc, with the caller's stack. */
function onThreadpool<T, R>(what: string, caller: Function, call: () => Promise<T>, decode: (value: T) => R): Promise<R> {
  return rejecting(() => {
    requireGlibc(what);
    return keepCallerStack(call(), caller).then(decode);
  });
}

/** mallinfo2() (mallinfo() before glibc 2.33, `source` says which), on the threadpool. */
export function mallinfo2(): Promise<Mallinfo> {
  return onThreadpool('glibc.mallinfo2()', mallinfo2, () => addon().glibcMallinfo(), decodeMallinfo);
}

/** mallinfo2() on the JS thread: O(free chunks), and it locks every arena. */
export function mallinfo2Sync(): Mallinfo {
  requireGlibc('glibc.mallinfo2Sync()');
  return decodeMallinfo(addon().glibcMallinfoSync());
}

function parsed(rows: Float64Array | null): MallocInfo {
  if (rows === null) throw unsupported('malloc_info() does not exist in this libc');
  return mallocInfoFromRows(rows);
}

/** malloc_info(3) parsed into one object per arena, on the threadpool. */
export function mallocInfo(): Promise<MallocInfo> {
  return onThreadpool('glibc.mallocInfo()', mallocInfo, () => addon().glibcMallocInfo(), parsed);
}

export function mallocInfoSync(): MallocInfo {
  requireGlibc('glibc.mallocInfoSync()');
  return parsed(addon().glibcMallocInfoSync());
}

/**
 * mallopt(3) by name. Takes effect for the whole process at once. Throws ERR_MALLOPT_PARAM
 * for an unknown name and ERR_MALLOPT_FAILED when glibc rejects the value.
 */
export function mallopt(param: MalloptParam, value: number): void {
  if (typeof param !== 'string') throw typeError('a mallopt parameter name', 'param', param);
  if (!Object.prototype.hasOwnProperty.call(MALLOPT_PARAMS, param)) {
    throw withCode(
      new TypeError(`Expected one of ${Object.keys(MALLOPT_PARAMS).join(', ')} for param but received ${JSON.stringify(param)}`),
      'ERR_MALLOPT_PARAM',
    );
  }
  // Below the minimum glibc does not refuse but ignores the value (M_ARENA_MAX 0), so it is
  // refused here; above the maximum glibc itself refuses (its limits moved between versions).
  integer(value, 'value', MALLOPT_RANGES[param].min, INT_MAX);
  requireGlibc('glibc.mallopt()');
  // glibc is the judge (its limits moved between versions); its refusal says what it takes.
  if (!addon().glibcMallopt(MALLOPT_PARAMS[param], value)) {
    const { min, max, unit } = MALLOPT_RANGES[param];
    throw withCode(
      new RangeError(`Expected ${min} to ${max} ${unit} for ${param} but received ${value} (glibc rejected mallopt(${param}, ${value}))`),
      'ERR_MALLOPT_FAILED',
    );
  }
}

/** malloc_trim(pad) with the same measured result as trim(); rejects unless glibc serves malloc. */
export function trim(options?: TrimOptions): Promise<TrimResult> {
  return trimUnder(() => requireGlibc('glibc.trim()'), () => trimRequest(options));
}
