#!/usr/bin/env node
'use strict';
// node scripts/cli-report.js [--runs 2] [--workers 6] [--mib 64] [--idle 6] [--interval 250]
// The report table of docs/cli.md: `allocator-stats compare` on scripts/churn-idle.js under
// every candidate installed here. Writes .bench/cli-report.{json,md,html}, prints the Markdown,
// and checks each run's figures against the /proc line the program printed at its own exit.
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { parseArgs } = require('node:util');

const { values } = parseArgs({
  options: { runs: { type: 'string', default: '2' }, workers: { type: 'string', default: '6' }, mib: { type: 'string', default: '64' }, idle: { type: 'string', default: '6' }, interval: { type: 'string', default: '250' } },
});
const root = path.join(__dirname, '..');
const out = path.join(root, '.bench');
fs.mkdirSync(out, { recursive: true });
const file = (ext) => path.join(out, `cli-report.${ext}`);
const program = ['node', 'scripts/churn-idle.js', values.workers, values.mib, values.idle];
const args = [
  // 250 ms: a run of seconds gives the doctor the dozen samples it needs for a verdict.
  path.join(root, 'lib', 'cli', 'main.js'), 'compare', '--runs', values.runs, '--interval', values.interval,
  '--export-json', file('json'), '--export-markdown', file('md'), '--export-html', file('html'), '--', ...program,
];

console.log(`$ npx allocator-stats ${args.slice(1).map((a) => (a.startsWith(out) ? path.relative(root, a) : a)).join(' ')}\n`);
const child = spawn(process.execPath, args, { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
let stdout = '';
child.stdout.on('data', (d) => (stdout += d));
child.on('close', (code) => {
  const report = JSON.parse(fs.readFileSync(file('json'), 'utf8'));
  console.log(fs.readFileSync(file('md'), 'utf8'));
  // The programs ran one after another, in the order of report.runs; each printed one line.
  const procs = stdout.split('\n').filter((l) => l.startsWith('@@PROC ')).map((l) => JSON.parse(l.slice(7)));
  if (procs.length !== report.runs.length) throw new Error(`expected ${report.runs.length} /proc lines, got ${procs.length}`);
  let worstFinal = 0;
  let worstPeak = 0;
  report.runs.forEach((r, i) => {
    worstFinal = Math.max(worstFinal, Math.abs(r.rss.final - procs[i].rss));
    worstPeak = Math.max(worstPeak, Math.abs(r.rss.peak - procs[i].hwm));
  });
  console.log(`Checked against /proc (each program's own VmRSS and VmHWM at exit): final RSS within ${(worstFinal / 1024).toFixed(0)} KiB, peak within ${(worstPeak / 1024).toFixed(0)} KiB over ${report.runs.length} runs.`);
  console.log(`Node ${process.version}, ${require('node:os').cpus().length} cores. Exit code of compare: ${code}.`);
});
