// The ranking table as Markdown (ready to paste into a ticket), and the same facts as text.
import path from 'node:path';
import type { RunRecord } from './model';
import { RECOMMENDATION_RULE, type CandidateSummary, type Ranking } from './rank';
import type { Spread } from './summary';

export function mib(bytes: number | null | undefined): string {
  return bytes === null || bytes === undefined ? 'unknown' : `${(bytes / 1048576).toFixed(1)} MiB`;
}

function withSpread(s: Spread | null, scale: number, digits: number, unit: string): string {
  if (!s) return 'unknown';
  const v = (x: number): string => (x / scale).toFixed(digits);
  return s.sd === null ? `${v(s.mean)} ${unit}` : `${v(s.mean)} ± ${v(s.sd)} ${unit}`;
}

const bytesCell = (s: Spread | null): string => withSpread(s, 1048576, 1, 'MiB');
const secondsCell = (s: Spread | null): string => withSpread(s, 1000, 2, 's');

function allocatorCell(c: CandidateSummary): string {
  const r = c.runs[0];
  const env = Object.entries(r.allocator.env).map(([k, v]) => `${k}=${v}`).join(' ');
  // jemalloc's version ends in its git hash (5.3.0-0-g54eaed1d…): the release is enough here.
  const version = r.allocator.version ? ` ${r.allocator.version.replace(/-0-g[0-9a-f]+$/, '')}` : '';
  const name = r.allocator.name === 'unknown' && r.allocator.library ? path.basename(r.allocator.library) : r.allocator.name;
  return `${name}${version}${env ? ` (${env})` : ''}`;
}

function findingsCell(c: CandidateSummary): string {
  const ids = [...new Set(c.runs.flatMap((r) => r.findings.map((f) => f.id)))];
  return ids.length ? ids.join(', ') : '—';
}

export const TABLE_HEADER = ['#', 'candidate', 'allocator', 'peak RSS', 'steady RSS', 'final RSS', 'held back at end', 'wall time', 'runs', 'findings'];

export function tableRows(ranking: Ranking): string[][] {
  return ranking.candidates.map((c) => [
    c.rank === null ? `not ranked: ${c.excluded}` : String(c.rank),
    c.label,
    allocatorCell(c),
    bytesCell(c.peak),
    bytesCell(c.steady),
    bytesCell(c.final),
    bytesCell(c.heldBack),
    secondsCell(c.wallMs),
    String(c.runs.length),
    findingsCell(c),
  ]);
}

const escape = (s: string): string => s.replace(/\|/g, '\\|');

export function markdownReport(command: string[], runs: readonly RunRecord[], ranking: Ranking): string {
  const lines = [
    `## allocator-stats: \`${command.join(' ')}\``,
    '',
    `| ${TABLE_HEADER.join(' | ')} |`,
    `|${TABLE_HEADER.map((h, i) => (i === 0 || i === 1 || i === 2 || i === 9 ? '---' : '---:')).join('|')}|`,
    ...tableRows(ranking).map((row) => `| ${row.map(escape).join(' | ')} |`),
    '',
  ];
  if (ranking.recommendation) {
    lines.push(`**Recommendation: ${ranking.recommendation.label}** — ${ranking.recommendation.reason}.`, '', `Rule: ${RECOMMENDATION_RULE}.`, '');
  }
  lines.push(
    'Steady RSS is the median over the last third of a run; ± is the standard deviation over runs. ' +
      'Held back: resident allocator memory not in use (null when sampled from outside).',
    '',
  );
  const findings = runs.flatMap((r) => r.findings.map((f) => ({ label: r.label, f })));
  const seen = new Set<string>();
  const unique = findings.filter(({ label, f }) => !seen.has(`${label}/${f.id}`) && seen.add(`${label}/${f.id}`));
  if (unique.length) {
    lines.push('### Findings', '');
    for (const { label, f } of unique) lines.push(`- **${label}** — ${f.severity} \`${f.id}\`: ${f.title}. ${f.summary}`);
    lines.push('');
  }
  const notes = runs.filter((r) => r.source === 'proc');
  if (notes.length) {
    lines.push(`Sampled from outside through /proc (not available that way: ${notes[0].unavailable.join('; ')}).`, '');
  }
  return lines.join('\n');
}

/** A plain-text table, columns padded, for the terminal. */
export function textTable(ranking: Ranking): string {
  const rows = [TABLE_HEADER, ...tableRows(ranking)];
  const widths = TABLE_HEADER.map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => r.map((cell, i) => (i >= 3 && i <= 8 ? cell.padStart(widths[i]) : cell.padEnd(widths[i]))).join('  ').trimEnd()).join('\n');
}
