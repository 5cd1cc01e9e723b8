// Empties lib/ before the TypeScript build: tsc never deletes output whose source moved or
// went away, and a stale lib/foo.js shadows a new lib/foo/index.js for require() and for
// the published .d.ts files alike.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

fs.rmSync(path.join(__dirname, '..', 'lib'), { recursive: true, force: true });
