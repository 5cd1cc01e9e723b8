#!/usr/bin/env node
'use strict';
// npm run prebuilds [-- --arch x64,arm64 --out DIR]
// Builds the published prebuilds: prebuilds/linux-<arch>/allocator-stats.glibc.node, one per
// architecture, and beside it the agent, allocator-stats-agent.glibc.so (docs/agent.md); loadable by every Node >= 20 (Node-API) on glibc >= 2.28, with the C++ runtime
// linked in (binding.gyp's portable build, native/core/glibc-compat.h). The libc tag keeps
// node-gyp-build from picking them on musl. arm64 is cross-compiled with Debian's
// g++-aarch64-linux-gnu when the host is not arm64.
//
// Each architecture builds in a scratch copy of the sources, so this checkout's build/ (the
// development build that node-gyp-build loads first) is left as it was.
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { parseArgs } = require('node:util');

const ROOT = path.join(__dirname, '..');
const ARCHES = ['x64', 'arm64'];
// As src/agent/locate.ts looks for it.
const AGENT_PREBUILD = 'allocator-stats-agent.glibc.so';
// Cross toolchain prefix per target architecture, used when it differs from the host's.
const CROSS = { arm64: 'aarch64-linux-gnu-', x64: 'x86_64-linux-gnu-' };

function usage(message) {
  if (message) console.error(message);
  console.error('usage: npm run prebuilds -- [--arch x64,arm64] [--out DIR]');
  process.exit(2);
}

function parse() {
  try {
    const { values } = parseArgs({
      options: { arch: { type: 'string', default: ARCHES.join(',') }, out: { type: 'string', default: ROOT } },
    });
    const arches = values.arch.split(',').filter(Boolean);
    const unknown = arches.filter((a) => !ARCHES.includes(a));
    if (arches.length === 0 || unknown.length > 0) usage(`unknown architecture: ${unknown.join(', ') || '(none)'}`);
    return { arches, out: path.resolve(values.out) };
  } catch (error) {
    return usage(error.message);
  }
}

function onPath(command) {
  try {
    execFileSync('sh', ['-c', `command -v "${command}"`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Compiler environment for `arch`: the host's compiler, or the cross toolchain. */
function toolchain(arch) {
  if (arch === os.arch()) return { env: {}, strip: 'strip' };
  const prefix = CROSS[arch];
  if (!onPath(`${prefix}g++`)) {
    throw new Error(
      `Cross-compiling for ${arch} needs ${prefix}g++ (Debian/Ubuntu: apt-get install g++-${prefix.slice(0, -1).replace(/_/g, '-')}).`,
    );
  }
  return {
    env: { CC: `${prefix}gcc`, CXX: `${prefix}g++`, LINK: `${prefix}g++`, AR: `${prefix}ar` },
    strip: `${prefix}strip`,
  };
}

function buildOne(arch, out) {
  const { env, strip } = toolchain(arch);
  const work = fs.mkdtempSync(path.join(os.tmpdir(), `allocator-stats-prebuild-${arch}-`));
  try {
    for (const f of ['binding.gyp', 'package.json', 'native']) {
      fs.cpSync(path.join(ROOT, f), path.join(work, f), { recursive: true });
    }
    fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(work, 'node_modules'));
    const gypEnv = {
      ...process.env,
      ...env,
      ALLOCATOR_STATS_PORTABLE: '1',
      PREBUILD_STRIP_BIN: strip,
      // node-gyp compiles one source at a time unless told otherwise.
      JOBS: process.env.JOBS || 'max',
    };
    // Node-API: any Node's headers build for all of them. Use this Node's headers where a
    // system copy exists (no download); elsewhere node-gyp fetches them for this version.
    if (!gypEnv.npm_config_nodedir && fs.existsSync('/usr/include/node/node_api.h')) gypEnv.npm_config_nodedir = '/usr';
    execFileSync(
      process.execPath,
      [
        require.resolve('prebuildify/bin.js'),
        '--napi',
        '--strip',
        '--tag-libc=glibc',
        `--arch=${arch}`,
        `--target=${process.versions.node}`,
        '--quiet',
      ],
      { cwd: work, env: gypEnv, stdio: ['ignore', 'inherit', 'inherit'] },
    );
    const dir = `linux-${arch}`;
    const built = fs.readdirSync(path.join(work, 'prebuilds', dir)).filter((f) => f.endsWith('.node'));
    if (built.length !== 1) throw new Error(`expected one prebuild for ${dir}, found ${built.join(', ') || 'none'}`);
    fs.mkdirSync(path.join(out, 'prebuilds', dir), { recursive: true });
    const dest = path.join(out, 'prebuilds', dir, built[0]);
    fs.copyFileSync(path.join(work, 'prebuilds', dir, built[0]), dest);
    // The agent is the second target of the same build: shipped beside the addon, stripped as it
    // is, under a name node-gyp-build never picks (it loads *.node only).
    const agent = path.join(work, 'build', 'Release', 'allocator_stats_agent.so');
    if (!fs.existsSync(agent)) throw new Error(`the build made no agent for ${dir}`);
    const agentDest = path.join(out, 'prebuilds', dir, AGENT_PREBUILD);
    fs.copyFileSync(agent, agentDest);
    execFileSync(strip, ['--strip-unneeded', agentDest]);
    return [dest, agentDest];
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

function main() {
  if (os.platform() !== 'linux') usage('prebuilds are made on Linux');
  const { arches, out } = parse();
  for (const arch of arches) {
    for (const file of buildOne(arch, out)) console.log(path.relative(process.cwd(), file) || file);
  }
}

try {
  main();
} catch (error) {
  console.error(error.message);
  process.exit(1);
}
