// createDiagnosticHandler(): a request listener for node:http that is also express/connect
// middleware. Read-only routes by default; POST /trim only when enabled, with a bearer token
// compared in constant time. Only requests whose Host names this server (DNS rebinding), bounded
// URLs and bodies, no CORS, errors without stacks.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { DOCTOR_HANDLER_OPTIONS, DoctorRoutes } from '../doctor/endpoint';
import { SELF_SOURCE, type StatsSource } from '../api/source';
import type { TrimResult } from '../types';
import { allocatorConfiguration, handlerConfig, hostAllowed, type DiagnosticHandlerOptions, type HandlerConfig } from './config';
import { dashboardPage } from './dashboard';
import { exposition, PROMETHEUS_CONTENT_TYPE } from './prometheus';
import { snapshot, trimSource, type DiagnosticSnapshot } from './snapshot';

export type { DiagnosticHandlerOptions } from './config';

export type NextFunction = (error?: unknown) => void;
export type DiagnosticHandler = (req: IncomingMessage, res: ServerResponse, next?: NextFunction) => void;

/** Longest URL accepted on the routes (path and query): longer ones get 414. */
export const MAX_URL_LENGTH = 2048;
/** POST /trim needs no body; anything larger than this is refused with 413. */
export const MAX_BODY_BYTES = 1024;
const REALM = 'Bearer realm="allocator-stats"';

type Route = '/' | '/metrics' | '/dashboard' | '/trim' | '/doctor' | '/doctor/history';
const ALLOW: Record<Route, string> = {
  '/': 'GET, HEAD',
  '/metrics': 'GET, HEAD',
  '/dashboard': 'GET, HEAD',
  '/trim': 'POST',
  '/doctor': 'GET, HEAD',
  '/doctor/history': 'GET, HEAD',
};

interface HttpError {
  status: number;
  code: string;
  message: string;
  headers?: Record<string, string>;
}

const digest = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();

function bodyPending(req: IncomingMessage): boolean {
  if (req.complete || req.readableEnded) return false;
  return req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;
}

function baseHeaders(res: ServerResponse): void {
  res.setHeader('Cache-Control', 'no-store');
  res.setHeader('X-Content-Type-Options', 'nosniff');
}

function send(req: IncomingMessage, res: ServerResponse, status: number, type: string, body: string, headers: Record<string, string> = {}): void {
  if (res.headersSent || res.writableEnded) return;
  const data = Buffer.from(body, 'utf8');
  res.statusCode = status;
  baseHeaders(res);
  res.setHeader('Content-Type', type);
  res.setHeader('Content-Length', String(data.length));
  for (const [k, v] of Object.entries(headers)) res.setHeader(k, v);
  // A body we did not read is not drained: the connection closes after the answer instead.
  if (bodyPending(req)) res.setHeader('Connection', 'close');
  res.end(req.method === 'HEAD' ? undefined : data);
}

function sendError(req: IncomingMessage, res: ServerResponse, e: HttpError): void {
  send(req, res, e.status, 'application/json; charset=utf-8', `${JSON.stringify({ error: e.message, code: e.code })}\n`, e.headers);
}

/** How many Host header fields the request has, as sent. */
function hostFields(req: IncomingMessage): number {
  const raw = req.rawHeaders ?? [];
  let n = 0;
  for (let i = 0; i < raw.length; i += 2) if (raw[i].toLowerCase() === 'host') n++;
  return n;
}

function internal(error: unknown): HttpError {
  const code = (error as { code?: unknown } | null)?.code;
  // Our own errors carry a code and a message meant for users; anything else stays private.
  if (typeof code === 'string' && code.startsWith('ERR_') && error instanceof Error) {
    return { status: 500, code, message: error.message };
  }
  return { status: 500, code: 'ERR_INTERNAL', message: 'internal error' };
}

function json(value: unknown): string {
  return `${JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v), 2)}\n`;
}

// q-value of a media type in an Accept header, or null when not listed explicitly.
function quality(accept: string, type: string): number | null {
  for (const part of accept.split(',')) {
    const [media, ...params] = part.trim().split(';');
    if (media.trim().toLowerCase() !== type) continue;
    const q = params.map((p) => p.trim()).find((p) => p.startsWith('q='));
    const value = q ? Number(q.slice(2)) : 1;
    return Number.isFinite(value) ? value : 0;
  }
  return null;
}

/** Browsers ask for text/html; fetch(), curl and Prometheus do not. */
function wantsHtml(accept: string | undefined): boolean {
  if (!accept) return false;
  const html = quality(accept, 'text/html');
  const jsonQ = quality(accept, 'application/json');
  return html !== null && html > 0 && html > (jsonQ ?? -1);
}

/** Path part of a URL (no query). */
function pathOf(url: string): string {
  const q = url.indexOf('?');
  return q >= 0 ? url.slice(0, q) : url;
}

/**
 * express's app.use(mount, handler) strips the mount point from req.url, keeps it in req.baseUrl
 * and the full URL in req.originalUrl: then req.url is already relative to the handler. A
 * middleware that rewrites req.url (e.g. strips "/v1") leaves baseUrl empty: the prefix applies.
 */
