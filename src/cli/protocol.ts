// What the injected sampler sends to the CLI: one JSON object per line on a channel of its own
// (a pipe on an extra file descriptor), never on the program's stdout or stderr.

/** Environment variables the CLI sets for the program it starts. */
export const ENV_SAMPLE_FD = 'ALLOCATOR_STATS_SAMPLE_FD';
export const ENV_INTERVAL = 'ALLOCATOR_STATS_INTERVAL_MS';
/** Only the CLI's direct child samples: descendants that inherit NODE_OPTIONS stay untouched. */
export const ENV_PARENT_PID = 'ALLOCATOR_STATS_PARENT_PID';
/** The descriptor the samples travel on (the child's stdio[3]). */
export const SAMPLE_FD = 3;

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
  /** What taking the sample cost in the program (ms); null for samples taken from outside. */
  costMs: number | null;
}

export type WireMessage =
  | {
      type: 'hello';
      pid: number;
      allocator: { name: string; version: string | null; library: string | null; notes: string[] };
      backgroundThread: boolean | null;
    }
  | { type: 'sample'; sample: WireSample }
  | { type: 'exit'; sample: WireSample }
  | { type: 'trim'; time: number; releasedBytes: number | null };
