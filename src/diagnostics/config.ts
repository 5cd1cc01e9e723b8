// Handler options, validated once, and the allocator configuration the endpoint reports.
import { allocatorEnv } from '../allocators/registry';
import type { DoctorHandlerOptions } from '../doctor/endpoint';
import type { StatsSource } from '../api/source';
import { isIP } from 'node:net';
import { typeError, withCode } from '../core/errors';
import type { RawValue } from '../types';
import { optionsObject } from '../core/validate';
import { metricsPrefix, minInterval } from './prometheus';

export interface DiagnosticHandlerOptions {
  /** Path the routes live under. Default '/debug/memory'; '' or '/' serves them at the root. */
  prefix?: string;
  /** Scrapes and page polls within this many milliseconds share one sample. Default 1000. */
  minIntervalMs?: number;
  /**
   * Enables POST /trim: true requires `token` (sent as `Authorization: Bearer <token>`);
   * 'unauthenticated' allows it without one. Default false.
   */
  allowTrim?: boolean | 'unauthenticated';
  /** The bearer token for POST /trim (at least 16 characters of [A-Za-z0-9-._~+/]); only with allowTrim: true. */
  token?: string;
  /**
   * Host names (or name:port) accepted in the Host header besides the address the request
   * came in on (and `localhost` on loopback). Requests naming any other host get 421: a page
   * that rebinds its DNS name to this machine cannot reach the routes. Default [].
   */
  allowedHosts?: readonly string[];
  /** Prefix of the Prometheus metric names. Default 'allocator_'. */
  metricsPrefix?: string;
  /** The monitor behind GET …/doctor (see docs/doctor.md). Default true; false turns the doctor off. */
  monitor?: DoctorHandlerOptions['monitor'];
  /** Thresholds of the endpoint's diagnosis (see docs/doctor.md). */
  doctor?: DoctorHandlerOptions['doctor'];
}

export interface HandlerConfig {
  prefix: string;
  minIntervalMs: number;
  trim: 'off' | 'token' | 'unauthenticated';
  token: string | null;
  metricsPrefix: string;
  /** Lower-cased entries of allowedHosts. */
  allowedHosts: ReadonlySet<string>;
}

export const HANDLER_OPTIONS = ['prefix', 'minIntervalMs', 'allowTrim', 'token', 'metricsPrefix', 'allowedHosts'] as const;
// RFC 6750 b64token characters a client can put after "Bearer ", without the '=' padding.
export const TOKEN = /^[A-Za-z0-9\-._~+/]+$/;
// A DNS name, an IPv4 address or a bracketed IPv6 address, with an optional port (1-65535).
const HOST = /^([A-Za-z0-9\-.]+|\[[0-9A-Fa-f:.]+\])(?::(6553[0-5]|655[0-2]\d|65[0-4]\d{2}|6[0-4]\d{3}|[1-5]\d{4}|[1-9]\d{0,3}))?$/;

function allowedHostsOption(value: unknown, name: string): ReadonlySet<string> {
  if (value === undefined) return new Set();
  if (!Array.isArray(value)) throw typeError('an array of host names', name, value);
  const hosts = new Set<string>();
  value.forEach((h: unknown, i) => {
    if (typeof h !== 'string') throw typeError('a string', `${name}[${i}]`, h);
    if (!HOST.test(h)) throw withCode(new TypeError(`Expected a host name such as "memory.internal" or "memory.internal:9479" for ${name}[${i}] but received ${JSON.stringify(h)}`), 'ERR_INVALID_ARG_VALUE');
    hosts.add(h.toLowerCase());
  });
  return hosts;
}

/** The host part of a Host header, lower-cased and without brackets, or null when malformed. */
export function hostName(header: string): string | null {
  return hostParts(header)?.name ?? null;
}

/** A Host header's name (lower-cased, without brackets) and port (null when it has none). */
function hostParts(header: string): { name: string; port: number | null } | null {
  const m = HOST.exec(header);
  if (!m) return null;
  const h = m[1].toLowerCase();
  return { name: h.startsWith('[') ? h.slice(1, -1) : h, port: m[2] === undefined ? null : Number(m[2]) };
}

/** The address a request came in on, IPv4-mapped IPv6 written as IPv4. */
function localAddress(address: string | undefined): string | null {
  if (!address) return null;
  const a = address.toLowerCase();
  return a.startsWith('::ffff:') && isIP(a.slice(7)) === 4 ? a.slice(7) : a;
}