function mounted(req: IncomingMessage, path: string): boolean {
  const { baseUrl, originalUrl } = req as { baseUrl?: unknown; originalUrl?: unknown };
  if (typeof baseUrl !== 'string' || baseUrl === '' || typeof originalUrl !== 'string') return false;
  const full = pathOf(originalUrl);
  return full === baseUrl + path || (path === '/' && full === baseUrl);
}

/** Where the request points inside the handler's routes, or null when it is not ours. */
function routeOf(req: IncomingMessage, prefix: string): string | null {
  const path = pathOf(typeof req.url === 'string' ? req.url : '');
  if (prefix === '' || mounted(req, path)) return path === '' ? '/' : path;
  if (path === prefix) return '/';
  if (path.startsWith(`${prefix}/`)) return path.slice(prefix.length);
  return null;
}

function crossSite(req: IncomingMessage): boolean {
  const site = req.headers['sec-fetch-site'];
  if (typeof site === 'string') return site !== 'same-origin' && site !== 'none';
  const origin = req.headers.origin;
  if (typeof origin !== 'string') return false;
  try {
    return new URL(origin).host !== req.headers.host;
  } catch {
    return true;
  }
}

/** Resolves true once the body is read and within `limit`, false as soon as it is over. */
function bodyWithin(req: IncomingMessage, limit: number): Promise<boolean> {
  const declared = req.headers['content-length'];
  if (declared !== undefined && !(Number(declared) <= limit)) return Promise.resolve(false);
  if (req.complete || req.readableEnded) return Promise.resolve(true);
  return new Promise((resolve) => {
    let seen = 0;
    const done = (ok: boolean): void => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onEnd);
      req.off('close', onClose);
      if (!ok) req.pause();
      resolve(ok);
    };
    const onData = (chunk: Buffer): void => {
      seen += chunk.length;
      if (seen > limit) done(false);
    };
    const onEnd = (): void => done(seen <= limit);
    const onClose = (): void => done(req.complete && seen <= limit);
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onEnd);
    req.on('close', onClose);
  });
}

class Endpoint {
  private readonly tokenDigest: Buffer | null;
  private trimming: Promise<TrimResult> | null = null;

  constructor(
    private readonly config: HandlerConfig,
    private readonly doctor: DoctorRoutes,
    private readonly source: StatsSource,
  ) {
    this.tokenDigest = config.token === null ? null : digest(config.token);
  }

  handle(req: IncomingMessage, res: ServerResponse, next?: NextFunction): void {
    const route = routeOf(req, this.config.prefix);
    if (route === null) {
      this.pass(req, res, next);
      return;
    }
    // RFC 9112 §3.2: more than one Host field is answered 400. Node keeps only the first in
    // req.headers.host, and a proxy in front may have judged another one.
    if (hostFields(req) > 1) {
      sendError(req, res, { status: 400, code: 'ERR_BAD_REQUEST', message: 'more than one Host header', headers: { Connection: 'close' } });
      return;
    }
    if (!hostAllowed(req.headers.host, req.socket?.localAddress, req.socket?.localPort, this.config.allowedHosts)) {
      sendError(req, res, {
        status: 421,
        code: 'ERR_HOST_NOT_ALLOWED',
        message: 'the Host header names neither this server nor an allowed host (allowedHosts)',
      });
      return;
    }
    if ((req.url ?? '').length > MAX_URL_LENGTH) {
      sendError(req, res, { status: 414, code: 'ERR_URL_TOO_LONG', message: `URL longer than ${MAX_URL_LENGTH} characters` });
      return;
    }
    if (!Object.prototype.hasOwnProperty.call(ALLOW, route)) {
      this.pass(req, res, next);
      return;
    }
    const r = route as Route;
    const method = req.method ?? '';
    if (!ALLOW[r].split(', ').includes(method)) {
      sendError(req, res, { status: 405, code: 'ERR_METHOD_NOT_ALLOWED', message: `${method} is not allowed here`, headers: { Allow: ALLOW[r] } });
      return;
    }
    // POST /trim checks who asks before it reads a body; the read-only routes count theirs (a
    // chunked one as it arrives) before answering.
    if (method === 'POST' || !bodyPending(req)) {
      this.serve(req, res, r);
      return;
    }
    bodyWithin(req, MAX_BODY_BYTES)
      .then((within) => {
        if (within) this.serve(req, res, r);
        else sendError(req, res, { status: 413, code: 'ERR_BODY_TOO_LARGE', message: `request body over ${MAX_BODY_BYTES} bytes` });
      })
      .catch((error: unknown) => sendError(req, res, internal(error)));
  }

  private serve(req: IncomingMessage, res: ServerResponse, r: Route): void {
    if (r === '/doctor' || r === '/doctor/history') {
      const reply = this.doctor.serve(r);
      send(req, res, reply.status, 'application/json; charset=utf-8', json(reply.body));
      return;
    }
    const run = r === '/trim' ? this.trim(req, res) : r === '/metrics' ? this.metrics(req, res) : this.page(req, res, r);
    run.catch((error: unknown) => sendError(req, res, internal(error)));
  }

