// Detection in the hard cases: allocator symbols present without serving malloc, and an
// LD_PRELOAD that did not take effect.
import { ALLOCATOR_LIBRARIES, findLibrary, runChild, testIf } from '../helpers';

const jemalloc = findLibrary(ALLOCATOR_LIBRARIES.jemalloc);
const tcmalloc = findLibrary(ALLOCATOR_LIBRARIES.tcmalloc);

describe('jemalloc loaded into the process but not serving malloc', () => {
  // process.dlopen() of a library that is not an addon throws and unloads it again, unless
  // RTLD_NODELETE (0x1000, not in os.constants) keeps it. jemalloc needs static TLS, which a
  // library loaded after start-up only gets with glibc's optional_static_tls tunable. Its
  // symbols are then global (RTLD_GLOBAL), so dlsym(RTLD_DEFAULT, "mallctl") finds them,
  // while malloc() stays bound to glibc. Detection runs once per process, so the library
  // is loaded before the first call into allocator-stats.
  testIf(jemalloc !== null, 'libjemalloc.so.2 not installed (apt-get install libjemalloc2)')(
    'is reported as inactive, glibc as the allocator, and its numbers are not used',
    async () => {
      const { value } = await runChild<{
        mapped: boolean;
        info: { name: string; inactive: Array<{ name: string; library: string }>; notes: string[] };
        stats: { allocator: { name: string }; allocated: number };
        mallctl: { code: string };
      }>(
        `const os = require('node:os');
         const fs = require('node:fs');
         const RTLD_NODELETE = 0x1000;
         try {
           process.dlopen({ exports: {} }, ${JSON.stringify(jemalloc)},
             os.constants.dlopen.RTLD_NOW | os.constants.dlopen.RTLD_GLOBAL | RTLD_NODELETE);
         } catch (e) {
           if (!/self-register/.test(e.message)) throw e;
         }
         const mapped = fs.readFileSync('/proc/self/maps', 'utf8').includes('libjemalloc.so.2');
         const a = require(LIB);
         const info = a.detectAllocator();
         const stats = a.allocatorStatsSync();
         let mallctl = null;
         try { a.jemalloc.mallctl.read('version'); } catch (e) { mallctl = { code: e.code }; }
         report({ mapped, info, stats, mallctl });`,
        { env: { GLIBC_TUNABLES: 'glibc.rtld.optional_static_tls=65536' } },
      );
      expect(value.mapped).toBe(true);
      expect(value.info.name).toBe('glibc');
      expect(value.info.inactive).toEqual([{ name: 'jemalloc', library: jemalloc }]);
      expect(value.info.notes.join('\n')).toMatch(/jemalloc symbols are present .* but it does not serve malloc/);
      expect(value.stats.allocator.name).toBe('glibc');
      expect(value.stats.allocated).toBeGreaterThan(0);
      expect(value.mallctl).toEqual({ code: 'ERR_ALLOCATOR_UNSUPPORTED' });
    },
  );
});

describe('LD_PRELOAD that did not take effect', () => {
  test('a wrong path is reported in notes and glibc is detected', async () => {
    const { value } = await runChild<{ name: string; notes: string[]; entries: Array<{ entry: string; loaded: boolean }> }>(
      `const info = require(LIB).detectAllocator(); report({ name: info.name, notes: info.notes, entries: info.preload.entries });`,
      { preload: '/usr/lib/nowhere/libtcmalloc_minimal.so.4' },
    );
    expect(value.name).toBe('glibc');
    expect(value.entries).toEqual([{ entry: '/usr/lib/nowhere/libtcmalloc_minimal.so.4', loaded: false }]);
    expect(value.notes.join('\n')).toMatch(/LD_PRELOAD names \/usr\/lib\/nowhere\/libtcmalloc_minimal\.so\.4 but it is not loaded/);
  });

  testIf(tcmalloc !== null && jemalloc !== null, 'libtcmalloc_minimal.so.4 or libjemalloc.so.2 not installed')(
    'of two allocators preloaded, the first serves malloc and the other is named inactive',
    async () => {
      const { value } = await runChild<{ name: string; notes: string[]; inactive: Array<{ name: string }> }>(
        `const info = require(LIB).detectAllocator(); report({ name: info.name, notes: info.notes, inactive: info.inactive });`,
        { preload: `${tcmalloc}:${jemalloc}` },
      );
      expect(value.name).toBe('tcmalloc');
      expect(value.inactive.map((i) => i.name)).toEqual(['jemalloc']);
      expect(value.notes.join('\n')).toMatch(/LD_PRELOAD loads .*libjemalloc\.so\.2 but tcmalloc serves malloc/);
      // Preloaded behind tcmalloc, not a library carrying its own copy: said once, as such.
      expect(value.notes.join('\n')).not.toMatch(/carrying its own copy/);
    },
  );
});
