// `allocator-stats doctor <url>`: the doctor's findings from a running service's endpoint.
import { CliError } from './errors';
import { mib } from './export-markdown';
import type { CliFinding } from './model';

/** Where createDiagnosticHandler() serves its routes unless told otherwise. */
export const DEFAULT_PREFIX = '/debug/memory';
/** A service under memory pressure can be slow; an endpoint that takes longer is reported as down. */
export const DOCTOR_TIMEOUT_MS = 30_000;

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
  const rss = (answer.parts ?? []).map((p) => p.rss).filter((v): v is number => v !== null);
  if (rss.length) {
    const held = (answer.parts ?? []).map((p) => p.heldBack).filter((v): v is number => v !== null);
    const heldText = held.length ? `; held back ${mib(held[0])} → ${mib(held[held.length - 1])}` : '';
    lines.push(`  RSS ${mib(rss[0])} → ${mib(rss[rss.length - 1])} (highest ${mib(Math.max(...rss))})${heldText}`);
  }
  const findings = answer.findings ?? [];
  if (findings.length === 0) lines.push('  no findings');
  for (const f of findings) {
    lines.push(`  [${f.severity}] ${f.id}: ${f.title}`, `    ${f.summary}`);
    for (const a of f.advice ?? []) lines.push(`    - ${a}`);
  }
  for (const n of answer.notes ?? []) lines.push(`  note: ${n}`);
  return `${lines.join('\n')}\n`;
}

export async function doctorCommand(input: string, options: { json: boolean; token: string | null }): Promise<number> {
  const url = doctorUrl(input);
  const headers: Record<string, string> = { Accept: 'application/json' };
  if (options.token) headers.Authorization = `Bearer ${options.token}`;
  let response: Response;
  try {
    response = await fetch(url, { headers, signal: AbortSignal.timeout(DOCTOR_TIMEOUT_MS) });
  } catch (error) {
    const cause = (error as { cause?: { code?: string; message?: string } }).cause;
    process.stderr.write(`allocator-stats: cannot reach ${url.href}: ${cause?.code ?? cause?.message ?? (error as Error).message}\n`);
    return 1;
  }
  const text = await response.text();
  if (!response.ok) {
    let detail = text.trim().slice(0, 200);
    try {
      const body = JSON.parse(text) as { error?: string; code?: string };
      if (body.error) detail = `${body.error}${body.code ? ` (${body.code})` : ''}`;
    } catch {
      // not JSON: show it as text
    }
    const hint = response.status === 404 ? ' — is this the diagnostic endpoint, and does its version serve /doctor?' : '';
    process.stderr.write(`allocator-stats: ${url.href} answered ${response.status}: ${detail}${hint}\n`);
    return 1;
  }
  let answer: DoctorAnswer;
  try {
    answer = JSON.parse(text) as DoctorAnswer;
  } catch {
    process.stderr.write(`allocator-stats: ${url.href} did not answer with JSON\n`);
    return 1;
  }
  if (!Array.isArray(answer.findings)) {
    process.stderr.write(`allocator-stats: ${url.href} answered JSON without findings: not the doctor route\n`);
    return 1;
  }
  process.stdout.write(options.json ? `${JSON.stringify(answer, null, 2)}\n` : formatDiagnosis(answer, url));
  return 0;
}
