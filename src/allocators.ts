// The registry: every allocator with a backend, and its facts, declared once. Everything that
// enumerates allocators derives from this table: AllocatorName (types.ts), detection's names and
// library matching (detect.ts), which file holds each backend (backends/index.ts), the CLI's
// library lookup, install hints and built-in candidates (cli/allocators.ts), the test helpers'
// library list, and test/allocators.test.ts, which checks each row against the addon and the tests.
//
// The facts sit in the row, not in the allocator's own file, because this table is read where the
// addon must not be loaded (the CLI's parent process) and by detect.ts, which the allocator files
// import: a row is plain data, and the allocator's file is required only when its backend is used.
//
// Adding an allocator <name> touches:
//   native/<name>.cc            its symbols, fields, raw calls, extras and detection probe
//   native/backend.h, native/backend.cc, binding.gyp   a line each (declare, table, sources)
//   src/<name>.ts               its numbers, its backend (registerBackend) and its public namespace
//   src/allocators.ts           a row here
//   src/index.ts, wrapper.mjs   a line each: the namespace export (test/module.test.ts checks both)
//   test/<name>.test.ts         its tests under the real library, preloaded
//   test/allocators.test.ts     a word in the public AllocatorName it checks (the name is public)
// plus, when it has them: its extra native functions' types in src/binding.ts, a version format
// in its row, tuned candidates in cli/allocators.ts, its environment variables in cli/runner.ts
// (ALLOCATOR_ENV) and doctor/monitor.ts, and advice and preload matching in doctor/rules.ts.

export interface AllocatorFacts {
  /** The name in AllocatorName, in the addon's backend table and in the file names src/<name>.ts, test/<name>.test.ts. */
  readonly name: string;
  /** Library file names to preload, most specific first; empty when nothing is preloaded (glibc). */
  readonly libraries: readonly string[];
  /** The package that installs the library on Debian/Ubuntu and on Alpine. */
  readonly debian: string | null;
  readonly alpine: string | null;
  /** Its version as text, when the addon reports numbers (versionNumbers, versionSuffix) instead. */
  readonly version?: (numbers: readonly number[], suffix: string | null) => string | null;
}

/** mi_version() (major*100 + minor*10 + patch) as "major.minor.patch". */
export function mimallocVersionText(v: number): string {
  return `${Math.floor(v / 100)}.${Math.floor((v % 100) / 10)}.${v % 10}`;
}

export const ALLOCATORS = [
  { name: 'glibc', libraries: [], debian: null, alpine: null },
  { name: 'jemalloc', libraries: ['libjemalloc.so.2', 'libjemalloc.so'], debian: 'libjemalloc2', alpine: 'jemalloc' },
  {
    name: 'tcmalloc',
    libraries: ['libtcmalloc_minimal.so.4', 'libtcmalloc.so.4'],
    debian: 'libtcmalloc-minimal4',
    alpine: 'gperftools',
    version: ([major, minor], suffix) => (minor === undefined ? null : `${major}.${minor}${suffix ?? ''}`),
  },
  {
    name: 'mimalloc',
    libraries: ['libmimalloc.so.2', 'libmimalloc.so'],
    debian: 'libmimalloc2.0',
    alpine: 'mimalloc2',
    version: ([v]) => (v === undefined ? null : mimallocVersionText(v)),
  },
] as const satisfies readonly AllocatorFacts[];

/** An allocator with a backend. */
export type BackendName = (typeof ALLOCATORS)[number]['name'];

/** An allocator that is preloaded from a library (every backend but glibc). */
export type PreloadedName = Extract<(typeof ALLOCATORS)[number], { libraries: readonly [string, ...string[]] }>['name'];

// Allocators detection can name that have no backend: nothing to read or trim, for this reason.
export const WITHOUT_BACKEND = {
  musl: 'musl malloc has no statistics API and returns freed memory eagerly: nothing to report or trim',
  unknown: 'the allocator serving malloc() was not recognised: its numbers are unknown',
} as const;

export type AllocatorName = BackendName | keyof typeof WITHOUT_BACKEND;

export const ALLOCATOR_NAMES: readonly AllocatorName[] = [
  ...ALLOCATORS.map((a) => a.name),
  ...(Object.keys(WITHOUT_BACKEND) as Array<keyof typeof WITHOUT_BACKEND>),
];

export function allocatorFacts(name: string): AllocatorFacts | undefined {
  return (ALLOCATORS as readonly AllocatorFacts[]).find((a) => a.name === name);
}

/** The preloaded allocator a library file is (its file name contains the allocator's name), if any. */
export function allocatorOfLibrary(file: string): BackendName | undefined {
  const base = (file.split('/').pop() ?? file).toLowerCase();
  return (ALLOCATORS as readonly AllocatorFacts[]).find((a) => a.libraries.length > 0 && base.includes(a.name))?.name as
    | BackendName
    | undefined;
}
