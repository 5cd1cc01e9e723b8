// What the injected sampler sends to the CLI: one JSON object per line in a file of the CLI's
// own private temporary directory, never on the program's stdout or stderr. A file (rather than
// an inherited descriptor) reaches the Node process even through a shell or a wrapper that
// forks it, and cannot be mistaken for a descriptor the program itself opened.

/** Environment variables the CLI sets for the program it starts. */
export const ENV_SAMPLE_FILE = 'ALLOCATOR_STATS_SAMPLE_FILE';
export const ENV_INTERVAL = 'ALLOCATOR_STATS_INTERVAL_MS';
/**
 * Set by the first Node process that samples (to its pid): Node processes it starts inherit it
 * and stay untouched, so one program is measured, not its helpers.
 */
export const ENV_CLAIMED = 'ALLOCATOR_STATS_SAMPLED_PID';

export interface WireSample {
  time: number;
  rss: number | null;
  rssAnon: number | null;
  rssFile: number | null;
  /** VmHWM: the highest RSS so far, from the kernel. */
  peak: number | null;
  heapUsed: number | null;
  heapTotal: number | null;
  external: number | null;
  arrayBuffers: number | null;
  allocated: number | null;
  resident: number | null;
  heldBack: number | null;
  releasable: number | null;
  elu: number | null;
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
  | { type: 'sample'; sample: WireSample }
  | { type: 'exit'; sample: WireSample }
  | { type: 'trim'; time: number; releasedBytes: number | null };
