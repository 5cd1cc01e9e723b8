// A connection to the agent of another process (native/agent/): one request line out, one JSON
// line back, in order. Never keeps this process alive (the socket is unref()ed between
// requests), and every failure is an error with a code: ERR_AGENT_UNREACHABLE (no socket, the
// process is gone, the agent refused this user), ERR_AGENT_TIMEOUT, or the agent's own code.
import net from 'node:net';
import { withCode, type CodedError } from '../core/errors';

/** The environment variables that ask the agent for something (native/agent/agent.cc). */
export const ENV_AGENT = 'ALLOCATOR_STATS_AGENT';
export const ENV_AGENT_DIR = 'ALLOCATOR_STATS_AGENT_DIR';
export const ENV_AGENT_INHERIT = 'ALLOCATOR_STATS_AGENT_INHERIT';

/** Longer than any sample or trim the agent takes on a large heap. */
export const AGENT_TIMEOUT_MS = 30_000;
// A reply is a sample with malloc_info()'s rows: a few hundred KiB at most on a process with
// hundreds of arenas. Anything longer is not the agent speaking.
const MAX_REPLY_BYTES = 16 * 1024 * 1024;

export type AgentReply = { ok: true } & Record<string, unknown>;

interface Pending {
  resolve(reply: AgentReply): void;
  reject(error: Error): void;
  timer: NodeJS.Timeout;
}

function agentError(code: string, message: string): Error & CodedError {
  return withCode(new Error(message), code);
}

export class AgentConnection {
  readonly socketPath: string;
  readonly #socket: net.Socket;
  readonly #pending: Pending[] = [];
  #buffer = '';
  #closed: Error | null = null;
  #onClose: Array<(reason: Error) => void> = [];

  private constructor(socketPath: string, socket: net.Socket) {
    this.socketPath = socketPath;
    this.#socket = socket;
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => this.#data(chunk));
    socket.on('error', (error: NodeJS.ErrnoException) => this.#fail(agentError('ERR_AGENT_UNREACHABLE', `the agent's connection failed: ${error.code ?? error.message}`)));
    socket.on('close', () => this.#fail(agentError('ERR_AGENT_UNREACHABLE', 'the agent closed the connection (the program exited?)')));
    socket.unref();
  }

  /** Connects to the agent listening on `socketPath`. */
  static connect(socketPath: string, timeoutMs = 5_000): Promise<AgentConnection> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ path: socketPath });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(agentError('ERR_AGENT_TIMEOUT', `no answer from the agent at ${socketPath} within ${timeoutMs} ms`));
      }, timeoutMs);
      timer.unref();
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.removeAllListeners('error');
        resolve(new AgentConnection(socketPath, socket));
      });
      socket.once('error', (error: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        reject(agentError('ERR_AGENT_UNREACHABLE', `cannot reach the agent at ${socketPath}: ${error.code ?? error.message}`));
      });
    });
  }

  get closed(): boolean {
    return this.#closed !== null;
  }

  /** Resolves with the reason once the connection is closed (the program exited, or close()). */
  whenClosed(): Promise<Error> {
    const closed = this.#closed;
    if (closed) return Promise.resolve(closed);
    return new Promise((resolve) => this.#onClose.push(resolve));
  }

  /**
   * One request: words that are names or numbers (NaN for unknown). Rejects with the agent's
   * error code when it answers with an error.
   */
  request(words: ReadonlyArray<string | number>, timeoutMs = AGENT_TIMEOUT_MS): Promise<AgentReply> {
    if (this.#closed) return Promise.reject(this.#closed);
    const line = words.map((w) => (typeof w === 'number' ? (Number.isNaN(w) ? 'nan' : String(w)) : w)).join(' ');
    if (!/^[\x21-\x7e ]*$/.test(line)) return Promise.reject(agentError('ERR_INVALID_ARG_VALUE', `a request to the agent is printable ASCII: ${JSON.stringify(line)}`));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.close(agentError('ERR_AGENT_TIMEOUT', `the agent did not answer ${words[0]} within ${timeoutMs} ms`));
      }, timeoutMs);
      timer.unref();
      this.#pending.push({ resolve, reject, timer });
      // Referenced while a request waits: a CLI awaiting its answer is not left without one.
      this.#socket.ref();
      this.#socket.write(`${line}\n`);
    });
  }

  close(reason: Error = agentError('ERR_AGENT_UNREACHABLE', 'the connection to the agent was closed')): void {
    this.#fail(reason);
    this.#socket.destroy();
  }

  #data(chunk: string): void {
    this.#buffer += chunk;
    if (this.#buffer.length > MAX_REPLY_BYTES) {
      this.close(agentError('ERR_AGENT_REPLY', `a reply from the agent longer than ${MAX_REPLY_BYTES} bytes`));
      return;
    }
    let newline: number;
    while ((newline = this.#buffer.indexOf('\n')) >= 0) {
      const line = this.#buffer.slice(0, newline);
      this.#buffer = this.#buffer.slice(newline + 1);
      const waiting = this.#pending.shift();
      if (!waiting) {
        this.close(agentError('ERR_AGENT_REPLY', 'the agent sent a reply nobody asked for'));
        return;
      }
      clearTimeout(waiting.timer);
      if (this.#pending.length === 0) this.#socket.unref();
      let reply: unknown;
      try {
        reply = JSON.parse(line);
      } catch {
        waiting.reject(agentError('ERR_AGENT_REPLY', 'the agent sent a reply that is not JSON'));
        continue;
      }
      const r = reply as { ok?: unknown; code?: unknown; message?: unknown };
      if (r && r.ok === true) waiting.resolve(reply as AgentReply);
      else waiting.reject(agentError(typeof r?.code === 'string' ? r.code : 'ERR_AGENT_REPLY', typeof r?.message === 'string' ? r.message : 'the agent refused the request'));
    }
  }

  #fail(error: Error): void {
    if (!this.#closed) {
      this.#closed = error;
      for (const f of this.#onClose.splice(0)) f(error);
    }
    for (const p of this.#pending.splice(0)) {
      clearTimeout(p.timer);
      p.reject(error);
    }
  }
}
