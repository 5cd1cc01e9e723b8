// Containers: in a memory cgroup with a limit, the doctor reads the limit and usage into every
// sample and projects when a growing part meets the limit, raising the severity as it nears.
// Needs root and a writable cgroup memory hierarchy (v1 or v2) to make a cgroup with a limit.
import fs from 'node:fs';
import path from 'node:path';
import { runScenario } from './helpers';
import { MiB, testIf } from '../helpers';

const LIMIT = 1024 * MiB;

/** A fresh memory cgroup below this process's own, with `limit`; null when this machine cannot make one. */
function makeCgroup(limit: number): { dir: string; procs: string } | null {
  try {
    const lines = fs.readFileSync('/proc/self/cgroup', 'utf8').split('\n');
    const v1 = lines.map((l) => /^\d+:([^:]*):(.*)$/.exec(l)).find((m) => m && m[1].split(',').includes('memory'));
    const v2 = lines.map((l) => /^0::(.*)$/.exec(l)).find((m) => m);
    const name = `allocator-stats-doctor-${process.pid}`;
    if (v1 && fs.existsSync(`/sys/fs/cgroup/memory${v1[2]}`)) {
      const dir = path.join(`/sys/fs/cgroup/memory${v1[2]}`, name);
      fs.mkdirSync(dir);
      fs.writeFileSync(path.join(dir, 'memory.limit_in_bytes'), String(limit));
      return { dir, procs: path.join(dir, 'cgroup.procs') };
    }
    if (v2 && fs.existsSync(`/sys/fs/cgroup${v2[1]}/cgroup.subtree_control`)) {
      const dir = path.join(`/sys/fs/cgroup${v2[1]}`, name);
      fs.mkdirSync(dir);
      fs.writeFileSync(path.join(dir, 'memory.max'), String(limit));
      return { dir, procs: path.join(dir, 'cgroup.procs') };
    }
  } catch {
    // not root, or cgroupfs read-only (most containers)
  }
  return null;
}

const cgroup = process.getuid?.() === 0 ? makeCgroup(LIMIT) : null;
afterAll(() => {
  if (cgroup) fs.rmdirSync(cgroup.dir);
});

testIf(cgroup !== null, 'cannot create a memory cgroup with a limit here (needs root and a writable cgroupfs)')(
  'a JS leak 1 GiB from the limit at a few MB/s is critical, with the time to the limit',
  async () => {
    const r = await runScenario('doctor-js-leak', { cgroupProcs: cgroup!.procs });
    const f = r.findings.find((x) => x.id === 'js-heap-growth')!;
    expect(f.evidence.cgroup).toMatchObject({ limit: LIMIT });
    const ms = f.evidence.timeToLimitMs as number;
    // At about 4 MB/s, the limit is minutes away: well inside the one-hour critical horizon.
    expect(ms).toBeGreaterThan(0);
    expect(ms).toBeLessThan(3_600_000);
    expect(f.severity).toBe('critical');
    expect(f.summary).toContain('OOM');
    const last = (r.samples as Array<{ cgroup?: { limit: number | null; usage: number | null } }>).at(-1)!;
    expect(last.cgroup!.limit).toBe(LIMIT);
    expect(last.cgroup!.usage!).toBeGreaterThan(16 * MiB);
  },
);
