// Packaging: CommonJS and ES module entry points, and loading from a prebuild alone.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROOT } from './helpers';

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
});

describe('prebuild', () => {
  test('npm run prebuild output loads with no build/ directory', () => {
    const work = fs.mkdtempSync(path.join(os.tmpdir(), 'allocator-stats-prebuild-'));
    const pkg = fs.mkdtempSync(path.join(os.tmpdir(), 'allocator-stats-pkg-'));
    try {
      // Build the prebuild in a copy, so this checkout's build/ is left alone.
      for (const f of ['binding.gyp', 'package.json', 'native']) fs.cpSync(path.join(ROOT, f), path.join(work, f), { recursive: true });
      fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(work, 'node_modules'));
      execFileSync('npm', ['run', 'prebuild'], { cwd: work, stdio: 'pipe', env: { ...process.env, LD_PRELOAD: '' } });
      const built = fs.readdirSync(path.join(work, 'prebuilds', `${process.platform}-${process.arch}`));
      expect(built.some((f) => f.endsWith('.node'))).toBe(true);

      // A package with lib/ and prebuilds/ only: no native sources, no build/.
      for (const f of ['package.json', 'wrapper.mjs', 'lib']) fs.cpSync(path.join(ROOT, f), path.join(pkg, f), { recursive: true });
      fs.cpSync(path.join(work, 'prebuilds'), path.join(pkg, 'prebuilds'), { recursive: true });
      fs.mkdirSync(path.join(pkg, 'node_modules'));
      fs.cpSync(path.join(ROOT, 'node_modules', 'node-gyp-build'), path.join(pkg, 'node_modules', 'node-gyp-build'), { recursive: true });
      expect(fs.existsSync(path.join(pkg, 'build'))).toBe(false);

      const out = node(
        [
          '-e',
          `const a = require(${JSON.stringify(pkg)});
           const loaded = process.report.getReport().sharedObjects.filter((p) => p.endsWith('.node'));
           console.log(JSON.stringify({ name: a.detectAllocator().name, held: a.allocatorStatsSync().heldBack, loaded }));`,
        ],
        pkg,
      );
      const v = JSON.parse(out);
      expect(v.name).toBe('glibc');
      expect(v.held).toBeGreaterThanOrEqual(0);
      expect(v.loaded.length).toBe(1);
      expect(v.loaded[0].startsWith(path.join(pkg, 'prebuilds'))).toBe(true);
    } finally {
      fs.rmSync(work, { recursive: true, force: true });
      fs.rmSync(pkg, { recursive: true, force: true });
    }
  }, 300000);
});
