// The HTML report: one self-contained file (inline CSS and SVG, no script, no outside request,
// no web font). Per run, RSS stacked by its parts over time, held back and releasable as lines,
// trims marked; every chart on the same scales so candidates compare at a glance.
import type { RunRecord } from './model';
import { RECOMMENDATION_RULE, type Ranking } from './rank';
import { TABLE_HEADER, tableRows } from './export-markdown';

const W = 560;
const H = 260;
const PAD = { left: 64, right: 12, top: 12, bottom: 34 };

interface Layer {
  key: string;
  label: string;
  color: string;
}

// The doctor's split of RSS (they add up to rss), bottom to top.
const PART_LAYERS: Layer[] = [
  { key: 'v8Heap', label: 'V8 heap', color: '#6baed6' },
  { key: 'arrayBuffers', label: 'ArrayBuffers', color: '#9ecae1' },
  { key: 'nativeInUse', label: 'native in use (malloc)', color: '#74c476' },
  { key: 'heldBack', label: 'held back by the allocator', color: '#fd8d3c' },
  { key: 'other', label: 'other (code, stacks, mappings)', color: '#bdbdbd' },
  // What could not be split because a part is unknown (e.g. mimalloc does not count allocated bytes).
  { key: 'unsplit', label: 'not split (a part is unknown)', color: '#dadaeb' },
];
// Seen from outside only the kernel's split is known.
const PROC_LAYERS: Layer[] = [
  { key: 'anon', label: 'anonymous (heap, stacks)', color: '#74c476' },
  { key: 'file', label: 'file-backed and shared', color: '#bdbdbd' },
];

const esc = (s: string): string => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
const mib = (b: number): string => `${(b / 1048576).toFixed(b >= 100 * 1048576 ? 0 : 1)} MiB`;

interface Point {
  t: number;
  values: Record<string, number | null>;
  rss: number | null;
  heldBack: number | null;
  releasable: number | null;
}

function withUnsplit(parts: Record<string, number | null>): Record<string, number | null> {
  const keys = PART_LAYERS.map((l) => l.key).filter((k) => k !== 'unsplit');
  if (parts.rss === null || keys.every((k) => parts[k] !== null)) return { ...parts, unsplit: null };
  const known = keys.reduce((a, k) => a + Math.max(0, parts[k] ?? 0), 0);
  return { ...parts, unsplit: Math.max(0, parts.rss - known) };
}

function points(run: RunRecord): { layers: Layer[]; points: Point[] } {
  const t0 = run.startTime;
  // Inside the program (Node, or the agent in any other program) RSS splits into its parts.
  if (run.source !== 'proc' && run.parts.length === run.samples.length && run.parts.length > 0) {
    return {
      layers: PART_LAYERS,
      points: run.parts.map((p, i) => ({
        t: p.time - t0,
        values: withUnsplit(p as unknown as Record<string, number | null>),
        rss: p.rss,
        heldBack: run.samples[i].heldBack,
        releasable: run.samples[i].releasable,
      })),
    };
  }
  return {
    layers: PROC_LAYERS,
    points: run.samples.map((s) => ({
      t: s.time - t0,
      values: { anon: s.rssAnon, file: s.rss !== null && s.rssAnon !== null ? s.rss - s.rssAnon : null },
      rss: s.rss,
      heldBack: s.heldBack,
      releasable: s.releasable,
    })),
  };
}

function niceStep(max: number, ticks: number): number {
  const raw = max / ticks;
  const p = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 5, 10].map((m) => m * p).find((s) => s >= raw) ?? raw;
}

