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
  method: string;
  library: string | null;
  inactive: Array<{ name: string; library: string | null }>;
}

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

/** One glibc sample as a flat array; decoded by glibcNumbers() in src/backends/glibc.ts. */
export type NativeGlibcSample = Float64Array;

/** malloc_info() rows, 6 numbers each; decoded by mallocInfoFromRows() in src/mallocinfo.ts. */
export type NativeMallocInfoRows = Float64Array;

export interface NativeGlibcTrim {
  result: number;
  durationNs: number;
  rssBefore: number | null;
  rssAfter: number | null;
  before: NativeGlibcSample | null;
  after: NativeGlibcSample | null;
}

export interface NativeGlibcInfo {
  version: string | null;
  mallinfo2: boolean;
  mallinfo: boolean;
  mallocTrim: boolean;
  mallocInfo: boolean;
  mallopt: boolean;
  pageSize: number;
}

export interface NativeJemallocSample {
  serving: boolean;
  statsEnabled: boolean;
  process: NativeProcessMemory;
  allocated: number | null;
  active: number | null;
  resident: number | null;
  mapped: number | null;
  retained: number | null;
  metadata: number | null;
  dirtyPages: number | null;
  muzzyPages: number | null;
  pageSize: number | null;
  backgroundThread: boolean | null;
  refreshed: boolean;
  epochAgeNs: number | null;
  epochCostNs: number | null;
  costNs: number;
}

export interface NativeJemallocTrim {
  result: number;
  durationNs: number;
  rssBefore: number | null;
  rssAfter: number | null;
  before: NativeJemallocSample;
  after: NativeJemallocSample;
}

export type MallctlType = 'bool' | 'unsigned' | 'size_t' | 'ssize_t' | 'uint64_t' | 'string' | 'void';
export type MallctlValue = boolean | number | bigint | string | null;

export interface NativeTcmallocSample {
  serving: boolean;
  process: NativeProcessMemory;
  properties: Record<string, number | null>;
  costNs: number;
}

export interface NativeTcmallocTrim {
  durationNs: number;
  rssBefore: number | null;
  rssAfter: number | null;
  before: NativeTcmallocSample;
  after: NativeTcmallocSample;
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

export interface NativeMimallocSample {
  serving: boolean;
  process: NativeProcessMemory;
  processInfo: NativeMimallocProcessInfo | null;
  costNs: number;
}

export interface NativeMimallocTrim {
  durationNs: number;
  rssBefore: number | null;
  rssAfter: number | null;
  /** Other JS threads asked to collect on their own thread, how many did in time, how many were closing. */
  threads: number;
  answered: number;
  unreachable: number;
  before: NativeMimallocSample;
  after: NativeMimallocSample;
}

export interface NativeBinding {
  detect(): NativeDetection;
  processMemory(): NativeProcessMemory;

  glibcInfo(): NativeGlibcInfo;
  glibcSampleSync(withMallocInfo: boolean): NativeGlibcSample;
  glibcSample(withMallocInfo: boolean): Promise<NativeGlibcSample>;
  glibcTrimSync(pad: number, withSamples: boolean): NativeGlibcTrim;
  glibcTrim(pad: number, withSamples: boolean): Promise<NativeGlibcTrim>;
  glibcMallinfoSync(): NativeMallinfo | null;
  glibcMallinfo(): Promise<NativeMallinfo | null>;
  glibcMallocInfoSync(): NativeMallocInfoRows | null;
  glibcMallocInfo(): Promise<NativeMallocInfoRows | null>;
  glibcMallopt(param: number, value: number): boolean;

  jemallocInfo(): { serving: boolean; prefix: string | null; mibCache: boolean };
  jemallocSampleSync(minEpochIntervalMs: number): NativeJemallocSample;
  jemallocSample(minEpochIntervalMs: number): Promise<NativeJemallocSample>;
  jemallocTrimSync(decay: boolean): NativeJemallocTrim;
  jemallocTrim(decay: boolean): Promise<NativeJemallocTrim>;
  jemallocRead(name: string, type: MallctlType): MallctlValue;
  jemallocWrite(name: string, type: MallctlType, value?: MallctlValue): void;
  jemallocExists(name: string): boolean | null;

  tcmallocSampleSync(properties: readonly string[]): NativeTcmallocSample;
  tcmallocSample(properties: readonly string[]): Promise<NativeTcmallocSample>;
  tcmallocTrimSync(properties: readonly string[]): NativeTcmallocTrim;
  tcmallocTrim(properties: readonly string[]): Promise<NativeTcmallocTrim>;
  tcmallocSetProperty(name: string, value: number): boolean;
  tcmallocReleaseRate(rate?: number): number | null;

  mimallocInfo(): { serving: boolean; version: number | null; registeredThreads: number };
  mimallocSampleSync(): NativeMimallocSample;
  mimallocSample(): Promise<NativeMimallocSample>;
  mimallocTrimSync(timeoutMs: number, delayOption: number): NativeMimallocTrim;
  mimallocTrim(timeoutMs: number, delayOption: number): Promise<NativeMimallocTrim>;
  mimallocOptionGet(option: number): number | null;
  mimallocOptionSet(option: number, value: number): boolean;
  mimallocStatsText(): string | null;
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
