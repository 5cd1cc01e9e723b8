// `serve --pid PID`: the diagnostic endpoint (page, JSON, metrics, doctor, trim) of a running
// program, read through its agent: for a program that cannot load the addon (not Node), or whose
// code cannot be changed to call serveDiagnostics().
import { agentSource } from '../agent/source';
import { MIN_TOKEN_LENGTH, TOKEN } from '../diagnostics/config';
import { serveDiagnosticsOf, type DiagnosticServer, type ServeDiagnosticsOptions } from '../diagnostics/server';
import { createMonitorOf } from '../doctor/monitor';
import { CliError } from './errors';
import { openPid } from './cmd-pid';

export interface ServeOptions {
  pid: number;
  port: number;
  host: string | undefined;
  token: string | null;
  allowTrim: boolean;
  intervalMs: number;
  /** Where the lines for the user go (the URL first). */
  out: (line: string) => void;
  err: (line: string) => void;
}

/** Checks what the endpoint would refuse, in the CLI's words, before the agent is reached. */
export function checkServeOptions(o: Pick<ServeOptions, 'token' | 'allowTrim'>): void {
  if (o.token !== null && !o.allowTrim) throw new CliError('Expected --allow-trim with --token: the token is only asked for by POST …/trim');
  if (o.allowTrim && o.token === null) throw new CliError('Expected --token with --allow-trim: POST …/trim needs a bearer token');
  if (o.token !== null && (o.token.length < MIN_TOKEN_LENGTH || !TOKEN.test(o.token))) {
    throw new CliError(`Expected at least ${MIN_TOKEN_LENGTH} characters of [A-Za-z0-9-._~+/] for --token`);
  }
}

/**
 * Serves until SIGINT or SIGTERM, or until the program exits (its agent closes the connection).
 * Resolves then, with everything it opened closed.
 */
export async function serveCommand(o: ServeOptions): Promise<void> {
  checkServeOptions(o);
  const target = await openPid(o.pid);
  const source = agentSource(target);
  let stopping = false;
  const monitor = createMonitorOf(source, { intervalMs: o.intervalMs }, '--interval');
  const options: ServeDiagnosticsOptions = {
    port: o.port,
    keepProcessAlive: true,
    monitor,
    // The program ran before the monitor started: no start-up grace, as `doctor <pid>` judges.
    doctor: { graceMs: 0 },
    ...(o.host !== undefined ? { host: o.host } : {}),
    ...(o.allowTrim && o.token !== null ? { allowTrim: true, token: o.token } : {}),
  };
  let server: DiagnosticServer;
  try {
    server = await serveDiagnosticsOf(source, options);
  } catch (error) {
    monitor.stop();
    target.close();
    const e = error as NodeJS.ErrnoException;
    throw new CliError(`cannot serve on ${o.host ?? '127.0.0.1'}:${o.port}: ${e.code ?? e.message}`, 1);
  }
  o.out(`allocator-stats: serving pid ${target.pid} (${target.argv.join(' ')}) at ${server.url}`);
  await new Promise<void>((resolve) => {
    const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM'];
    const stop = (): void => {
      if (stopping) return;
      stopping = true;
      for (const s of signals) process.off(s, stop);
      monitor.stop();
      target.close();
      server.close().then(resolve, resolve);
    };
    for (const s of signals) process.on(s, stop);
    void target.whenClosed().then((reason) => {
      if (stopping) return;
      o.err(`allocator-stats: stopped serving pid ${target.pid}: the connection to its agent closed (${reason.message}); the program exited?`);
      stop();
    });
  });
}
