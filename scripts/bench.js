#!/usr/bin/env node
'use strict';
// npm run bench: every benchmark, each in fresh processes. Figures are ratios against a
// baseline measured in the same run (process.memoryUsage(), an idle timer, a run without
// auto-trim), because absolute timings on a shared machine mean little.
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const suites = ['bench-core.js', 'bench-allocators.js', 'bench-autotrim.js', 'bench-agent.js'];
let failed = false;
for (const file of suites) {
  const script = path.join(__dirname, file);
  if (!fs.existsSync(script)) continue;
  console.log(`\n## ${file}`);
  try {
    execFileSync(process.execPath, [script], { stdio: 'inherit' });
  } catch {
    failed = true;
    console.error(`${file} failed`);
  }
}
process.exitCode = failed ? 1 : 0;
