// serveDiagnostics(): the endpoint on its own http.Server, on loopback unless told otherwise.
// It does not keep the process alive (server and its connections are unref()'d) unless asked.
import * as http from 'node:http';
import { isIP, type AddressInfo, type Socket } from 'node:net';
import { SELF_SOURCE, type StatsSource } from '../api/source';
import { typeError } from '../core/errors';
import { optionalBoolean, optionalInteger } from '../core/validate';
import { DOCTOR_HANDLER_OPTIONS } from '../doctor/endpoint';
import { handlerConfig, type DiagnosticHandlerOptions } from './config';
import { diagnosticEndpoint, type DiagnosticHandler } from './handler';

export interface ServeDiagnosticsOptions extends DiagnosticHandlerOptions {
  /** TCP port; 0 (the default) picks a free one: read it from the result's `port` or `url`. */
  port?: number;
  /** Interface to bind. Default '127.0.0.1'. */
  host?: string;
  /** Keep the process alive while the server listens. Default false. */
  keepProcessAlive?: boolean;
  /**
   * A request whose headers or body have not arrived within this many milliseconds is answered
   * 408 and its connection closed (slow or stalled clients). Default 10000.
   */
  requestTimeoutMs?: number;
}

export interface DiagnosticServer {
  readonly server: http.Server;
  readonly host: string;
  readonly port: number;
  /** e.g. http://127.0.0.1:40123/debug/memory/ (on loopback for a server bound to 0.0.0.0 or ::) */
  readonly url: string;
  /** Stops listening and closes open connections. Idempotent. */
  close(): Promise<void>;
}

const SERVER_OPTIONS = ['port', 'host', 'keepProcessAlive', 'requestTimeoutMs'] as const;
// Slow or stalled clients cannot hold connections open for long.
export const REQUEST_TIMEOUT_MS = 10_000;
// Node checks those timeouts only every connectionsCheckingInterval (30 s by default): check
// often enough that a timeout ends within a quarter of its length, at most a second late.
function checkingInterval(timeoutMs: number): number {
  return Math.max(50, Math.min(1000, Math.floor(timeoutMs / 4)));
}

/**
 * The host of the server's url: its address, or for a server listening on every interface
 * (0.0.0.0, ::) the loopback address, which a client on this machine can reach and name in Host.
 */
function urlHost(address: AddressInfo): string {
  if (address.family === 'IPv6') return address.address === '::' ? '[::1]' : `[${address.address}]`;
  return address.address === '0.0.0.0' ? '127.0.0.1' : address.address;
}

/** Starts an http.Server serving createDiagnosticHandler(options); resolves once it listens. */
export function serveDiagnostics(options?: ServeDiagnosticsOptions): Promise<DiagnosticServer> {
  return serveDiagnosticsOf(SELF_SOURCE, options);
}

/** serveDiagnostics() showing `source` (internal: another process for `allocator-stats serve --pid`). */
export function serveDiagnosticsOf(source: StatsSource, options?: ServeDiagnosticsOptions): Promise<DiagnosticServer> {
  let handler: DiagnosticHandler;
  let release: () => void;
  let port: number;
  let host: string;
  let keep: boolean;
  let prefix: string;
  let timeoutMs: number;
  try {
    const config = handlerConfig(options, 'options', [...SERVER_OPTIONS, ...DOCTOR_HANDLER_OPTIONS]);
    const o = (options ?? {}) as ServeDiagnosticsOptions;
    port = optionalInteger(o.port, 'options.port', 0, 0, 65535);
    if (o.host !== undefined && (typeof o.host !== 'string' || o.host === '')) throw typeError('a host name or address', 'options.host', o.host);
    host = o.host ?? '127.0.0.1';
    keep = optionalBoolean(o.keepProcessAlive, 'options.keepProcessAlive', false);
    timeoutMs = optionalInteger(o.requestTimeoutMs, 'options.requestTimeoutMs', REQUEST_TIMEOUT_MS, 100, 3_600_000);
    const { port: _p, host: _h, keepProcessAlive: _k, requestTimeoutMs: _t, ...handlerOptions } = o;
    // A name given to bind on is a name clients may use in Host.
    if (o.host !== undefined && isIP(o.host.replace(/^\[|\]$/g, '')) === 0) {
      handlerOptions.allowedHosts = [...(handlerOptions.allowedHosts ?? []), o.host];
    }
    ({ handler, release } = diagnosticEndpoint(handlerOptions, source));
    prefix = config.prefix;
  } catch (error) {
    return Promise.reject(error);
  }
  const server = http.createServer(
    { requestTimeout: timeoutMs, headersTimeout: timeoutMs, connectionsCheckingInterval: checkingInterval(timeoutMs) },
    (req, res) => handler(req, res),
  );
  const sockets = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    if (!keep) socket.unref();
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  return new Promise((resolve, reject) => {
    // A server that cannot listen leaves nothing behind: not the monitor it started either.
    const failed = (error: Error): void => {
      release();
      reject(error);
    };
    server.once('error', failed);
    server.listen(port, host, () => {
      server.off('error', failed);
      if (!keep) server.unref();
      const address = server.address() as AddressInfo;
      const shown = urlHost(address);
      resolve({
        server,
        host: address.address,
        port: address.port,
        url: `http://${shown}:${address.port}${prefix}/`,
        close: () =>
          new Promise<void>((done, fail) => {
            if (!server.listening) {
              done();
              return;
            }
            server.close((error) => (error ? fail(error) : done()));
            for (const s of sockets) s.destroy();
          }),
      });
    });
  });
}
