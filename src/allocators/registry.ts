// The registry: one static table, one row per allocator detection can name, its facts declared
// once. Everything that enumerates allocators reads it: AllocatorName (types.ts), detection's
// names, versions and library matching (allocators/identity.ts, api/detect.ts), which backend
// serves which allocator (backendFor), the CLI's library lookup, install hints, tuned candidates
// and environment (cli/allocators.ts, cli/runner.ts), the doctor's environment and advice
// (doctor/monitor.ts, doctor/rules.ts), the endpoint's configuration (diagnostics/config.ts),
// the test helpers' library list, and test/allocators/registry.test.ts, which checks each row against
// the addon and the public API.
//
// Every backend is imported here, statically, and built on its first use: importing the table
// (the CLI's parent process does) loads no addon, and no module registers itself on import.
//
// Adding an allocator <name> touches:
//   native/<name>/               its symbols, fields, raw calls, extras and detection probe
//   native/ backend table, binding.gyp   a line each (the table's order is detection's order)
//   src/allocators/<name>/       backend.ts (its numbers and backend), index.ts (its public
//                                namespace), advice.ts when the doctor has advice for it
//   src/allocators/registry.ts   a row here
//   src/index.ts, wrapper.mjs    a line each: the namespace export (test/packaging/module.test.ts checks both)
//   test/allocators/<name>/      its tests under the real library, preloaded (<name>.test.ts)
// plus, when it has extra native functions, their types in src/core/binding.ts.
import { addon, type BackendBinding } from '../core/binding';
import { checkNativeRef, type NativeRef } from '../core/wire';
import { GLIBC_TUNED, glibcRetentionAdvice } from './glibc/advice';
import { glibcBackend } from './glibc/backend';
import { JEMALLOC_TUNED, jemallocRetentionAdvice } from './jemalloc/advice';
import { jemallocBackend } from './jemalloc/backend';
import { mimallocRetentionAdvice } from './mimalloc/advice';
import { installMimallocExitHook, mimallocBackend } from './mimalloc/backend';
import { mimallocVersionText } from './mimalloc/numbers';
import { noneBackend } from './none';
import { tcmallocRetentionAdvice } from './tcmalloc/advice';
import { tcmallocBackend } from './tcmalloc/backend';
import type { Backend, RetentionInput, TunedCandidate } from './types';

/** Environment variables that change how an allocator behaves. */
export interface AllocatorEnv {
  /** By name. */
  readonly names: readonly string[];
  /** Every variable starting with one of these. */
  readonly prefixes: readonly string[];
  /** The ones the doctor's rules and advice read (a monitor records them). */
  readonly doctor: readonly string[];
}

export interface AllocatorRow {
  /** The name in AllocatorName, in the addon's backend table and in src/allocators/<name>/ and test/allocators/<name>/. */
  readonly name: string;
  /** Its entry in the addon's backend table; null when there is nothing to read or trim. */
  readonly native: NativeRef | null;
  /** Builds its backend, on first use: over the addon, or over an agent's `binding` (another process). */
  readonly backend: ((native: NativeRef, binding?: BackendBinding) => Backend) | null;
  /** Why it has no backend (every number null, no trim), when it has none. */
  readonly reason?: string;
  /** Library file names to preload, most specific first; empty when nothing is preloaded (glibc). */
  readonly libraries: readonly string[];
  /** The package that installs the library on Debian/Ubuntu and on Alpine. */
  readonly debian: string | null;
  readonly alpine: string | null;
  /** Its version as text, when the addon reports numbers (versionNumbers, versionSuffix) instead. */
  readonly version?: (numbers: readonly number[], suffix: string | null) => string | null;
  readonly env: AllocatorEnv;
  /** What the doctor advises when this allocator holds memory back. */
  readonly retentionAdvice?: (input: RetentionInput) => string[];
  /** Tuned variants `compare` runs right after the untuned one. */
  readonly tuned?: readonly TunedCandidate[];
  /** Run when the package is required in a thread (after the addon is loaded). */
  readonly whenLoaded?: () => void;
}

/** A row for an allocator detection can name but nothing can read or trim. */
function withoutBackend<N extends string>(name: N, reason: string) {
  return { name, native: null, backend: null, reason, libraries: [], debian: null, alpine: null, env: { names: [], prefixes: [], doctor: [] } } as const;
}