/**
 * Whether the Host header names this server: the address the connection really reached,
 * `localhost` when that address is loopback, or an allowed name. A DNS-rebinding page sends its
 * own name, which is none of these. A port in the header must be the one the connection reached
 * (an allowedHosts name without a port admits any); a Host without one is what clients send for
 * the scheme's default port (80, or 443 through a TLS proxy) and is judged by its name.
 */
export function hostAllowed(header: unknown, socketAddress: string | undefined, socketPort: number | undefined, allowed: ReadonlySet<string>): boolean {
  if (typeof header !== 'string') return false;
  const host = hostParts(header);
  if (host === null) return false;
  const { name, port } = host;
  if (allowed.has(name) || allowed.has(header.toLowerCase())) return true;
  const local = localAddress(socketAddress);
  if (local === null) return false;
  if (port !== null && port !== socketPort) return false;
  if (name === local) return true;
  const loopback = local === '::1' || (isIP(local) === 4 && local.startsWith('127.'));
  return name === 'localhost' && loopback;
}
export const MIN_TOKEN_LENGTH = 16;
const PREFIX = /^(\/[A-Za-z0-9\-_~!$&'()*+,;=:@.]+)*$/;

function prefixOption(value: unknown): string {
  if (value === undefined) return '/debug/memory';
  if (typeof value !== 'string') throw typeError('a string', 'options.prefix', value);
  const p = value.endsWith('/') ? value.slice(0, -1) : value;
  if (!PREFIX.test(p) || p.split('/').some((seg) => seg === '.' || seg === '..')) {
    throw typeError('a path such as "/debug/memory" (no query, no encoded characters, no dot segments)', 'options.prefix', value);
  }
  return p;
}

export function handlerConfig(options: unknown, name = 'options', extra: readonly string[] = []): HandlerConfig {
  const o = optionsObject<DiagnosticHandlerOptions>(options, name, [...HANDLER_OPTIONS, ...extra]);
  const allow = o.allowTrim ?? false;
  if (allow !== true && allow !== false && allow !== 'unauthenticated') {
    throw typeError("true, false or 'unauthenticated'", `${name}.allowTrim`, allow);
  }
  let token: string | null = null;
  if (o.token !== undefined) {
    if (typeof o.token !== 'string') throw typeError('a string', `${name}.token`, '(redacted)');
    if (o.token.length < MIN_TOKEN_LENGTH || !TOKEN.test(o.token)) {
      throw withCode(
        new RangeError(`Expected at least ${MIN_TOKEN_LENGTH} characters of [A-Za-z0-9-._~+/] for ${name}.token`),
        'ERR_INVALID_ARG_VALUE',
      );
    }
    token = o.token;
    // A token that would not be asked for is a configuration mistake: trimming would be off, or
    // open to anyone, while the caller believes it is behind the token.
    if (allow !== true) {
      throw withCode(
        new TypeError(`Expected true for ${name}.allowTrim when ${name}.token is set but received ${JSON.stringify(allow)}`),
        'ERR_INVALID_ARG_VALUE',
      );
    }
  }
  if (allow === true && token === null) {
    throw withCode(
      new TypeError(`${name}.allowTrim: true needs ${name}.token (or allowTrim: 'unauthenticated' to allow trims without one)`),
      'ERR_INVALID_ARG_VALUE',
    );
  }
  return {
    prefix: prefixOption(o.prefix),
    minIntervalMs: minInterval(o.minIntervalMs, `${name}.minIntervalMs`),
    trim: allow === true ? 'token' : allow === 'unauthenticated' ? 'unauthenticated' : 'off',
    token: allow === true ? token : null,
    metricsPrefix: metricsPrefix(o.metricsPrefix, `${name}.metricsPrefix`),
    allowedHosts: allowedHostsOption(o.allowedHosts, `${name}.allowedHosts`),
  };
}

export interface AllocatorConfiguration {
  /** Allocator-related environment variables (null when unset). */
  env: Record<string, string | null>;
  /** The allocator's own settings in effect (e.g. jemalloc opt.*), or null when it has none to report. */
  settings: Record<string, RawValue> | null;
  /** Why settings could not be read, when they could not. */
  error: string | null;
}

export function allocatorConfiguration(source: StatsSource): AllocatorConfiguration {
  // Only the allocators' variables (the registry's): the endpoint never shows the rest of the environment.
  const env = allocatorEnv(source.env());
  let settings: Record<string, RawValue> | null = null;
  let error: string | null = null;
  try {
    settings = source.settings();
  } catch (e) {
    error = e instanceof Error ? e.message : String(e);
  }
  return { env, settings, error };
}
