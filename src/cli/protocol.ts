// What the injected sampler sends to the CLI: one JSON object per line in a file of the CLI's
// own private temporary directory, never on the program's stdout or stderr. A file (rather than
// an inherited descriptor) reaches the Node process even through a shell or a wrapper that
// forks it, and cannot be mistaken for a descriptor the program itself opened.
import type { MonitorSample } from '../doctor/types';

/** Environment variables the CLI sets for the program it starts. */
export const ENV_SAMPLE_FILE = 'ALLOCATOR_STATS_SAMPLE_FILE';
export const ENV_INTERVAL = 'ALLOCATOR_STATS_INTERVAL_MS';
/**
 * Set by the first Node process that samples (to its pid): Node processes it starts inherit it
 * and stay untouched, so one program is measured, not its helpers.
 */
export const ENV_CLAIMED = 'ALLOCATOR_STATS_SAMPLED_PID';

/** The doctor's sample figures the sampler sends, each as the doctor defines it. */
type WireSampleFigures = Pick<
  MonitorSample,
  'time' | 'rss' | 'rssAnon' | 'heapUsed' | 'heapTotal' | 'external' | 'arrayBuffers' | 'allocated' | 'resident' | 'heldBack' | 'releasable' | 'elu'
>;

export interface WireSample extends WireSampleFigures {
  rssFile: number | null;
  /** VmHWM: the highest RSS so far, from the kernel. */
  peak: number | null;
  threads: number | null;
  /** glibc: the arenas it has (see MonitorSample.arenas); null for other allocators and from outside. */
  arenas: number | null;
  /** What taking the sample cost in the program (ms); null for samples taken from outside. */
  costMs: number | null;
}

export type WireMessage =
  | {
      type: 'hello';
      pid: number;
      /** The program as Node sees it (process.argv), to say which process was measured. */
      argv: string[];
      allocator: { name: string; version: string | null; library: string | null; notes: string[] };
      backgroundThread: boolean | null;
    }
  | {
      /** The Node process that would sample itself could not load the package (its addon): sample it from outside. */
      type: 'unavailable';
      pid: number;
      argv: string[];
      error: string;
    }
  | {
      /** The agent (native/agent/) of a process of the program listens on `socket`. */
      type: 'agent';
      pid: number;
      socket: string;
    }
  | {
      /** That agent's last sample, taken as its program began to exit (a sample reply; none under musl). */
      type: 'agent-exit';
      pid: number;
      time: number;
      backend: number | null;
      reply?: { values?: unknown };
    }
  | { type: 'sample'; sample: WireSample }
  | { type: 'exit'; sample: WireSample }
  | { type: 'trim'; time: number; releasedBytes: number | null };
