#!/usr/bin/env node
'use strict';
// Runs as prepublishOnly: refuses to publish unless both Linux prebuilds are in prebuilds/ and
// each loads where the package says it does (glibc >= 2.28, no libstdc++ of a given version).
// Usage: node scripts/check-prebuilds.js [package dir]
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const GLIBC_FLOOR = [2, 28];
// ELF e_machine of each architecture a prebuild is published for.
const REQUIRED = [
  { dir: 'linux-x64', machine: 0x3e, name: 'x86-64' },
  { dir: 'linux-arm64', machine: 0xb7, name: 'AArch64' },
];
const FILE = 'allocator-stats.glibc.node';

const version = (v) => v.split('.').map(Number);
const newer = (a, b) => a[0] > b[0] || (a[0] === b[0] && (a[1] ?? 0) > (b[1] ?? 0));

function readelf(args, file) {
  try {
    return execFileSync('readelf', [...args, file], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (error) {
    if (error.code === 'ENOENT') throw new Error('readelf is needed to check the prebuilds (Debian/Ubuntu: apt-get install binutils)');
    throw error;
  }
}

function problems(root) {
  const found = [];
  for (const { dir, machine, name } of REQUIRED) {
    const file = path.join(root, 'prebuilds', dir, FILE);
    if (!fs.existsSync(file)) {
      found.push(`${path.relative(root, file)} is missing`);
      continue;
    }
    const header = fs.readFileSync(file).subarray(0, 20);
    if (header.readUInt32BE(0) !== 0x7f454c46 || header.readUInt16LE(18) !== machine) {
      found.push(`${path.relative(root, file)} is not an ${name} ELF file`);
      continue;
    }
    const versions = readelf(['-V', '-W'], file).match(/\b(GLIBC|GLIBCXX|CXXABI)_[0-9.]+/g) ?? [];
    const tooNew = versions.filter((v) => v.startsWith('GLIBC_') && newer(version(v.slice(6)), GLIBC_FLOOR));
    if (tooNew.length > 0) found.push(`${dir} needs ${[...new Set(tooNew)].join(', ')} (newer than glibc ${GLIBC_FLOOR.join('.')})`);
    if (versions.some((v) => !v.startsWith('GLIBC_')) || /NEEDED.*libstdc\+\+/.test(readelf(['-d'], file))) {
      found.push(`${dir} needs the system libstdc++ (not a portable build)`);
    }
  }
  return found;
}

function main() {
  const root = path.resolve(process.argv[2] || path.join(__dirname, '..'));
  const found = problems(root);
  if (found.length > 0) {
    console.error(`Refusing to publish: ${found.join('; ')}.`);
    console.error('Run `npm run prebuilds` (needs g++ and g++-aarch64-linux-gnu) and publish from the same checkout.');
    process.exit(1);
  }
  console.log(`prebuilds ok: ${REQUIRED.map((r) => r.dir).join(', ')} (glibc >= ${GLIBC_FLOOR.join('.')})`);
}

try {
  main();
} catch (error) {
  console.error(`Refusing to publish: ${error.message}`);
  process.exit(1);
}
