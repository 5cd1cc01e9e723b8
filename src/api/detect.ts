// Which allocator serves malloc (allocators/identity.ts: decided once by the native layer), and
// what LD_PRELOAD asked for.
import fs from 'node:fs';
import path from 'node:path';
import { allocatorIdentity, asName, nativeDetection } from '../allocators/identity';
import { allocatorFacts, allocatorOfLibrary, PRELOAD_VARIABLE } from '../allocators/registry';
import type { AllocatorInfo, PreloadEntry } from '../types';

/** The mapped files of a process (this one by default), or null when its maps cannot be read. */
function mappedLibraries(pid: number | 'self' = 'self'): Set<string> | null {
  const mapped = new Set<string>();
  try {
    for (const line of fs.readFileSync(`/proc/${pid}/maps`, 'utf8').split('\n')) {
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

/** LD_PRELOAD's entries as another process has them, and whether each is mapped there (null: unknown). */
export function preloadEntriesOf(value: string | null, pid: number): PreloadEntry[] {
  return preloadEntries(value ?? undefined, mappedLibraries(pid));
}

let cached: AllocatorInfo | undefined;

/** Which allocator serves malloc() in this process. Decided once; later calls return a copy. */
export function detectAllocator(): AllocatorInfo {
  if (!cached) cached = buildInfo();
  return structuredClone(cached);
}

function buildInfo(): AllocatorInfo {
  const native = nativeDetection();
  const { name, version } = allocatorIdentity();
  const notes: string[] = [];
  const value = process.env[PRELOAD_VARIABLE] ?? null;
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
    version,
    method: native.method,
    library: native.library,
    inactive: native.inactive.map((i) => ({ name: asName(i.name), library: i.library })),
    preload: { value, entries },
    notes,
  };
}
