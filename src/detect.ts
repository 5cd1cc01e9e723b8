// Which allocator serves malloc, decided once per process by the native layer (from the
// allocators' own symbols plus a check that malloc really goes to them), and what
// LD_PRELOAD asked for.
import fs from 'node:fs';
import path from 'node:path';
import { ALLOCATOR_NAMES, allocatorFacts, allocatorOfLibrary } from './allocators';
import { binding } from './binding';
import { unsupported } from './errors';
import type { AllocatorInfo, AllocatorName, PreloadEntry } from './types';

export { mimallocVersionText } from './allocators';

function asName(name: string): AllocatorName {
  return (ALLOCATOR_NAMES as readonly string[]).includes(name) ? (name as AllocatorName) : 'unknown';
}

/** The mapped files of this process, or null when /proc/self/maps cannot be read. */
function mappedLibraries(): Set<string> | null {
  const mapped = new Set<string>();
  try {
    for (const line of fs.readFileSync('/proc/self/maps', 'utf8').split('\n')) {
      const at = line.indexOf('/');
      if (at >= 0) mapped.add(line.slice(at).trim());
    }
  } catch {
    // Not Linux, or /proc hidden (a sandbox, a mount namespace): nothing to compare against.
    return null;
  }
  return mapped;
}

function preloadEntries(value: string | undefined, mapped: Set<string> | null): PreloadEntry[] {
  if (!value) return [];
  if (mapped === null) {
    return value
      .split(/[\s:]+/)
      .filter(Boolean)
      .map((entry) => ({ entry, loaded: null }));
  }
  const names = [...mapped].map((p) => path.basename(p));
  return value
    .split(/[\s:]+/)
    .filter(Boolean)
    .map((entry) => {
      let loaded = mapped.has(entry);
      if (!loaded) {
        // A bare name is searched in the library path; a path may go through symlinks.
        const base = path.basename(entry);
        let real = entry;
        try {
          real = fs.realpathSync(entry);
        } catch {
          // not a path that exists here
        }
        loaded = mapped.has(real) || (!entry.includes('/') && names.includes(base));
      }
      return { entry, loaded };
    });
}

// Allocators that report numbers instead of a version string say how to write them (src/allocators.ts).
function versionOf(native: { name: string; version: string | null; versionNumbers: number[]; versionSuffix: string | null }): string | null {
  if (native.version !== null) return native.version;
  return allocatorFacts(native.name)?.version?.(native.versionNumbers, native.versionSuffix) ?? null;
}

let cached: AllocatorInfo | undefined;

/** Which allocator serves malloc() in this process. Decided once; later calls return a copy. */
export function detectAllocator(): AllocatorInfo {
  if (!cached) cached = buildInfo();
  return structuredClone(cached);
}

export function allocatorIdentity(): { name: AllocatorName; version: string | null } {
  if (!cached) cached = buildInfo();
  return { name: cached.name, version: cached.version };
}

/** Throws ERR_ALLOCATOR_UNSUPPORTED unless `expected` serves malloc: `what` needs `label`. */
export function requireAllocator(expected: AllocatorName, what: string, label: string = expected): void {
  const { name } = allocatorIdentity();
  if (name !== expected) throw unsupported(`${what} needs ${label}, but ${name} serves malloc() in this process`);
}

function buildInfo(): AllocatorInfo {
  const native = binding.detect();
  const name = asName(native.name);
  const notes: string[] = [];
  const value = process.env.LD_PRELOAD ?? null;
  const mapped = mappedLibraries();
  const entries = preloadEntries(value ?? undefined, mapped);

  if (mapped === null && entries.length > 0) {
    notes.push('whether the LD_PRELOAD entries were loaded is unknown: /proc/self/maps cannot be read');
  }
  // Allocators preloaded behind the one that serves malloc(): said once, as such.
  const outranked = new Set<string>();
  for (const e of entries) {
    const wanted = allocatorOfLibrary(path.basename(e.entry));
    if (e.loaded === null) continue;
    if (!e.loaded) {
      notes.push(`LD_PRELOAD names ${e.entry} but it is not loaded in this process (wrong path or architecture?)`);
    } else if (wanted && wanted !== name) {
      notes.push(`LD_PRELOAD loads ${e.entry} but ${name} serves malloc()`);
      outranked.add(wanted);
    }
  }
  if ((allocatorFacts(name)?.libraries.length ?? 0) > 0 && mapped !== null && !entries.some((e) => e.loaded)) {
    notes.push(`${name} serves malloc() without LD_PRELOAD (linked in, or preloaded through /etc/ld.so.preload)`);
  }
  for (const other of native.inactive) {
    if (outranked.has(other.name)) continue;
    notes.push(
      `${other.name} symbols are present${other.library ? ` in ${other.library}` : ''} but it does not serve malloc() ` +
        '(a library carrying its own copy); its numbers are not the process allocator’s',
    );
  }
  if (name === 'unknown') notes.push(native.method);
  return {
    name,
    version: versionOf(native),
    method: native.method,
    library: native.library,
    inactive: native.inactive.map((i) => ({ name: asName(i.name), library: i.library })),
    preload: { value, entries },
    notes,
  };
}
