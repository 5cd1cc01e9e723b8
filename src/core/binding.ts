// The only module that loads the compiled addon, on first use: importing any module of the
// package but its entry point (src/index.ts loads it, as docs/api.md says) loads nothing native.
// Everything native is typed here.
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

/** malloc_info() rows; decoded by mallocInfoFromRows() in src/allocators/glibc/mallocinfo.ts. */
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
  /** setrlimit(RLIMIT_CORE, {0, 0}) on this process; false when it failed. */
  disableCoreDumps(): boolean;

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

/**
 * What a backend reads and calls: the addon in this process, or an agent in another one
 * (src/agent/binding.ts), whose records are the same.
 */
export type BackendBinding = Pick<
  NativeBinding,
  'wire' | 'sampleSync' | 'sample' | 'trimSync' | 'trim' | 'glibcInfo' | 'glibcWire' | 'jemallocInfo' | 'mimallocInfo' | 'mimallocStatsText'
>;

// node-gyp-build picks build/Release (a build from source) first, then the prebuild in
// prebuilds/<platform>-<arch>/ whose tags (libc, Node-API) match this process. Required with
// the addon, not with this module: importing a module of the package stays cheap.
type NodeGypBuild = { (dir: string): unknown; resolve(dir: string): string };
// eslint-disable-next-line @typescript-eslint/no-require-imports
const nodeGypBuild = (): NodeGypBuild => require('node-gyp-build') as NodeGypBuild;

const PACKAGE_DIR = path.join(__dirname, '..', '..');

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
    file = nodeGypBuild().resolve(PACKAGE_DIR);
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
    // node-gyp-build requires the file it resolves: the addon is the one module whose path is
    // known only at run time, and it is loaded through Node's module cache like any other.
    return nodeGypBuild()(PACKAGE_DIR) as NativeBinding;
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

let loaded: NativeBinding | undefined;

/**
 * The addon, loaded on its first use. Throws ERR_ADDON_NOT_FOUND or ERR_ADDON_LOAD (and again
 * on every later call) when it cannot be loaded.
 */
export function addon(): NativeBinding {
  return (loaded ??= loadBinding());
}

