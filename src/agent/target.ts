// Another process, read and trimmed through its agent with the backends the addon uses in this
// one: the same registry rows, the same decoding, the same unified numbers. There is no V8 to
// read in it (or none this package can see): the V8 figures are absent.
import { asName, versionOf } from '../allocators/identity';
import { allocatorRow } from '../allocators/registry';
import { trimResultOf } from '../allocators/trims';
import type { Backend, BackendSample } from '../allocators/types';
import { statsOf } from '../api/stats';
import type { NativeProcessMemory } from '../core/binding';
import { withCode } from '../core/errors';
import type { AllocatorName, MemoryStats, TrimResult } from '../types';
import { openAgentBinding, recordOf, type AgentBinding } from './binding';
import { AgentConnection } from './client';

/** A sample of another process: MemoryStats without the V8 figures. */
export interface ProcessStats extends Omit<MemoryStats, 'v8'> {
  v8: null;
}

export const NO_V8_NOTE = 'no V8 figures: the numbers come from the agent of a program this package does not run inside';

/** Under musl or an unknown allocator: only the process figures, which every sample carries. */
function processOnly(binding: AgentBinding, name: string, reason: string): Backend {
  const sample = async (): Promise<BackendSample> => {
    const values = await binding.sample(0, []);
    const common = binding.wire.sample;
    const at = (field: keyof NativeProcessMemory): number | null => {
      const v = values[common.indexOf(field)];
      return Number.isNaN(v) || v === undefined ? null : v;
    };
    return {
      numbers: { allocated: null, resident: null, heldBack: null, releasable: null, mapped: null, raw: {}, notes: [reason] },
      process: { rss: at('rss'), rssAnon: at('rssAnon'), rssFile: at('rssFile'), rssShmem: at('rssShmem'), swap: at('swap') },
    };
  };
  const sync = (): never => {
    throw withCode(new Error('a sample or trim of another process is asynchronous'), 'ERR_AGENT_SYNC');
  };
  return {
    name,
    canTrim: false,
    sample,
    sampleSync: sync,
    trimSync: sync,
    trim: async () => {
      const s = await sample();
      return { supported: false, rssBefore: s.process.rss, rssAfter: s.process.rss, heldBackBefore: null, heldBackAfter: null, durationMs: 0, notes: [reason] };
    },
  };
}

export class AgentTarget {
  readonly pid: number;
  readonly argv: readonly string[];
  readonly allocator: { name: AllocatorName; version: string | null };
  readonly binding: AgentBinding;
  readonly #backend: Backend;
  #replay: Float64Array | null = null;

  private constructor(binding: AgentBinding) {
    this.binding = binding;
    this.pid = binding.hello.pid;
    this.argv = binding.hello.argv;
    const native = binding.hello.detect;
    this.allocator = { name: asName(native.name), version: versionOf(native) };
    const row = allocatorRow(this.allocator.name);
    // A sample request goes to the agent, unless a record the agent already sent is replayed
    // through the same decoding (its exit line).
    const replaying: AgentBinding = {
      ...binding,
      sample: (backend, args) => {
        const r = this.#replay;
        this.#replay = null;
        return r ? Promise.resolve(r) : binding.sample(backend, args);
      },
    };
    this.#backend =
      row?.native && row.backend
        ? row.backend(row.native, replaying)
        : processOnly(replaying, this.allocator.name, row?.reason ?? `${this.allocator.name}: its numbers are unknown`);
  }

  /** Connects to the agent listening on `socketPath`. */
  static async open(socketPath: string): Promise<AgentTarget> {
    const connection = await AgentConnection.connect(socketPath);
    try {
      return new AgentTarget(await openAgentBinding(connection));
    } catch (error) {
      connection.close();
      throw error;
    }
  }

  get canTrim(): boolean {
    return this.#backend.canTrim;
  }

  /** A sample of the program, `releasable` included (the walk runs on the agent's thread). */
  async stats(): Promise<ProcessStats> {
    const started = performance.now();
    const time = Date.now();
    return statsOf(await this.#backend.sample({ releasable: true }), time, started, this.allocator, null, NO_V8_NOTE);
  }

  /**
   * The agent's exit line (`{"type":"agent-exit", reply}`): the program's last figures, taken when
   * it began to exit, decoded as stats() decodes a sample. Null when it carries none.
   */
  async exitStats(line: { time?: unknown; reply?: { values?: unknown } }): Promise<ProcessStats | null> {
    if (!line.reply || !Array.isArray(line.reply.values)) return null;
    this.#replay = recordOf(line.reply.values);
    const sample = await this.#backend.sample({ releasable: true });
    // Taken by the agent as the program exited, not by a request: it cost no sampling time here.
    return statsOf(sample, typeof line.time === 'number' ? line.time : Date.now(), performance.now(), this.allocator, null, NO_V8_NOTE);
  }

  /** Gives the program's held-back memory back to the OS (the agent's thread runs the trim). */
  async trim(): Promise<TrimResult> {
    const time = Date.now();
    return trimResultOf(await this.#backend.trim({ pad: 0 }), time, this.allocator);
  }

  close(): void {
    this.binding.connection.close();
  }

  /** Resolves once the connection to the agent is closed: the program exited, or close() was called. */
  whenClosed(): Promise<Error> {
    return this.binding.connection.whenClosed();
  }

}
