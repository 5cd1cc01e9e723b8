// The allocators the CLI can preload: where their libraries live, which package installs
// them, and how a candidate (label, allocator, environment) is written on the command line.
import fs from 'node:fs';
import path from 'node:path';
import { ALLOCATORS as REGISTRY, allocatorFacts, allocatorOfLibrary, type BackendName } from '../allocators/registry';
import type { AllocatorName } from '../types';
import { CliError } from './errors';

export type PreloadableName = BackendName;

export interface AllocatorEntry {
  name: PreloadableName;
  /** Library file names to look for, most specific first; empty for glibc (nothing to preload). */
  files: readonly string[];
  debian: string | null;
  alpine: string | null;
}

/** Every allocator of the registry (src/allocators/registry.ts), in its order. */
export const ALLOCATORS: readonly AllocatorEntry[] = REGISTRY.map((a) => ({ name: a.name, files: a.libraries, debian: a.debian, alpine: a.alpine }));

// Where Debian/Ubuntu (multiarch), Alpine and RPM distributions put shared libraries.
const LIBRARY_DIRS = [
  `/usr/lib/${process.arch === 'arm64' ? 'aarch64' : 'x86_64'}-linux-gnu`,
  `/lib/${process.arch === 'arm64' ? 'aarch64' : 'x86_64'}-linux-gnu`,
  '/usr/lib64',
  '/usr/lib',
  '/lib',
  '/usr/local/lib',
];

export function allocatorEntry(name: string): AllocatorEntry | undefined {
  return ALLOCATORS.find((a) => a.name === name);
}

/** Absolute path of the allocator's library on this machine, or null when it is not installed. */
export function findLibrary(entry: AllocatorEntry): string | null {
  for (const file of entry.files) {
    for (const dir of LIBRARY_DIRS) {
      const p = path.join(dir, file);
      if (fs.existsSync(p)) return p;
    }
  }
  return null;
}

export function installHint(entry: AllocatorEntry): string {
  return `apt-get install ${entry.debian} (Debian/Ubuntu) or apk add ${entry.alpine} (Alpine)`;
}

/** What a candidate needs to start: the allocator it expects, the library to preload, its env. */
export interface Resolved {
  /** The allocator expected to serve malloc: from the name, or guessed from a library's file name. */
  name: AllocatorName;
  /** The library put into LD_PRELOAD; null for glibc. */
  library: string | null;
}

/** `glibc|jemalloc|tcmalloc|mimalloc|<path to .so>` → what to preload; throws CliError otherwise. */
export function resolveAllocator(spec: string, optionName: string): Resolved {
  const entry = allocatorEntry(spec);
  if (entry) {
    if (entry.files.length === 0) return { name: entry.name, library: null };
    const library = findLibrary(entry);
    if (!library) throw new CliError(`${entry.name} is not installed on this machine: ${installHint(entry)}`);
    return { name: entry.name, library };
  }
  if (spec.includes('/')) {
    const library = path.resolve(spec);
    if (!fs.existsSync(library)) throw new CliError(`Expected an existing shared library for ${optionName} but received ${JSON.stringify(spec)}: no such file`);
    const name = allocatorOfLibrary(path.basename(library)) ?? 'unknown';
    return { name, library };
  }
  throw new CliError(
    `Expected one of ${ALLOCATORS.map((a) => a.name).join(', ')} or a path to a .so for ${optionName} but received ${JSON.stringify(spec)}`,
  );
}

export interface Candidate {
  label: string;
  /** As written: an allocator name or a library path. */
  allocator: string;
  env: Record<string, string>;
}

/** The built-in set of `compare`: every allocator, untuned then tuned; each is used only where its library is installed. */
export const BUILT_IN_CANDIDATES: readonly Candidate[] = ALLOCATORS.flatMap((a) => [
  { label: a.name, allocator: a.name, env: {} },
  // Tuned variants worth comparing (the registry row's), each right after its untuned candidate.
  ...(allocatorFacts(a.name)?.tuned ?? []).map((t) => ({ label: t.label, allocator: a.name, env: t.env })),
]);

const LABEL = /^[A-Za-z0-9][A-Za-z0-9._-]{0,39}$/;

export function parseEnvAssignment(text: string, optionName: string): [string, string] {
  const eq = text.indexOf('=');
  if (eq <= 0 || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(text.slice(0, eq))) {
    throw new CliError(`Expected KEY=VALUE for ${optionName} but received ${JSON.stringify(text)}`);
  }
  return [text.slice(0, eq), text.slice(eq + 1)];
}

/** `<label>=<allocator>[ KEY=VALUE…]` */
export function parseCandidate(text: string): Candidate {
  const eq = text.indexOf('=');
  const label = eq > 0 ? text.slice(0, eq) : '';
  const rest = text.slice(eq + 1).trim().split(/\s+/).filter(Boolean);
  if (!LABEL.test(label) || rest.length === 0) {
    throw new CliError(`Expected '<label>=<allocator>[ KEY=VALUE…]' for --candidate but received ${JSON.stringify(text)}`);
  }
  const env: Record<string, string> = {};
  for (const assignment of rest.slice(1)) {
    const [k, v] = parseEnvAssignment(assignment, '--candidate');
    env[k] = v;
  }
  return { label, allocator: rest[0], env };
}
