// The only module that touches the compiled addon. Everything native is typed here.
import fs from 'node:fs';
import path from 'node:path';
import { withCode } from './errors';

export interface NativeProcessMemory {
  rss: number | null;
  rssAnon: number | null;
  rssFile: number | null;
  rssShmem: number | null;
  swap: number | null;
}

export interface NativeDetection {
  name: string;
  version: string | null;
  /** Numbers an allocator reports instead of a version string (tcmalloc: major, minor; mimalloc: mi_version()). */
  versionNumbers: number[];
  versionSuffix: string | null;
  method: string;
  library: string | null;
  inactive: Array<{ name: string; library: string | null }>;
}

/** mallinfo2() (or mallinfo()) decoded by name; `source` says which. */
export interface NativeMallinfo {
  source: 'mallinfo2' | 'mallinfo';
  arena: number;
  ordblks: number;
  smblks: number;
  hblks: number;
  hblkhd: number;
  usmblks: number;
  fsmblks: number;
  uordblks: number;
  fordblks: number;
  keepcost: number;
}

/** malloc_info() rows; decoded by mallocInfoFromRows() in src/mallocinfo.ts. */
export type NativeMallocInfoRows = Float64Array;

export interface NativeGlibcInfo {
  version: string | null;
  mallinfo2: boolean;
  mallinfo: boolean;
  mallocTrim: boolean;
  mallocInfo: boolean;
  mallopt: boolean;
  pageSize: number;
}

export type MallctlType = 'bool' | 'unsigned' | 'size_t' | 'ssize_t' | 'uint64_t' | 'string' | 'void';
export type MallctlValue = boolean | number | bigint | string | null;

/** A record decoded by name: every field the reader expects, unknown as null. */
export type Fields<N extends string> = { readonly [K in N]: number | null };

/** Names of the fields of each record, exported by the addon from the lists that fill them. */
interface NativeBackendWire {
  name: string;
  sample: string[];
  sampleArgs: string[];
  gauge: string[];
  trim: string[];
  trimArgs: string[];
}

interface NativeWire {
  sample: string[];
  trim: string[];
  backends: NativeBackendWire[];
}

export interface NativeMimallocProcessInfo {
  elapsedMs: number;
  userMs: number;
  systemMs: number;
  currentRss: number;
  peakRss: number;
  currentCommit: number;
  peakCommit: number;
  pageFaults: number;
}

export interface NativeBinding {
  detect(): NativeDetection;
  processMemory(): NativeProcessMemory;

  wire: NativeWire;
  /** Writes into `out` when it is long enough and returns how many values it wrote. */
  /** `args` are read during the call (copied before any threadpool work starts). */
  sampleSync(backend: number, args: number[] | Float64Array, out?: Float64Array): Float64Array | number;
  sample(backend: number, args: number[] | Float64Array): Promise<Float64Array>;
  trimSync(backend: number, args: number[] | Float64Array): Float64Array;
  trim(backend: number, args: number[] | Float64Array): Promise<Float64Array>;

  glibcInfo(): NativeGlibcInfo;
  glibcWire: { mallinfo: string[]; mallinfoSources: string[]; mallocInfoRow: string[]; mallocInfoRowKinds: string[] };
  glibcMallinfoSync(): Float64Array | null;
  glibcMallinfo(): Promise<Float64Array | null>;
  glibcMallocInfoSync(): NativeMallocInfoRows | null;
  glibcMallocInfo(): Promise<NativeMallocInfoRows | null>;
  glibcMallopt(param: number, value: number): boolean;
  /** malloc_trim(0), bare and unmeasured: the baseline for benchmarks. NaN without malloc_trim. */
  glibcMallocTrimSync(): number;
  glibcMallocTrim(): Promise<number>;

  jemallocInfo(): { serving: boolean; prefix: string | null; mibCache: boolean };
  jemallocRead(name: string, type: MallctlType): MallctlValue;
  jemallocWrite(name: string, type: MallctlType, value?: MallctlValue): void;
  jemallocExists(name: string): boolean | null;

  tcmallocProperties(names: readonly string[]): Float64Array;
  tcmallocSetProperty(name: string, value: number): boolean;
  tcmallocReleaseRate(rate?: number): number | null;

  mimallocInfo(): { serving: boolean; version: number | null; registeredThreads: number };
  mimallocOptionGet(option: number): number | null;
  mimallocOptionSet(option: number, value: number): boolean;
  mimallocStatsText(): string | null;
  /** This thread is exiting: trims stop waiting for it to collect. */
  mimallocClosing(): void;
}

// node-gyp-build picks build/Release (a build from source) first, then the prebuild in
// prebuilds/<platform>-<arch>/ whose tags (libc, Node-API) match this process.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const nodeGypBuild = require('node-gyp-build') as { resolve(dir: string): string };

