// The live page: one self-contained HTML document (inline CSS and JS, no outside request). Its
// styles and script are real files, page/dashboard.css and page/dashboard.js (checked against the
// DOM by page/tsconfig.json), inlined here on the first request.
// It polls the JSON route relative to its own URL, so it works under any mount point, and
// draws RSS split into V8 heap, allocator-allocated, held back and other on a <canvas>.
// The Content-Security-Policy allows only these exact inline blocks and same-origin fetches.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { withCode } from '../core/errors';

// Next to this module both in src/ (the tests) and in lib/ (the build copies them there).
const PAGE_DIR = path.join(__dirname, 'page');

const BODY = `
<header><h1>Process memory</h1><span>allocator: <strong id="allocator">\u2026</strong></span><span id="status">loading\u2026</span></header>
<main>
<section class="cards">
<div class="card"><div class="label"><span class="sw rss"></span>RSS</div><div class="value" id="rss">\u2014</div></div>
<div class="card"><div class="label"><span class="sw v8"></span>V8 heap</div><div class="value" id="v8">\u2014</div></div>
<div class="card"><div class="label"><span class="sw alloc"></span><span id="allocLabel">allocator: allocated</span></div><div class="value" id="alloc">\u2014</div></div>
<div class="card"><div class="label"><span class="sw held"></span>allocator: held back</div><div class="value" id="held">\u2014</div></div>
<div class="card"><div class="label">releasable by a trim</div><div class="value" id="releasable">\u2014</div></div>
<div class="card"><div class="label"><span class="sw other"></span>other (code, stacks, \u2026)</div><div class="value" id="other">\u2014</div></div>
</section>
<section class="panel"><h2>RSS over time</h2><canvas id="chart" role="img" aria-label="RSS split into V8 heap, allocator allocated, held back and other"></canvas>
<div class="legend"><span><i class="sw v8"></i>V8 heap</span><span><i class="sw alloc"></i>allocated through malloc</span><span><i class="sw held"></i>held back by the allocator</span><span><i class="sw other"></i>other</span><span><i class="sw rss"></i>RSS</span></div></section>
<section class="panel" id="doctorPanel" hidden><h2>Doctor</h2><div id="findings"></div><p id="doctorNote"></p></section>
<section class="panel" id="historyPanel" hidden><h2>Parts of RSS over the monitor's window</h2><canvas id="history" role="img" aria-label="RSS split into V8 heap, ArrayBuffers, malloc in use, held back and other over the monitor's window, trims marked"></canvas>
<div class="legend"><span><i class="sw v8"></i>V8 heap</span><span><i class="sw ab"></i>ArrayBuffers</span><span><i class="sw alloc"></i>malloc in use (native)</span><span><i class="sw held"></i>held back</span><span><i class="sw other"></i>other</span><span><i class="sw rss"></i>RSS</span><span><i class="sw trim"></i>trim</span><span id="historyTrims"></span></div></section>
<section class="panel" id="trimPanel" hidden><h2>Trim</h2><form id="trimForm" class="trimrow"><input id="token" type="password" autocomplete="off" placeholder="bearer token" aria-label="bearer token"><button id="trimButton" type="submit">Trim now</button><span id="trimResult"></span></form></section>
<section class="cols">
<div class="panel"><h2>Allocator</h2><table><tbody id="allocTable"></tbody></table></div>
<div class="panel"><h2>Trims</h2><table><tbody id="trimTable"></tbody></table></div>
<div class="panel"><h2>Configuration</h2><table><tbody id="configTable"></tbody></table></div>
</section>
<section class="panel" id="notesPanel" hidden><h2>Notes</h2><ul id="notes"></ul></section>
</main>`;

const hash = (s: string): string => `'sha256-${createHash('sha256').update(s, 'utf8').digest('base64')}'`;

export interface DashboardPage {
  html: string;
  /** The Content-Security-Policy header that goes with `html`. */
  csp: string;
}

function pageFile(name: string): string {
  try {
    return fs.readFileSync(path.join(PAGE_DIR, name), 'utf8');
  } catch (error) {
    // The message reaches the browser (a 500 with ERR_INTERNAL): it names the file, not the path.
    const why = (error as NodeJS.ErrnoException).code ?? String(error);
    throw withCode(
      new Error(`the dashboard cannot be served: page/${name} could not be read (${why}); reinstall allocator-stats, or run npm run build:ts in a checkout`),
      'ERR_INTERNAL',
    );
  }
}

let page: DashboardPage | null = null;

/** The page and its CSP, read on the first request (not at import), then kept; a failed read is tried again next time. */
export function dashboardPage(): DashboardPage {
  if (page) return page;
  const style = pageFile('dashboard.css');
  const script = pageFile('dashboard.js');
  const html =
    '<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">' +
    '<title>allocator-stats</title><link rel="icon" href="data:,">' +
    `<style>${style}</style></head><body>${BODY}<script>${script}</script></body></html>\n`;
  const csp = [
    "default-src 'none'",
    `script-src ${hash(script)}`,
    `style-src ${hash(style)}`,
    "connect-src 'self'",
    'img-src data:',
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
  page = { html, csp };
  return page;
}
