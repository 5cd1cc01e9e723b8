// An agent seen as a backend binding (src/core/binding.ts): the same wire names, the same
// records and the backends' read-only facts, fetched once when the connection opens; samples
// and trims are requests. Nothing of it is synchronous but the facts: a sync sample or trim of
// another process does not exist.
import type { BackendBinding, NativeDetection } from '../core/binding';
import { withCode } from '../core/errors';
import type { AgentConnection } from './client';

export interface AgentHello {
  pid: number;
  /** The program's command line, from its /proc/self/cmdline. */
  argv: string[];
  detect: NativeDetection;
}

export interface AgentBinding extends BackendBinding {
  readonly hello: AgentHello;
  readonly connection: AgentConnection;
}

const toRecord = (values: unknown): Float64Array => {
  if (!Array.isArray(values)) throw withCode(new Error('the agent sent a record that is not a list of numbers'), 'ERR_AGENT_REPLY');
  return Float64Array.from(values, (v) => (typeof v === 'number' ? v : NaN));
};

const notSync = (what: string) => (): never => {
  throw withCode(new Error(`${what} of another process is asynchronous: use the async call`), 'ERR_AGENT_SYNC');
};

/** Says hello to the agent behind `connection` and reads the facts every backend needs. */
export async function openAgentBinding(connection: AgentConnection): Promise<AgentBinding> {
  const hello = await connection.request(['hello']);
  const wire = hello.wire as BackendBinding['wire'];
  const constants = (hello.constants ?? {}) as { glibcWire?: BackendBinding['glibcWire'] };
  if (!wire || !Array.isArray(wire.backends) || !constants.glibcWire) {
    throw withCode(new Error('the agent did not describe its records: it is not the agent of this version of allocator-stats'), 'ERR_AGENT_REPLY');
  }
  const call = async (name: string): Promise<unknown> => (await connection.request(['call', name])).value;
  const glibcInfo = (await call('glibcInfo')) as ReturnType<BackendBinding['glibcInfo']>;
  const jemallocInfo = (await call('jemallocInfo')) as ReturnType<BackendBinding['jemallocInfo']>;
  const mimallocInfo = (await call('mimallocInfo')) as ReturnType<BackendBinding['mimallocInfo']>;
  const mimallocStatsText = mimallocInfo.serving ? ((await call('mimallocStatsText')) as string | null) : null;
  return {
    hello: { pid: Number(hello.pid), argv: Array.isArray(hello.argv) ? hello.argv.map(String) : [], detect: hello.detect as NativeDetection },
    connection,
    wire,
    glibcWire: constants.glibcWire,
    glibcInfo: () => glibcInfo,
    jemallocInfo: () => jemallocInfo,
    mimallocInfo: () => mimallocInfo,
    mimallocStatsText: () => mimallocStatsText,
    sample: async (backend, args) => toRecord((await connection.request(['sample', backend, ...args])).values),
    trim: async (backend, args) => toRecord((await connection.request(['trim', backend, ...args])).values),
    sampleSync: notSync('a sample'),
    trimSync: notSync('a trim'),
  };
}

/** A record from the agent's exit line (the same shape as a sample reply). */
export function recordOf(values: unknown): Float64Array {
  return toRecord(values);
}