const PACKAGE_DIR = path.join(__dirname, '..');

const BUILD_FROM_SOURCE =
  'To build it from source, install a C++ toolchain and Python, then run `npm rebuild allocator-stats`:\n' +
  '  Debian/Ubuntu:             apt-get install python3 make g++\n' +
  '  Alpine (musl):             apk add python3 make g++\n' +
  '  RHEL/Fedora/Amazon Linux:  dnf install python3 make gcc-c++';

function describeSystem(): string {
  const header = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header;
  const libc = header?.glibcVersionRuntime ? `glibc ${header.glibcVersionRuntime}` : 'not glibc (musl?)';
  return `${process.platform}-${process.arch}, ${libc}, Node ${process.versions.node}`;
}

function shippedPrebuilds(): string {
  try {
    const dirs = fs.readdirSync(path.join(PACKAGE_DIR, 'prebuilds'));
    return dirs.length > 0 ? `${dirs.join(' and ')} (glibc >= 2.28)` : 'none';
  } catch {
    return 'none';
  }
}

function loadBinding(): NativeBinding {
  let file: string;
  try {
    file = nodeGypBuild.resolve(PACKAGE_DIR);
  } catch (cause) {
    const error = new Error(
      `allocator-stats has no compiled addon for this system (${describeSystem()}). ` +
        `Prebuilt addons shipped: ${shippedPrebuilds()}; no build from source was found in ${path.join(PACKAGE_DIR, 'build')}.\n` +
        BUILD_FROM_SOURCE,
      { cause },
    );
    throw withCode(error, 'ERR_ADDON_NOT_FOUND');
  }
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require(file) as NativeBinding;
  } catch (cause) {
    const reason = cause instanceof Error ? cause.message : String(cause);
    const error = new Error(
      `allocator-stats could not load its compiled addon ${file} on this system (${describeSystem()}): ${reason}\n` +
        BUILD_FROM_SOURCE,
      { cause },
    );
    throw withCode(error, 'ERR_ADDON_LOAD');
  }
}

export const binding = loadBinding();

const known = (v: number): number | null => (Number.isNaN(v) ? null : v);

/**
 * Reads records by field name. `expected` lists the names a reader uses; each must be among
 * the names the addon exports for that record, or loading fails here rather than a number
 * being read from the wrong place.
 */
export class Layout<N extends string> {
  readonly size: number;
  private readonly names: readonly N[];
  private readonly indices: readonly number[];

  constructor(record: string, exported: readonly string[], expected: readonly N[]) {
    this.size = exported.length;
    this.names = expected;
    this.indices = expected.map((name) => {
      const i = exported.indexOf(name);
      if (i < 0) throw new Error(`the native ${record} record has no field ${name}: the addon and lib/ are from different builds`);
      return i;
    });
    this.decode = this.compile();
  }

  /**
   * Runs on every sample. Compiled once per record into one object literal, so that every
   * decoded record has the same shape from the start: filled key by key, a record of a few
   * dozen fields went through as many hidden-class transitions (or a dictionary) per sample
   * and cost more than the native sample itself.
   */
  readonly decode: (values: Float64Array, offset?: number) => Fields<N>;

  private compile(): (values: Float64Array, offset?: number) => Fields<N> {
    const body = this.names.map((name, k) => `${JSON.stringify(name)}: known(v[o + ${this.indices[k]}])`).join(', ');
    // The names are the reader's own constants, each also found among the addon's names.
    const make = new Function('known', `return function decode(v, o = 0) { return { ${body} }; };`) as (
      k: typeof known,
    ) => (values: Float64Array, offset?: number) => Fields<N>;
    return make(known);
  }

  /** Arguments in the order the addon declares them. */
  encode(values: { readonly [K in N]: number }): number[] {
    const out = new Array<number>(this.size).fill(NaN);
    for (let k = 0; k < this.names.length; k++) out[this.indices[k]] = values[this.names[k]];
    return out;
  }

  /**
   * encode() into one Float64Array that every call reuses: the addon copies its arguments
   * during the call, and an array per call would cost an allocation (and, for a typed array,
   * a malloc'd backing store freed by a later GC) on every sample.
   */
  encoder(): (values: { readonly [K in N]: number }) => Float64Array {
    const out = new Float64Array(this.size).fill(NaN);
    return (values) => {
      for (let k = 0; k < this.names.length; k++) out[this.indices[k]] = values[this.names[k]];
      return out;
    };
  }
}

// Room for a variable-length tail in the reused sync-sample buffer (glibc's malloc_info rows:
// a few hundred on a process with a handful of arenas); a longer sample gets its own array.
const SAMPLE_TAIL_ROOM = 4096;

const NO_TAIL = new Float64Array(0);