  private pass(req: IncomingMessage, res: ServerResponse, next: NextFunction | undefined): void {
    if (next) next();
    else sendError(req, res, { status: 404, code: 'ERR_NOT_FOUND', message: 'not found' });
  }

  private async page(req: IncomingMessage, res: ServerResponse, route: '/' | '/dashboard'): Promise<void> {
    if (route === '/dashboard' || wantsHtml(req.headers.accept)) {
      const { html, csp } = dashboardPage();
      send(req, res, 200, 'text/html; charset=utf-8', html, {
        'Content-Security-Policy': csp,
        'Referrer-Policy': 'no-referrer',
        'X-Frame-Options': 'DENY',
        ...(route === '/' ? { Vary: 'Accept' } : {}),
      });
      return;
    }
    const s = await this.snapshot();
    const body = {
      pid: this.source.pid,
      stats: s.stats,
      trims: s.trims,
      autoTrim: s.autoTrim,
      allocator: this.source.allocator(),
      configuration: allocatorConfiguration(this.source),
      endpoint: {
        trim: this.config.trim,
        refreshMs: Math.max(this.config.minIntervalMs, 250),
        doctor: this.doctor.enabled,
      },
    };
    send(req, res, 200, 'application/json; charset=utf-8', json(body), { Vary: 'Accept' });
  }

  private async metrics(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const s = await this.snapshot();
    send(req, res, 200, PROMETHEUS_CONTENT_TYPE, exposition(s, this.config.metricsPrefix));
  }

  private snapshot(): Promise<DiagnosticSnapshot> {
    return snapshot(this.config.minIntervalMs, this.source, () => this.doctor.diagnosis());
  }

  private authorised(req: IncomingMessage): HttpError | null {
    if (this.tokenDigest === null) return null;
    const header = req.headers.authorization;
    const match = typeof header === 'string' ? /^Bearer +(\S+) *$/i.exec(header) : null;
    if (!match) {
      return { status: 401, code: 'ERR_UNAUTHORIZED', message: 'a bearer token is required', headers: { 'WWW-Authenticate': REALM } };
    }
    // Equal-length digests: the comparison takes the same time whatever the token sent.
    if (!timingSafeEqual(digest(match[1]), this.tokenDigest)) {
      return {
        status: 401,
        code: 'ERR_UNAUTHORIZED',
        message: 'the bearer token is not valid',
        headers: { 'WWW-Authenticate': `${REALM}, error="invalid_token"` },
      };
    }
    return null;
  }

  private async trim(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (this.config.trim === 'off') {
      sendError(req, res, { status: 403, code: 'ERR_TRIM_DISABLED', message: 'trimming is not enabled on this endpoint (allowTrim)' });
      return;
    }
    if (crossSite(req)) {
      sendError(req, res, { status: 403, code: 'ERR_CROSS_ORIGIN', message: 'cross-origin trim requests are refused' });
      return;
    }
    const denied = this.authorised(req);
    if (denied) {
      sendError(req, res, denied);
      return;
    }
    if (!(await bodyWithin(req, MAX_BODY_BYTES))) {
      sendError(req, res, { status: 413, code: 'ERR_BODY_TOO_LARGE', message: `request body over ${MAX_BODY_BYTES} bytes (POST /trim takes none)` });
      return;
    }
    // Requests that arrive while a trim runs share its result instead of queueing more trims.
    if (!this.trimming) {
      this.trimming = trimSource(this.source).finally(() => {
        this.trimming = null;
      });
    }
    send(req, res, 200, 'application/json; charset=utf-8', json(await this.trimming));
  }
}

/**
 * A request listener serving the diagnostic routes under `prefix`: node:http
 * (`http.createServer(handler)`), express/connect middleware (`app.use(handler)`, calls next()
 * for other paths), or fastify (see the README).
 */
export function createDiagnosticHandler(options?: DiagnosticHandlerOptions): DiagnosticHandler {
  return diagnosticEndpoint(options).handler;
}

/**
 * The handler and a way to undo what creating it started (the doctor's monitor, when it started
 * one), for serveDiagnostics() to call when it cannot listen. `source` is internal: the process
 * whose memory the routes show (another one for `allocator-stats serve --pid`).
 */
export function diagnosticEndpoint(options?: DiagnosticHandlerOptions, source: StatsSource = SELF_SOURCE): { handler: DiagnosticHandler; release(): void } {
  const config = handlerConfig(options, 'options', DOCTOR_HANDLER_OPTIONS);
  const doctor = new DoctorRoutes(options?.monitor, options?.doctor, 'options', source);
  const endpoint = new Endpoint(config, doctor, source);
  return {
    handler: function diagnosticHandler(req, res, next) {
      try {
        endpoint.handle(req, res, typeof next === 'function' ? next : undefined);
      } catch (error) {
        sendError(req, res, internal(error));
      }
    },
    release: () => doctor.release(),
  };
}