function chart(run: RunRecord, maxT: number, maxY: number, index: number, of: { k: number; n: number }): string {
  const { layers, points: pts } = points(run);
  const x = (t: number): number => PAD.left + (t / maxT) * (W - PAD.left - PAD.right);
  const y = (v: number): number => H - PAD.bottom - (v / maxY) * (H - PAD.top - PAD.bottom);
  const f = (n: number): string => n.toFixed(1);
  const parts: string[] = [];
  const yStep = niceStep(maxY / 1048576, 4) * 1048576;
  for (let v = 0; v <= maxY; v += yStep) {
    parts.push(`<line class="grid" x1="${PAD.left}" x2="${W - PAD.right}" y1="${f(y(v))}" y2="${f(y(v))}"/><text class="tick" x="${PAD.left - 6}" y="${f(y(v) + 4)}" text-anchor="end">${mib(v)}</text>`);
  }
  const tStep = niceStep(maxT / 1000, 5) * 1000;
  for (let t = 0; t <= maxT; t += tStep) {
    parts.push(`<text class="tick" x="${f(x(t))}" y="${H - PAD.bottom + 16}" text-anchor="middle">${(t / 1000).toFixed(tStep < 1000 ? 1 : 0)} s</text>`);
  }
  // Stacked areas: each layer between the running total below it and that total plus its value.
  const base = pts.map(() => 0);
  const drawn: Layer[] = [];
  for (const layer of layers) {
    const top = pts.map((p, i) => base[i] + Math.max(0, p.values[layer.key] ?? 0));
    if (pts.length > 0 && top.some((v, i) => v > base[i])) {
      const upper = pts.map((p, i) => `${f(x(p.t))},${f(y(top[i]))}`);
      const lower = pts.map((p, i) => `${f(x(p.t))},${f(y(base[i]))}`).reverse();
      parts.push(`<polygon class="area" data-layer="${layer.key}" points="${[...upper, ...lower].join(' ')}" fill="${layer.color}"><title>${esc(layer.label)}</title></polygon>`);
      drawn.push(layer);
    }
    top.forEach((v, i) => (base[i] = v));
  }
  const line = (key: 'rss' | 'heldBack' | 'releasable', cls: string): void => {
    const known = pts.filter((p) => p[key] !== null);
    if (known.length === 0) return;
    const d = known.map((p, i) => `${i ? 'L' : 'M'}${f(x(p.t))},${f(y(p[key]!))}`).join('');
    parts.push(`<path class="${cls}" data-series="${key}" d="${d}"/>`);
  };
  line('rss', 'rss');
  line('heldBack', 'held');
  line('releasable', 'releasable');
  for (const trim of run.trims) {
    const tx = f(x(trim.time - run.startTime));
    parts.push(`<line class="trim" data-trim="1" x1="${tx}" x2="${tx}" y1="${PAD.top}" y2="${H - PAD.bottom}"><title>trim${trim.releasedBytes !== null ? `: ${mib(trim.releasedBytes)} released` : ''}</title></line>`);
  }
  const legend = [
    ...drawn.map((l) => `<span><i style="background:${l.color}"></i>${esc(l.label)}</span>`),
    '<span><i class="l-rss"></i>RSS</span>',
    pts.some((p) => p.heldBack !== null) ? '<span><i class="l-held"></i>held back</span><span><i class="l-rel"></i>releasable</span>' : '',
    run.trims.length ? '<span><i class="l-trim"></i>trim</span>' : '',
  ].join('');
  const check = run.check.served === true ? 'verified' : run.check.served === false ? `not served: ${run.check.detected ?? '?'} did` : 'not verified';
  return `<figure class="run" id="run-${index}">
<figcaption><b>${esc(run.label)}</b>${of.n > 1 ? ` run ${of.k} of ${of.n}` : ''} — ${esc(run.allocator.name)}${run.allocator.version ? ` ${esc(run.allocator.version)}` : ''} (${esc(check)}),
exit ${run.exitCode ?? esc(String(run.signal))}, ${(run.wallMs / 1000).toFixed(2)} s, ${run.samples.length} samples ${run.source === 'node' ? 'from inside' : 'from /proc'}</figcaption>
<svg viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="memory of ${esc(run.label)} over time">${parts.join('')}</svg>
<div class="legend">${legend}</div>
</figure>`;
}