const COMMON_SAMPLE = ['serving', 'costNs', 'rss', 'rssAnon', 'rssFile', 'rssShmem', 'swap'] as const;
const COMMON_TRIM = ['result', 'durationNs', 'rssBefore', 'rssAfter'] as const;
const commonSample = new Layout('sample', binding.wire.sample, COMMON_SAMPLE);
const commonTrim = new Layout('trim', binding.wire.trim, COMMON_TRIM);

export interface NativeSample<S extends string> {
  /** Whether this allocator serves malloc(); when false, `fields` are all null. */
  serving: boolean;
  costNs: number;
  /** Read in the same native call as the allocator's numbers. */
  process: NativeProcessMemory;
  fields: Fields<S>;
  /** Variable-length data after the named fields (glibc: malloc_info() rows). For a sync
   * sample it views a buffer reused by the next one: read it before sampling again. */
  tail: Float64Array;
}

export interface NativeTrim<G extends string, T extends string> {
  result: number;
  durationNs: number;
  rssBefore: number | null;
  rssAfter: number | null;
  /** The backend's gauge fields right before and after the trim. */
  before: Fields<G>;
  after: Fields<G>;
  fields: Fields<T>;
}

export interface BackendShape<S extends string, SA extends string, G extends string, T extends string, TA extends string> {
  sample: readonly S[];
  sampleArgs: readonly SA[];
  gauge: readonly G[];
  trim: readonly T[];
  trimArgs: readonly TA[];
}

export interface NativeBackend<S extends string, SA extends string, G extends string, T extends string, TA extends string> {
  sampleSync(args: { readonly [K in SA]: number }): NativeSample<S>;
  sample(args: { readonly [K in SA]: number }): Promise<NativeSample<S>>;
  trimSync(args: { readonly [K in TA]: number }): NativeTrim<G, T>;
  trim(args: { readonly [K in TA]: number }): Promise<NativeTrim<G, T>>;
}

/** The native backend `name`, its records decoded by the names in `shape`. */
export function nativeBackend<S extends string, SA extends string, G extends string, T extends string, TA extends string>(
  name: string,
  shape: BackendShape<S, SA, G, T, TA>,
): NativeBackend<S, SA, G, T, TA> {
  const index = binding.wire.backends.findIndex((b) => b.name === name);
  if (index < 0) throw new Error(`the addon has no ${name} backend: the addon and lib/ are from different builds`);
  const wire = binding.wire.backends[index];
  const sample = new Layout(`${name} sample`, wire.sample, shape.sample);
  const sampleArgs = new Layout(`${name} sample arguments`, wire.sampleArgs, shape.sampleArgs);
  const encodeSampleArgs = sampleArgs.encoder();
  const gauge = new Layout(`${name} gauge`, wire.gauge, shape.gauge);
  const trim = new Layout(`${name} trim`, wire.trim, shape.trim);
  const trimArgs = new Layout(`${name} trim arguments`, wire.trimArgs, shape.trimArgs);
  // `length`: how much of `v` the sample filled (a sync sample fills the front of a reused buffer).
  const decodeSample = (v: Float64Array, length = v.length): NativeSample<S> => {
    const c = commonSample.decode(v);
    return {
      serving: c.serving === 1,
      costNs: c.costNs ?? 0,
      process: { rss: c.rss, rssAnon: c.rssAnon, rssFile: c.rssFile, rssShmem: c.rssShmem, swap: c.swap },
      fields: sample.decode(v, commonSample.size),
      tail: length > commonSample.size + sample.size ? v.subarray(commonSample.size + sample.size, length) : NO_TAIL,
    };
  };
  const decodeTrim = (v: Float64Array): NativeTrim<G, T> => {
    const c = commonTrim.decode(v);
    const at = commonTrim.size;
    return {
      result: c.result ?? 0,
      durationNs: c.durationNs ?? 0,
      rssBefore: c.rssBefore,
      rssAfter: c.rssAfter,
      before: gauge.decode(v, at),
      after: gauge.decode(v, at + gauge.size),
      fields: trim.decode(v, at + 2 * gauge.size),
    };
  };
  // Sync samples land in this buffer (decoded before the call returns): no ArrayBuffer is
  // created per sample, whose freed backing stores would slow every later mallinfo2() walk.
  const buffer = new Float64Array(commonSample.size + sample.size + SAMPLE_TAIL_ROOM);
  return {
    sampleSync: (args) => {
      const r = binding.sampleSync(index, encodeSampleArgs(args), buffer);
      return typeof r === 'number' ? decodeSample(buffer, r) : decodeSample(r);
    },
    sample: (args) => binding.sample(index, sampleArgs.encode(args)).then((v) => decodeSample(v)),
    trimSync: (args) => decodeTrim(binding.trimSync(index, trimArgs.encode(args))),
    trim: (args) => binding.trim(index, trimArgs.encode(args)).then(decodeTrim),
  };
}