export const REGISTRY = [
  {
    name: 'glibc',
    native: { index: 3, name: 'glibc' },
    backend: glibcBackend,
    libraries: [],
    debian: null,
    alpine: null,
    env: {
      names: [
        'MALLOC_ARENA_MAX',
        'MALLOC_ARENA_TEST',
        'MALLOC_TRIM_THRESHOLD_',
        'MALLOC_TOP_PAD_',
        'MALLOC_MMAP_THRESHOLD_',
        'MALLOC_MMAP_MAX_',
        'MALLOC_PERTURB_',
        'MALLOC_CHECK_',
        'GLIBC_TUNABLES',
      ],
      prefixes: [],
      doctor: ['MALLOC_ARENA_MAX'],
    },
    retentionAdvice: glibcRetentionAdvice,
    tuned: GLIBC_TUNED,
  },
  {
    name: 'jemalloc',
    native: { index: 0, name: 'jemalloc' },
    backend: jemallocBackend,
    libraries: ['libjemalloc.so.2', 'libjemalloc.so'],
    debian: 'libjemalloc2',
    alpine: 'jemalloc',
    env: { names: ['MALLOC_CONF', '_RJEM_MALLOC_CONF', 'JE_MALLOC_CONF'], prefixes: [], doctor: ['MALLOC_CONF'] },
    retentionAdvice: jemallocRetentionAdvice,
    tuned: JEMALLOC_TUNED,
  },
  {
    name: 'tcmalloc',
    native: { index: 1, name: 'tcmalloc' },
    backend: tcmallocBackend,
    libraries: ['libtcmalloc_minimal.so.4', 'libtcmalloc.so.4'],
    debian: 'libtcmalloc-minimal4',
    alpine: 'gperftools',
    version: ([major, minor], suffix) => (minor === undefined ? null : `${major}.${minor}${suffix ?? ''}`),
    env: { names: [], prefixes: ['TCMALLOC_'], doctor: ['TCMALLOC_RELEASE_RATE'] },
    retentionAdvice: tcmallocRetentionAdvice,
  },
  {
    name: 'mimalloc',
    native: { index: 2, name: 'mimalloc' },
    backend: mimallocBackend,
    libraries: ['libmimalloc.so.2', 'libmimalloc.so'],
    debian: 'libmimalloc2.0',
    alpine: 'mimalloc2',
    version: ([v]) => (v === undefined ? null : mimallocVersionText(v)),
    env: { names: [], prefixes: ['MIMALLOC_'], doctor: ['MIMALLOC_PURGE_DELAY', 'MIMALLOC_DECOMMIT_DELAY'] },
    retentionAdvice: mimallocRetentionAdvice,
    whenLoaded: installMimallocExitHook,
  },
  withoutBackend('musl', 'musl malloc has no statistics API and returns freed memory eagerly: nothing to report or trim'),
  withoutBackend('unknown', 'the allocator serving malloc() was not recognised: its numbers are unknown'),
] as const satisfies readonly AllocatorRow[];

type Row = (typeof REGISTRY)[number];

export type AllocatorName = Row['name'];

/** An allocator with a backend. */
export type BackendName = Extract<Row, { native: NativeRef }>['name'];

/** An allocator that is preloaded from a library (every backend but glibc). */
export type PreloadedName = Extract<Row, { libraries: readonly [string, ...string[]] }>['name'];

export type BackendRow = AllocatorRow & {
  readonly name: BackendName;
  readonly native: NativeRef;
  readonly backend: (native: NativeRef, binding?: BackendBinding) => Backend;
};

const ROWS: readonly AllocatorRow[] = REGISTRY;

/** The rows with a backend, in the table's order. */
export const ALLOCATORS: readonly BackendRow[] = ROWS.filter((r): r is BackendRow => r.native !== null);

/** Allocators detection can name that have no backend: nothing to read or trim, for this reason. */
export const WITHOUT_BACKEND: Readonly<Record<Exclude<AllocatorName, BackendName>, string>> = Object.fromEntries(
  ROWS.filter((r) => r.native === null).map((r) => [r.name, r.reason ?? '']),
) as Record<Exclude<AllocatorName, BackendName>, string>;