export function htmlReport(command: string[], runs: readonly RunRecord[], ranking: Ranking, title: string): string {
  const maxT = Math.max(1000, ...runs.map((r) => r.wallMs));
  const maxY = Math.max(1048576, ...runs.flatMap((r) => [r.rss.peak ?? 0, ...r.samples.map((s) => s.rss ?? 0)])) * 1.05;
  const rows = tableRows(ranking)
    .map((row) => `<tr>${row.map((c, i) => (i >= 3 && i <= 8 ? `<td class="num">${esc(c)}</td>` : `<td>${esc(c)}</td>`)).join('')}</tr>`)
    .join('\n');
  const findings = runs
    .map((r, i) =>
      r.findings.length
        ? `<section class="findings"><h3>${esc(r.label)} (run ${i + 1})</h3>${r.findings
            .map((fd) => `<div class="finding ${fd.severity}"><b>${esc(fd.severity)}</b> <code>${esc(fd.id)}</code> ${esc(fd.title)}<p>${esc(fd.summary)}</p>${fd.advice.length ? `<ul>${fd.advice.map((a) => `<li>${esc(a)}</li>`).join('')}</ul>` : ''}</div>`)
            .join('')}</section>`
        : '',
    )
    .join('');
  const rec = ranking.recommendation
    ? `<p class="rec"><b>Recommendation: ${esc(ranking.recommendation.label)}</b> — ${esc(ranking.recommendation.reason)}.</p><p class="rule">Rule: ${esc(RECOMMENDATION_RULE)}.</p>`
    : title === 'compare' ? '<p class="rec">No recommendation: no candidate could be ranked.</p>' : '';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>allocator-stats ${esc(title)}: ${esc(command.join(' '))}</title>
<style>
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px;color:#222}
h1{font-size:20px;margin:0 0 4px} code{font-family:ui-monospace,Menlo,Consolas,monospace}
table{border-collapse:collapse;margin:12px 0} th,td{border:1px solid #ddd;padding:4px 8px;text-align:left} td.num{text-align:right;white-space:nowrap} th{background:#f5f5f5}
.runs{display:flex;flex-wrap:wrap;gap:16px} figure{margin:0;width:580px;border:1px solid #ddd;padding:8px;border-radius:4px} figcaption{margin-bottom:4px}
svg .grid{stroke:#eee} svg .tick{font-size:10px;fill:#666} svg .area{stroke:none;opacity:.9}
svg .rss{fill:none;stroke:#222;stroke-width:1.5} svg .held{fill:none;stroke:#d94801;stroke-width:1.5} svg .releasable{fill:none;stroke:#d94801;stroke-width:1.5;stroke-dasharray:4 3}
svg .trim{stroke:#756bb1;stroke-width:2;stroke-dasharray:2 2}
.legend{font-size:12px;display:flex;flex-wrap:wrap;gap:10px} .legend i{display:inline-block;width:12px;height:10px;margin-right:4px;vertical-align:middle}
.legend .l-rss{border-top:2px solid #222;height:0} .legend .l-held{border-top:2px solid #d94801;height:0} .legend .l-rel{border-top:2px dashed #d94801;height:0} .legend .l-trim{border-left:2px dashed #756bb1;width:0}
.finding{margin:6px 0;padding:6px 8px;border-left:4px solid #999} .finding.warning{border-color:#e6550d} .finding.critical{border-color:#a50f15} .finding p{margin:2px 0}
.rec{font-size:16px} .rule,.note{color:#555}
</style></head><body>
<h1>allocator-stats ${esc(title)}</h1>
<p><code>${esc(command.join(' '))}</code></p>
${rec}
<table><thead><tr>${TABLE_HEADER.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>
${rows}
</tbody></table>
<p class="note">Steady RSS: the median over the last third of a run. ± : standard deviation over runs. All charts share one time axis and one RSS axis.</p>
<div class="runs">
${runs.map((r, i) => chart(r, maxT, maxY, i, { k: runs.slice(0, i + 1).filter((x) => x.label === r.label).length, n: runs.filter((x) => x.label === r.label).length })).join('\n')}
</div>
${findings ? `<h2>Findings</h2>${findings}` : '<h2>Findings</h2><p>none</p>'}
</body></html>
`;
}
