// `allocator-stats allocators`: which allocators can be preloaded here, their versions as the
// allocator itself reports them (a child process with the library preloaded), and how to
// install the missing ones.
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { ALLOCATORS, findLibrary, installHint } from './allocators';

/** A child that only loads the addon and detects its allocator: far below this on any machine. */
const DETECT_TIMEOUT_MS = 30_000;

export interface InstalledAllocator {
  name: string;
  installed: boolean;
  library: string | null;
  /** The allocator's own version, from a child process it served; null when it did not load. */
  version: string | null;
  /** Whether it really served malloc in that child. */
  serves: boolean | null;
  install: string | null;
}

function detectUnder(library: string | null): { name: string; version: string | null } | null {
  const env = { ...process.env };
  delete env.LD_PRELOAD;
  delete env.NODE_OPTIONS;
  if (library) env.LD_PRELOAD = library;
  const index = path.join(__dirname, '..', 'index.js');
  try {
    const out = execFileSync(
      process.execPath,
      ['-e', `const d = require(${JSON.stringify(index)}).detectAllocator(); process.stdout.write(JSON.stringify({ name: d.name, version: d.version }))`],
      { env, timeout: DETECT_TIMEOUT_MS, stdio: ['ignore', 'pipe', 'ignore'] },
    );
    return JSON.parse(out.toString()) as { name: string; version: string | null };
  } catch {
    return null;
  }
}

export function listAllocators(): InstalledAllocator[] {
  return ALLOCATORS.map((entry) => {
    const library = findLibrary(entry);
    const installed = entry.files.length === 0 || library !== null;
    const seen = installed ? detectUnder(library) : null;
    return {
      name: entry.name,
      installed,
      library,
      version: seen && seen.name === entry.name ? seen.version : null,
      serves: seen ? seen.name === entry.name : null,
      install: installed ? null : installHint(entry),
    };
  });
}

export function allocatorsCommand(json: boolean): string {
  const list = listAllocators();
  if (json) return `${JSON.stringify(list, null, 2)}\n`;
  const rows = list.map((a) => [
    a.name,
    a.installed ? (a.serves === false ? 'installed, but did not serve malloc when preloaded' : 'installed') : 'missing',
    a.version ?? '',
    a.installed ? (a.library ?? '(the C library: nothing to preload)') : a.install!,
  ]);
  const head = ['allocator', 'status', 'version', 'library / how to install'];
  const widths = head.map((_, i) => Math.max(head[i].length, ...rows.map((r) => r[i].length)));
  return `${[head, ...rows].map((r) => r.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd()).join('\n')}\n`;
}
