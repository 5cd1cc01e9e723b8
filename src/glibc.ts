// The glibc namespace: glibc's own calls, for when the unified numbers are not enough.
import { binding, Layout, type NativeMallinfo } from './binding';
import { requireAllocator } from './detect';
import { keepCallerStack, typeError, unsupported, withCode } from './errors';
import { mallocInfoFromRows, type MallocInfo } from './mallocinfo';
import { trim as unifiedTrim } from './trim';
import type { TrimOptions, TrimResult } from './types';
import { integer } from './validate';

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

const requireGlibc = (what: string): void => requireAllocator('glibc', what, 'glibc malloc');

const MALLINFO = ['source', 'arena', 'ordblks', 'smblks', 'hblks', 'hblkhd', 'usmblks', 'fsmblks', 'uordblks', 'fordblks', 'keepcost'] as const;
let mallinfoLayout: Layout<(typeof MALLINFO)[number]> | undefined;

function decodeMallinfo(v: Float64Array | null): Mallinfo {
  if (v === null) throw unsupported('neither mallinfo2() nor mallinfo() exists in this glibc');
  mallinfoLayout ??= new Layout('mallinfo', binding.glibcWire.mallinfo, MALLINFO);
  const f = mallinfoLayout.decode(v);
  const { source, ...fields } = f;
  const counters = {} as Omit<Mallinfo, 'source'>;
  for (const [k, value] of Object.entries(fields)) counters[k as keyof typeof counters] = value ?? 0;
  return { source: binding.glibcWire.mallinfoSources[source ?? 0] as Mallinfo['source'], ...counters };
}

/** mallinfo2() (mallinfo() before glibc 2.33, `source` says which), on the threadpool. */
export function mallinfo2(): Promise<Mallinfo> {
  try {
    requireGlibc('glibc.mallinfo2()');
  } catch (error) {
    return Promise.reject(error);
  }
  return keepCallerStack(binding.glibcMallinfo(), mallinfo2).then(decodeMallinfo);
}

/** mallinfo2() on the JS thread: O(free chunks), and it locks every arena. */
export function mallinfo2Sync(): Mallinfo {
  requireGlibc('glibc.mallinfo2Sync()');
  return decodeMallinfo(binding.glibcMallinfoSync());
}

function parsed(rows: Float64Array | null): MallocInfo {
  if (rows === null) throw unsupported('malloc_info() does not exist in this libc');
  return mallocInfoFromRows(rows);
}

/** malloc_info(3) parsed into one object per arena, on the threadpool. */
export function mallocInfo(): Promise<MallocInfo> {
  try {
    requireGlibc('glibc.mallocInfo()');
  } catch (error) {
    return Promise.reject(error);
  }
  return keepCallerStack(binding.glibcMallocInfo(), mallocInfo).then(parsed);
}

export function mallocInfoSync(): MallocInfo {
  requireGlibc('glibc.mallocInfoSync()');
  return parsed(binding.glibcMallocInfoSync());
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
  integer(value, 'value', 0, 2 ** 31 - 1);
  requireGlibc('glibc.mallopt()');
  if (!binding.glibcMallopt(MALLOPT_PARAMS[param], value)) {
    throw withCode(new Error(`glibc rejected mallopt(${param}, ${value})`), 'ERR_MALLOPT_FAILED');
  }
}

/** malloc_trim(pad) with the same measured result as trim(); rejects unless glibc serves malloc. */
export function trim(options?: TrimOptions): Promise<TrimResult> {
  try {
    requireGlibc('glibc.trim()');
  } catch (error) {
    return Promise.reject(error);
  }
  return unifiedTrim(options);
}
