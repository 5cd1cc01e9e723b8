// Copies the live page's script and styles next to the compiled dashboard module: tsc emits only
// what it compiles, and the page's files are served as written (src/diagnostics/dashboard.ts
// reads them from lib/diagnostics/page/ in the package).
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const from = path.join(__dirname, '..', 'src', 'diagnostics', 'page');
const to = path.join(__dirname, '..', 'lib', 'diagnostics', 'page');

fs.mkdirSync(to, { recursive: true });
for (const name of fs.readdirSync(from)) {
  if (name.endsWith('.js') || name.endsWith('.css')) fs.copyFileSync(path.join(from, name), path.join(to, name));
}
