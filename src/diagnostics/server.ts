// serveDiagnostics(): the endpoint on its own http.Server, on loopback unless told otherwise.
// It does not keep the process alive (server and its connections are unref()'d) unless asked.
import * as http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { typeError } from '../errors';
import { optionalBoolean, optionalInteger } from '../validate';
import { DOCTOR_HANDLER_OPTIONS } from '../doctor/endpoint';
import { handlerConfig, type DiagnosticHandlerOptions } from './config';
import { createDiagnosticHandler } from './handler';

export interface ServeDiagnosticsOptions extends DiagnosticHandlerOptions {
  /** TCP port; 0 (the default) picks a free one: read it from the result's `port` or `url`. */
  port?: number;
  /** Interface to bind. Default '127.0.0.1'. */
  host?: string;
  /** Keep the process alive while the server listens. Default false. */
  keepProcessAlive?: boolean;
}

export interface DiagnosticServer {
  readonly server: http.Server;
  readonly host: string;
  readonly port: number;
  /** e.g. http://127.0.0.1:40123/debug/memory/ */
  readonly url: string;
  /** Stops listening and closes open connections. Idempotent. */
  close(): Promise<void>;
}

const SERVER_OPTIONS = ['port', 'host', 'keepProcessAlive'] as const;
// Slow or stalled clients cannot hold connections open for long.
const REQUEST_TIMEOUT_MS = 10_000;

/** Starts an http.Server serving createDiagnosticHandler(options); resolves once it listens. */
export function serveDiagnostics(options?: ServeDiagnosticsOptions): Promise<DiagnosticServer> {
  let handler: ReturnType<typeof createDiagnosticHandler>;
  let port: number;
  let host: string;
  let keep: boolean;
  let prefix: string;
  try {
    const config = handlerConfig(options, 'options', [...SERVER_OPTIONS, ...DOCTOR_HANDLER_OPTIONS]);
    const o = (options ?? {}) as ServeDiagnosticsOptions;
    port = optionalInteger(o.port, 'options.port', 0, 0, 65535);
    if (o.host !== undefined && (typeof o.host !== 'string' || o.host === '')) throw typeError('a host name or address', 'options.host', o.host);
    host = o.host ?? '127.0.0.1';
    keep = optionalBoolean(o.keepProcessAlive, 'options.keepProcessAlive', false);
    const { port: _p, host: _h, keepProcessAlive: _k, ...handlerOptions } = o;
    handler = createDiagnosticHandler(handlerOptions);
    prefix = config.prefix;
  } catch (error) {
    return Promise.reject(error);
  }
  const server = http.createServer({ requestTimeout: REQUEST_TIMEOUT_MS, headersTimeout: REQUEST_TIMEOUT_MS }, (req, res) => handler(req, res));
  const sockets = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    if (!keep) socket.unref();
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      if (!keep) server.unref();
      const address = server.address() as AddressInfo;
      const shown = address.family === 'IPv6' ? `[${address.address}]` : address.address;
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
