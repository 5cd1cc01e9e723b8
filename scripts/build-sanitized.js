#!/usr/bin/env node
// Builds the addon with a sanitizer into its own directory (never build/), from the sources,
// defines and flags binding.gyp declares, so the sanitized addon is the same code as the real
// one. Load it by pointing node-gyp-build there: ALLOCATOR_STATS_PREBUILD=<out dir>.
//   node scripts/build-sanitized.js <address|undefined> [out dir]
// The default out dir is build-sanitize/<sanitizer>; the addon lands in <out>/build/Release.
// Skips the build when the addon is newer than every source.
'use strict';
const { execFileSync, spawn } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..');
const sanitizer = process.argv[2];
if (sanitizer !== 'address' && sanitizer !== 'undefined') {
  console.error('usage: node scripts/build-sanitized.js <address|undefined> [out dir]');
  process.exit(64);
}
const out = path.resolve(process.argv[3] || path.join(ROOT, 'build-sanitize', sanitizer));
const release = path.join(out, 'build', 'Release');
const addon = path.join(release, 'allocator_stats.node');

// binding.gyp is JSON with '#' comments.
const gyp = JSON.parse(
  fs
    .readFileSync(path.join(ROOT, 'binding.gyp'), 'utf8')
    .split('\n')
    .map((line) => line.replace(/^\s*#.*$/, ''))
    .join('\n'),
);
const target = gyp.targets.find((t) => t.target_name === 'allocator_stats');
const sources = target.sources.map((s) => path.join(ROOT, s));

function nodeHeaders() {
  const candidates = [
    process.env.NODE_HEADERS,
    path.join(process.execPath, '..', '..', 'include', 'node'),
    '/usr/include/node',
    path.join(process.env.HOME || '/root', '.cache', 'node-gyp', process.versions.node, 'include', 'node'),
  ].filter(Boolean);
  const found = candidates.find((d) => fs.existsSync(path.join(d, 'node_api.h')));
  if (!found) throw new Error(`node_api.h not found in ${candidates.join(', ')}`);
  return found;
}

// Every file under native/ (headers included), one folder per layer.
const nativeFiles = fs
  .readdirSync(path.join(ROOT, 'native'), { recursive: true })
  .map((f) => path.join(ROOT, 'native', f))
  .filter((f) => fs.statSync(f).isFile());
const inputs = [...sources, path.join(ROOT, 'binding.gyp'), ...nativeFiles];
if (fs.existsSync(addon) && inputs.every((f) => fs.statSync(f).mtimeMs < fs.statSync(addon).mtimeMs)) {
  console.log(addon);
  process.exit(0);
}

const napiInclude = execFileSync(process.execPath, ['-p', "require('node-addon-api').include_dir"], { cwd: ROOT, encoding: 'utf8' }).trim();
const flags = [
  ...target.cflags_cc,
  '-fPIC',
  '-g',
  '-O1',
  '-fno-omit-frame-pointer',
  `-fsanitize=${sanitizer}`,
  // Any report ends the process: a sanitizer finding can never pass unnoticed.
  '-fno-sanitize-recover=all',
  `-I${nodeHeaders()}`,
  `-I${path.resolve(ROOT, napiInclude)}`,
  ...target.include_dirs.filter((d) => !d.startsWith('<')).map((d) => `-I${path.join(ROOT, d)}`),
  ...target.defines.map((d) => `-D${d}`),
  '-DBUILDING_NODE_EXTENSION',
  '-DNODE_GYP_MODULE_NAME=allocator_stats',
];
fs.mkdirSync(path.join(out, 'obj'), { recursive: true });
fs.mkdirSync(release, { recursive: true });

function compile(source) {
  // Named by the path under native/: each layer has its own folder.
  const object = path.join(out, 'obj', `${path.relative(path.join(ROOT, 'native'), source).replace(/\.cc$/, '').split(path.sep).join('-')}.o`);
  return new Promise((resolve, reject) => {
    const cc = spawn('g++', [...flags, '-c', source, '-o', object], { stdio: 'inherit' });
    cc.on('error', reject);
    cc.on('close', (code) => (code === 0 ? resolve(object) : reject(new Error(`g++ failed on ${source}`))));
  });
}

(async () => {
  // Two compilers at a time: the machine has two cores.
  const objects = [];
  const queue = [...sources];
  await Promise.all(
    [0, 1].map(async () => {
      while (queue.length) objects.push(await compile(queue.shift()));
    }),
  );
  execFileSync('g++', ['-shared', `-fsanitize=${sanitizer}`, ...objects, '-o', addon, ...target.libraries], { stdio: 'inherit' });
  console.log(addon);
})().catch((e) => {
  console.error(e.message);
  process.exit(1);
});
