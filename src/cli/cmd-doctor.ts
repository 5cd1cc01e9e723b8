// `allocator-stats doctor <url>`: the doctor's findings from a running service's endpoint.
// The endpoint is not trusted: its answer is read up to a size limit and a deadline, every failure
// is one line, and its text is made safe for the terminal before it is printed.
import http from 'node:http';
import https from 'node:https';
import { CliError } from './errors';
import { mib } from './export-markdown';
import type { CliFinding } from './model';
import { safeText } from './terminal-safe';

/** Where createDiagnosticHandler() serves its routes unless told otherwise. */
export const DEFAULT_PREFIX = '/debug/memory';
/**
 * A service under memory pressure can be slow; an endpoint that takes longer is reported as down.
 * It bounds the whole exchange, redirects and body included, so a body that drips ends here too.
 */
export const DOCTOR_TIMEOUT_MS = 30_000;
/** A diagnosis is a few KiB; a body past this is not the doctor's and is not read further. */
export const DOCTOR_MAX_BYTES = 4 * 1024 * 1024;
/**
 * Same-origin redirects followed (a proxy adding a slash, a moved prefix). A redirect to another
 * origin is refused: the bearer token would go to a server the user did not name, and the answer
 * would come from it.
 */
export const DOCTOR_MAX_REDIRECTS = 3;

