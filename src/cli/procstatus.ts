// /proc/<pid>/status and /proc/<pid>/maps: what a process's memory looks like from outside.
import fs from 'node:fs';
import { ALLOCATORS } from '../allocators/registry';
import type { AllocatorName } from '../types';

export interface ProcStatus {
  rss: number | null;
  rssAnon: number | null;
  rssFile: number | null;
  peak: number | null;
  threads: number | null;
}

function kib(text: string, key: string): number | null {
  const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text);
  return m ? Number(m[1]) * 1024 : null;
}

export function parseStatus(text: string): ProcStatus {
  const threads = /^Threads:\s+(\d+)/m.exec(text);
  const rssFile = kib(text, 'RssFile');
  const rssShmem = kib(text, 'RssShmem');
  return {
    rss: kib(text, 'VmRSS'),
    rssAnon: kib(text, 'RssAnon'),
    rssFile: rssFile === null ? null : rssFile + (rssShmem ?? 0),
    peak: kib(text, 'VmHWM'),
    threads: threads ? Number(threads[1]) : null,
  };
}

/** null once the process is gone (or is a zombie, whose memory lines are gone). */
export function readStatus(pid: number | 'self'): ProcStatus | null {
  try {
    const s = parseStatus(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return s.rss === null ? null : s;
  } catch {
    return null;
  }
}

// PF_EXITING in /proc/<pid>/stat's flags: the kernel has begun to tear the process down.
const PF_EXITING = 0x4;

/**
 * The fields of /proc/<pid>/stat after "pid (comm) ": state ppid pgrp session tty_nr tpgid
 * flags …; null when it cannot be read (the process is gone).
 */
function statFields(pid: number | string): string[] | null {
  let stat: string;
  try {
    stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  // comm may hold spaces and parentheses: it ends at the last ')'.
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

// A zombie (Z) or a process being reaped (X): it runs nothing and holds no memory.
const dead = (state: string): boolean => state === 'Z' || state === 'X';

/**
 * Whether the process has begun to exit (the kernel tears it down, or it is a zombie): its
 * memory is being unmapped, and a figure read now is no figure of the program.
 */
export function isExiting(pid: number): boolean {
  const fields = statFields(pid);
  return fields === null || dead(fields[0]) || (Number(fields[6]) & PF_EXITING) !== 0;
}

// A mapped lib<…name…>.so of each preloaded allocator in the registry.
const MAPPED_ALLOCATOR: Array<[RegExp, AllocatorName]> = ALLOCATORS.filter((a) => a.libraries.length > 0).map((a): [RegExp, AllocatorName] => [
  new RegExp(`/lib[^/]*${a.name}[^/]*\\.so`),
  a.name,
]);

/** Allocator libraries mapped into the process (a preloaded one comes first in malloc's lookup). */
export function mappedAllocators(pid: number): Array<{ name: AllocatorName; library: string }> | null {
  let text: string;
  try {
    text = fs.readFileSync(`/proc/${pid}/maps`, 'utf8');
  } catch {
    return null;
  }
  const seen = new Map<string, AllocatorName>();
  for (const line of text.split('\n')) {
    const at = line.indexOf('/');
    if (at < 0) continue;
    const file = line.slice(at).trim();
    const hit = MAPPED_ALLOCATOR.find(([re]) => re.test(file));
    if (hit && !seen.has(file)) seen.set(file, hit[1]);
  }
  return [...seen].map(([library, name]) => ({ name, library }));
}

/**
 * Whether a process group still has a process that runs, from /proc. A zombie does not count: it
 * holds no memory and runs nothing, and its reaper (init, for the orphans of a shell) may take
 * seconds. Without /proc, whether the group has any process at all.
 */
export function groupRunning(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ESRCH') return false;
  }
  let entries: string[];
  try {
    entries = fs.readdirSync('/proc');
  } catch {
    return true;
  }
  for (const name of entries) {
    if (!/^\d+$/.test(name)) continue;
    const fields = statFields(name);
    if (fields !== null && Number(fields[2]) === pgid && !dead(fields[0])) return true;
  }
  return false;
}