export const ALLOCATOR_NAMES: readonly AllocatorName[] = REGISTRY.map((r) => r.name);

/** The order in which the addon asks its backends whether they serve malloc() (its table's order). */
export const DETECTION_ORDER: readonly BackendName[] = [...ALLOCATORS].sort((a, b) => a.native.index - b.native.index).map((r) => r.name);

export function allocatorRow(name: string): AllocatorRow | undefined {
  return ROWS.find((r) => r.name === name);
}

/** The row of an allocator with a backend, if `name` is one. */
export function allocatorFacts(name: string): BackendRow | undefined {
  return ALLOCATORS.find((r) => r.name === name);
}

/** The preloaded allocator a library file is (its file name contains the allocator's name), if any. */
export function allocatorOfLibrary(file: string): BackendName | undefined {
  const base = (file.split('/').pop() ?? file).toLowerCase();
  return ALLOCATORS.find((a) => a.libraries.length > 0 && base.includes(a.name))?.name;
}

/** The variable that preloads an allocator. */
export const PRELOAD_VARIABLE = 'LD_PRELOAD' as const;

/** Every allocator variable named in the table, LD_PRELOAD first, in the table's order. */
export const ALLOCATOR_ENV_NAMES: readonly string[] = [PRELOAD_VARIABLE, ...ROWS.flatMap((r) => r.env.names)];
const ENV_PREFIXES: readonly string[] = ROWS.flatMap((r) => r.env.prefixes);

/** A variable the doctor reads. */
export type DoctorEnvName = typeof PRELOAD_VARIABLE | Row['env']['doctor'][number];

/** The variables the doctor reads, LD_PRELOAD first. */
export const DOCTOR_ENV_NAMES = [PRELOAD_VARIABLE, ...ROWS.flatMap((r) => r.env.doctor)] as readonly DoctorEnvName[];

/** Whether a variable changes how some allocator behaves (or which one serves malloc()). */
export function isAllocatorVariable(name: string): boolean {
  return ALLOCATOR_ENV_NAMES.includes(name) || ENV_PREFIXES.some((p) => name.startsWith(p) && name.length > p.length);
}

/** Every allocator variable set in `env`: the named ones (null when unset) and those matching a prefix. */
export function allocatorEnv(env: NodeJS.ProcessEnv): Record<string, string | null> {
  const out: Record<string, string | null> = {};
  for (const n of ALLOCATOR_ENV_NAMES) out[n] = env[n] ?? null;
  for (const [k, v] of Object.entries(env)) {
    if (v !== undefined && !(k in out) && isAllocatorVariable(k)) out[k] = v;
  }
  return out;
}

const backends = new Map<string, Backend>();

/** The backend of `name`, built on first use; one that reads and trims nothing for an allocator without one. */
export function backendFor(name: AllocatorName): Backend {
  let backend = backends.get(name);
  if (backend) return backend;
  const row = allocatorRow(name);
  backend =
    row?.native && row.backend
      ? row.backend(row.native)
      : noneBackend(name, row?.reason ?? `${name} serves malloc() but this build has no ${name} backend: its numbers are unknown`);
  backends.set(name, backend);
  return backend;
}

type BackendOf<N extends BackendName> = ReturnType<Extract<Row, { name: N }>['backend']>;

/** The backend of `name` with its own extras (mimalloc's processInfo, say). */
export function backendOf<N extends BackendName>(name: N): BackendOf<N> {
  return backendFor(name) as BackendOf<N>;
}

/**
 * What requiring the package does in a thread (src/index.ts calls it; the package's own modules
 * load nothing until first used): load the addon, so that require() throws ERR_ADDON_NOT_FOUND or
 * ERR_ADDON_LOAD where it cannot be loaded, and so that the thread is known to the addon (a trim
 * under mimalloc asks every thread that loaded it to collect, `node -r allocator-stats` reaches
 * workers that way); then each row's hook.
 */
export function loadPackage(): void {
  addon();
  // An addon from another build fails here, not at the first sample under one allocator.
  for (const row of ALLOCATORS) checkNativeRef(row.native);
  for (const row of ROWS) row.whenLoaded?.();
}
