// The native core and the allocator backends build into a plain C++ program, without Node or
// node-addon-api headers, and measure glibc through the backend table: what the layout
// promises (only native/node/ knows N-API) is checked by compiling it.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { bindingTarget, commandExists, MiB, ROOT, testIf } from '../helpers';

const run = promisify(execFile);
const NATIVE = path.join(ROOT, 'native');
const LAYERS = ['core', 'glibc', 'jemalloc', 'tcmalloc', 'mimalloc'];

/** Every file of a layer's folder, relative to native/. */
function filesOf(layer: string): string[] {
  return fs.readdirSync(path.join(NATIVE, layer)).map((f) => `${layer}/${f}`);
}

interface CoreRun {
  detected: string;
  servedByTable: boolean;
  statmRss: number;
  sample: { serving: number; rss: number; rssAnon: number };
  glibc: { uordblks: number; hblkhd: number; arenasOk: number; heaps: number; mainResident: number; matches: number; mallocInfo: number };
  mallocInfoRows: number;
  trim: { result: number; durationNs: number; rssBefore: number; rssAfter: number };
  gaugeAfter: { arenasOk: number; mainResident: number };
}

describe('native core without Node', () => {
  test('no source outside native/node/ includes napi.h, and no include runs up a layer', () => {
    const broken: string[] = [];
    for (const layer of LAYERS) {
      for (const file of filesOf(layer)) {
        const text = fs.readFileSync(path.join(NATIVE, file), 'utf8');
        if (/napi|node_api/i.test(text)) broken.push(`${file} mentions N-API`);
        for (const [, included] of text.matchAll(/#include\s+"([^"]+)"/g)) {
          const folder = included.split('/')[0];
          // The core includes only the core; an allocator the core and its own folder.
          if (folder !== 'core' && folder !== layer) broken.push(`${file} includes ${included}`);
        }
      }
    }
    expect(broken).toEqual([]);
  });

  testIf(commandExists('g++'), 'g++ is needed to build the native core test program')(
    'the core and the backends, built with plain g++, detect glibc, sample it and trim it',
    async () => {
      const target = bindingTarget();
      const sources = target.sources.filter((s) => !s.startsWith('native/node/'));
      // Everything but the Node layer, and every file of the core and allocator folders.
      expect(sources.length).toBeGreaterThan(0);
      expect(sources.every((s) => LAYERS.includes(s.split('/')[1]))).toBe(true);
      const out = fs.mkdtempSync(path.join(os.tmpdir(), 'allocator-stats-core-'));
      try {
        const program = path.join(out, 'core-test');
        await run(
          'g++',
          [
            ...target.cflags_cc,
            '-O1',
            '-D_GNU_SOURCE',
            `-I${NATIVE}`,
            ...sources.map((s) => path.join(ROOT, s)),
            path.join(__dirname, 'native', 'core-test.cc'),
            '-o',
            program,
            '-ldl',
            '-pthread',
          ],
          { maxBuffer: 16 << 20 },
        );
        const { stdout } = await run(program, [], { env: { ...process.env, LD_PRELOAD: '' } });
        const r = JSON.parse(stdout) as CoreRun;
        expect(r.detected).toBe('glibc');
        expect(r.servedByTable).toBe(true);
        expect(r.sample.serving).toBe(1);
        // The core's RSS and /proc/self/statm's, read a moment apart: the same order of magnitude.
        expect(r.sample.rss).toBeGreaterThan(r.statmRss / 2);
        expect(r.sample.rss).toBeLessThan(r.statmRss * 2);
        expect(r.glibc.uordblks + r.glibc.hblkhd).toBeGreaterThan(0);
        // One maps reader found the main arena (holding the ~50 MB of freed chunks) and the heaps
        // of the threads' arenas, and their sizes add up to glibc's own total.
        expect(r.glibc.arenasOk).toBe(1);
        expect(r.glibc.heaps).toBeGreaterThanOrEqual(1);
        expect(r.glibc.matches).toBe(1);
        expect(r.glibc.mainResident).toBeGreaterThan(32 * MiB);
        expect(r.glibc.mallocInfo).toBe(1);
        expect(r.mallocInfoRows).toBeGreaterThan(0);
        // malloc_trim(0) returns 1 when it released memory, and RSS says how much.
        expect(r.trim.result).toBe(1);
        expect(r.trim.durationNs).toBeGreaterThan(0);
        expect(r.trim.rssBefore).toBeGreaterThan(r.trim.rssAfter + 32 * MiB);
        expect(r.gaugeAfter.arenasOk).toBe(1);
        expect(r.gaugeAfter.mainResident).toBeLessThan(r.glibc.mainResident - 32 * MiB);
      } finally {
        fs.rmSync(out, { recursive: true, force: true });
      }
    },
    5 * 60000,
  );
});
