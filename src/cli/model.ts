// What one run of a program under one allocator produced, and the numbers drawn from it.
import type { AllocatorName } from '../types';
import type { RssParts } from '../doctor/types';
import type { WireSample } from './protocol';

export interface CliFinding {
  id: string;
  severity: 'info' | 'warning' | 'critical';
  title: string;
  summary: string;
  evidence: Record<string, unknown>;
  advice: string[];
}

export interface AllocatorCheck {
  expected: AllocatorName;
  /** The allocator seen serving the program; null when nothing could be seen (it exited first). */
  detected: AllocatorName | null;
  /** true: verified; false: another allocator served it; null: could not be checked. */
  served: boolean | null;
  /** How it was checked: the injected sampler's detection, or the libraries in /proc/<pid>/maps. */
  how: 'sampler' | 'agent' | 'maps' | 'none';
  notes: string[];
}

export interface RunRecord {
  label: string;
  command: string[];
  allocator: { name: AllocatorName; version: string | null; library: string | null; env: Record<string, string> };
  check: AllocatorCheck;
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  startTime: number;
  wallMs: number;
  /** The Node process measured from inside when it is not the one started (under a shell or a launcher). */
  measured: { pid: number; argv: string[] } | null;
  /** The Node process that would have sampled itself but could not load the package (its addon): sampled from outside instead. */
  samplerFailure: { pid: number; error: string } | null;
  /** 'node': full samples from the injected sampler; 'proc': /proc/<pid> read from outside. */
  source: 'node' | 'agent' | 'proc';
  samples: WireSample[];
  trims: Array<{ time: number; releasedBytes: number | null }>;
  /** VmHWM as last seen: the kernel's own peak. */
  hwm: number | null;
  backgroundThread: boolean | null;
  threads: number | null;
  /** What the samples cannot show, in words (outside sampling). */
  unavailable: string[];
  rss: { peak: number | null; steady: number | null; final: number | null };
  heldBackFinal: number | null;
  /** Mean and largest cost of one sample inside the program (ms); null for outside sampling. */
  samplerCost: { meanMs: number; maxMs: number; samples: number } | null;
  findings: CliFinding[];
  findingsNote: string | null;
  /** RSS split into its parts per sample (the doctor's split), for the charts. */
  parts: RssParts[];
}

