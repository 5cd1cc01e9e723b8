// The only module that touches the compiled addon. Everything native is typed here.
import path from 'node:path';

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

export interface NativeArenaResidency {
  mainMapped: number;
  mainResident: number;
  threadMapped: number;
  threadResident: number;
  heaps: number;
  arenas: number;
  matchesMallinfo: boolean;
  scans: number;
}

export interface NativeGlibcSample {
  glibc: boolean;
  process: NativeProcessMemory;
  mallinfo: NativeMallinfo | null;
  arenas: NativeArenaResidency | null;
  mallocInfo: string | null;
  costNs: number;
}

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
  glibcMallocInfoSync(): string | null;
  glibcMallocInfo(): Promise<string | null>;
  glibcMallopt(param: number, value: number): boolean;
}

// node-gyp-build looks in prebuilds/<platform>-<arch>/ first, then build/Release.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const load = require('node-gyp-build') as (dir: string) => unknown;

export const binding = load(path.join(__dirname, '..')) as NativeBinding;
