// The container's memory limit and usage: cgroup v2 (memory.max / memory.current) or v1
// (memory.limit_in_bytes / memory.usage_in_bytes). Paths are found once; each read is two
// small files.
import fs from 'node:fs';

export interface CgroupMemory {
  limit: number | null;
  usage: number | null;
}

interface Files {
  limit: string;
  usage: string;
}

// cgroup v1 reports "no limit" as a huge number (LONG_MAX rounded down to a page).
const V1_UNLIMITED = 2 ** 60;

let files: Files | null | undefined;

function locate(): Files | null {
  let lines: string[];
  try {
    lines = fs.readFileSync('/proc/self/cgroup', 'utf8').split('\n').filter(Boolean);
  } catch {
    return null;
  }
  for (const line of lines) {
    const m = /^\d+:([^:]*):(.*)$/.exec(line);
    if (!m) continue;
    const [, controllers, path] = m;
    if (controllers === '') {
      const dir = `/sys/fs/cgroup${path === '/' ? '' : path}`;
      if (fs.existsSync(`${dir}/memory.current`)) return { limit: `${dir}/memory.max`, usage: `${dir}/memory.current` };
      // Inside a container the cgroup namespace makes the process's own cgroup the root.
      if (fs.existsSync('/sys/fs/cgroup/memory.current')) return { limit: '/sys/fs/cgroup/memory.max', usage: '/sys/fs/cgroup/memory.current' };
    }
    if (controllers.split(',').includes('memory')) {
      for (const dir of [`/sys/fs/cgroup/memory${path}`, '/sys/fs/cgroup/memory']) {
        if (fs.existsSync(`${dir}/memory.usage_in_bytes`)) return { limit: `${dir}/memory.limit_in_bytes`, usage: `${dir}/memory.usage_in_bytes` };
      }
    }
  }
  return null;
}

function readNumber(file: string): number | null {
  try {
    const text = fs.readFileSync(file, 'utf8').trim();
    if (text === 'max') return null;
    const n = Number(text);
    return Number.isFinite(n) && n >= 0 && n < V1_UNLIMITED ? n : null;
  } catch {
    return null;
  }
}

/** The cgroup's memory limit (null when unlimited) and usage, or null when there is no memory cgroup. */
export function cgroupMemory(): CgroupMemory | null {
  if (files === undefined) files = locate();
  if (files === null) return null;
  return { limit: readNumber(files.limit), usage: readNumber(files.usage) };
}