/** The endpoint's /doctor route for a URL given as the endpoint, its /doctor route, or a bare origin. */
export function doctorUrl(input: string): URL {
  let url: URL;
  try {
    url = new URL(input);
  } catch {
    throw new CliError(`Expected an http(s) URL for allocator-stats doctor but received ${JSON.stringify(input)}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new CliError(`Expected an http(s) URL for allocator-stats doctor but received ${JSON.stringify(input)}`);
  }
  const p = url.pathname.replace(/\/+$/, '');
  if (!p.endsWith('/doctor')) url.pathname = `${p === '' ? DEFAULT_PREFIX : p}/doctor`;
  return url;
}

interface DoctorAnswer {
  findings?: CliFinding[];
  window?: { start: number; end: number; samples: number };
  notes?: string[];
  /** RSS split into its parts over the monitor's window, oldest first. */
  parts?: Array<{ rss: number | null; heldBack: number | null }>;
  /** The endpoint's monitor: what its sampling costs the service. */
  monitor?: { costShare?: number; intervalMs?: number };
}

export function formatDiagnosis(answer: DoctorAnswer, url: URL): string {
  const lines = [`allocator-stats doctor: ${url.href}`];
  if (answer.window) {
    const cost = typeof answer.monitor?.costShare === 'number' ? `; sampling cost ${(answer.monitor.costShare * 100).toFixed(3)} % of a core` : '';
    lines.push(`  ${answer.window.samples} samples over ${((answer.window.end - answer.window.start) / 1000).toFixed(0)} s${cost}`);
  }
  const parts = Array.isArray(answer.parts) ? answer.parts.filter((p) => p !== null && typeof p === 'object') : [];
  const rss = parts.map((p) => p.rss).filter((v): v is number => typeof v === 'number');
  if (rss.length) {
    const held = parts.map((p) => p.heldBack).filter((v): v is number => typeof v === 'number');
    const heldText = held.length ? `; held back ${mib(held[0])} → ${mib(held[held.length - 1])}` : '';
    lines.push(`  RSS ${mib(rss[0])} → ${mib(rss[rss.length - 1])} (highest ${mib(Math.max(...rss))})${heldText}`);
  }
  const findings = (answer.findings ?? []).filter((f) => f !== null && typeof f === 'object');
  if (findings.length === 0) lines.push('  no findings');
  for (const f of findings) {
    lines.push(`  [${f.severity}] ${f.id}: ${f.title}`, `    ${f.summary}`);
    for (const a of Array.isArray(f.advice) ? f.advice : []) lines.push(`    - ${a}`);
  }
  for (const n of Array.isArray(answer.notes) ? answer.notes : []) lines.push(`  note: ${n}`);
  // Every line, not only the fields known to be text: a number the endpoint sent as a string
  // reaches the terminal as well.
  return `${lines.map(safeText).join('\n')}\n`;
}

export interface DoctorFetchOptions {
  token: string | null;
  maxBytes: number;
  timeoutMs: number;
}

interface DoctorReply {
  status: number;
  text: string;
  /** Where the answer came from, after same-origin redirects. */
  url: URL;
}

/**
 * GET `url` as JSON, read up to `maxBytes` within `timeoutMs`. Every failure is a CliError with
 * exit code 1 and a one-line message.
 */
export function fetchDoctor(url: URL, options: DoctorFetchOptions): Promise<DoctorReply> {
  const headers: Record<string, string> = { Accept: 'application/json' };
  if (options.token) headers.Authorization = `Bearer ${options.token}`;
  return new Promise((resolve, reject) => {
    let current: http.ClientRequest | null = null;
    let settled = false;
    const finish = (error: Error | null, reply?: DoctorReply): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      current?.destroy();
      if (error) reject(error);
      else resolve(reply!);
    };
    const fail = (message: string): void => finish(new CliError(message, 1));
    const timer = setTimeout(() => fail(`no answer from ${url.href} within ${options.timeoutMs} ms`), options.timeoutMs);
    timer.unref();

    const get = (target: URL, redirects: number): void => {
      const request = (target.protocol === 'https:' ? https : http).get(target, { headers });
      current = request;
      let answered = false;
      request.on('error', (error: NodeJS.ErrnoException) => {
        const reason = safeText(error.code ?? error.message);
        fail(answered ? `${target.href} broke off its answer: ${reason}` : `cannot reach ${target.href}: ${reason}`);
      });
      request.on('response', (response) => {
        answered = true;
        const status = response.statusCode ?? 0;
        if (status >= 300 && status < 400 && response.headers.location !== undefined) {
          response.on('error', () => undefined); // this answer is dropped, its errors with it
          response.resume();
          let next: URL;
          try {
            next = new URL(response.headers.location, target);
          } catch {
            return fail(`${target.href} answered ${status} with a Location that is not a URL: ${JSON.stringify(safeText(response.headers.location))}`);
          }
          if (next.origin !== target.origin) {
            return fail(`${target.href} redirected to another origin, not followed: ${safeText(next.href)}`);
          }
          if (redirects >= DOCTOR_MAX_REDIRECTS) return fail(`${target.href} redirected more than ${DOCTOR_MAX_REDIRECTS} times`);
          request.destroy();
          return get(next, redirects + 1);
        }
        const tooLarge = (): void => fail(`${target.href} answered more than ${options.maxBytes} bytes (--max-bytes): not read`);
        const declared = Number(response.headers['content-length']);
        if (Number.isFinite(declared) && declared > options.maxBytes) return tooLarge();
        const chunks: Buffer[] = [];
        let size = 0;
        response.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > options.maxBytes) return tooLarge();
          chunks.push(chunk);
        });
        // A connection closed before the body's declared end (a reset, a crash).
        response.on('error', (error: NodeJS.ErrnoException) => fail(`${target.href} broke off its answer: ${safeText(error.code ?? error.message)}`));
        response.on('end', () => {
          if (response.complete) finish(null, { status, text: Buffer.concat(chunks).toString('utf8'), url: target });
          else fail(`${target.href} broke off its answer: ECONNRESET`);
        });
      });
    };
    get(url, 0);
  });
}

export async function doctorCommand(
  input: string,
  options: { json: boolean; token: string | null; maxBytes?: number; timeoutMs?: number },
): Promise<number> {
  const url = doctorUrl(input);
  const reply = await fetchDoctor(url, {
    token: options.token,
    maxBytes: options.maxBytes ?? DOCTOR_MAX_BYTES,
    timeoutMs: options.timeoutMs ?? DOCTOR_TIMEOUT_MS,
  });
  const { status, text } = reply;
  const where = reply.url.href;
  if (status < 200 || status > 299) {
    let detail = text.trim().slice(0, 200);
    try {
      const body = JSON.parse(text) as { error?: unknown; code?: unknown };
      if (typeof body.error === 'string') detail = `${body.error}${typeof body.code === 'string' ? ` (${body.code})` : ''}`;
    } catch {
      // not JSON: show it as text
    }
    const hint = status === 404 ? ' — is this the diagnostic endpoint, and does its version serve /doctor?' : '';
    throw new CliError(`${where} answered ${status}: ${safeText(detail)}${hint}`, 1);
  }
  let answer: DoctorAnswer;
  try {
    answer = JSON.parse(text) as DoctorAnswer;
  } catch {
    throw new CliError(`${where} did not answer with JSON`, 1);
  }
  if (answer === null || typeof answer !== 'object' || !Array.isArray(answer.findings)) {
    throw new CliError(`${where} answered JSON without findings: not the doctor route`, 1);
  }
  // JSON.stringify writes every control character as an escape (\u001b), so --json is as safe.
  process.stdout.write(options.json ? `${JSON.stringify(answer, null, 2)}\n` : formatDiagnosis(answer, reply.url));
  return 0;
}
