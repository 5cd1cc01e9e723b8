// Entry points: CommonJS and ES module. (The packed package and its prebuilds: package.test.ts.)
import { execFileSync } from 'node:child_process';
import { ROOT } from '../helpers';

const node = (args: string[], cwd = ROOT): string =>
  execFileSync(process.execPath, args, { cwd, encoding: 'utf8', env: { ...process.env, LD_PRELOAD: '' } });

const EXPECTED_EXPORTS = ['allocatorStats', 'allocatorStatsSync', 'detectAllocator', 'glibc', 'trim', 'trimSync'];

describe('entry points', () => {
  test('require("allocator-stats") works', () => {
    const out = node([
      '-e',
      `const a = require('allocator-stats');
       const s = a.allocatorStatsSync();
       console.log(JSON.stringify({ keys: Object.keys(a), name: s.allocator.name, heldBack: s.heldBack }));`,
    ]);
    const v = JSON.parse(out);
    for (const k of EXPECTED_EXPORTS) expect(v.keys).toContain(k);
    expect(v.name).toBe('glibc');
    expect(v.heldBack).toBeGreaterThanOrEqual(0);
  });

  test('import { allocatorStats } from "allocator-stats" works', () => {
    const out = node([
      '--input-type=module',
      '-e',
      `import { allocatorStats, detectAllocator, trim } from 'allocator-stats';
       import * as all from 'allocator-stats';
       const s = await allocatorStats();
       const t = await trim();
       console.log(JSON.stringify({ name: detectAllocator().name, keys: Object.keys(all), heldBack: s.heldBack, supported: t.supported }));`,
    ]);
    const v = JSON.parse(out);
    for (const k of EXPECTED_EXPORTS) expect(v.keys).toContain(k);
    expect(v.name).toBe('glibc');
    expect(v.supported).toBe(true);
  });

  test('the ES module exports exactly the names of the CommonJS entry, as the same objects', () => {
    // wrapper.mjs lists its named exports by hand: a name src/index.ts adds or drops must be
    // added or dropped there too.
    const out = node([
      '--input-type=module',
      '-e',
      `import { createRequire } from 'node:module';
       import * as esm from 'allocator-stats';
       const cjs = createRequire(process.cwd() + '/')('allocator-stats');
       const missing = Object.keys(cjs).filter((k) => !(k in esm) || esm[k] !== cjs[k]);
       const extra = Object.keys(esm).filter((k) => k !== 'default' && !Object.hasOwn(cjs, k));
       console.log(JSON.stringify({ missing, extra, cjs: Object.keys(cjs).length }));`,
    ]);
    const v = JSON.parse(out);
    expect(v.missing).toEqual([]);
    expect(v.extra).toEqual([]);
    expect(v.cjs).toBeGreaterThan(EXPECTED_EXPORTS.length);
  });

  test('an addon from another build than lib/ fails require() with ERR_ADDON_LOAD, not a later sample', () => {
    // The addon as another build would have it: its tcmalloc backend under another name.
    const out = node([
      '-e',
      `const { addon } = require('./lib/core/binding');
       const row = addon().wire.backends.find((b) => b.name === 'tcmalloc');
       row.name = 'other';
       try {
         require('./lib');
         console.log(JSON.stringify({ loaded: true }));
       } catch (e) {
         console.log(JSON.stringify({ code: e.code, message: e.message }));
       }`,
    ]);
    const v = JSON.parse(out);
    expect(v.code).toBe('ERR_ADDON_LOAD');
    expect(v.message).toMatch(/no tcmalloc backend at index \d+: the addon and lib\/ are from different builds/);
  });
});
