// Every argument the addon's calls take is checked in TypeScript, before the addon sees it: a bad
// one throws (or rejects) with a stable code, and the native function it would have reached is
// never called (the native layer keeps only its guards against undefined behaviour).
import { allocatorStats, allocatorStatsSync, glibc, jemalloc, mimalloc, tcmalloc, trim, trimSync } from '../../src';
import { addon, type NativeBinding } from '../../src/core/binding';
import { ALLOCATOR_LIBRARIES, findLibrary, runChild, testIf } from '../helpers';

const binding = addon();

// In a child (runChild): the addon itself, as `b`.
const CHILD_BINDING = `const b = require(require('node:path').join(require('node:path').dirname(LIB), 'core', 'binding')).addon();`;

// The native calls an argument would reach, counted.
const WATCHED = [
  'glibcMallopt',
  'jemallocRead',
  'jemallocWrite',
  'tcmallocProperties',
  'tcmallocSetProperty',
  'tcmallocReleaseRate',
  'mimallocOptionGet',
  'mimallocOptionSet',
  'sample',
  'sampleSync',
  'trim',
  'trimSync',
] as const satisfies ReadonlyArray<keyof NativeBinding>;

let calls: string[] = [];
const originals = new Map<string, unknown>();

beforeAll(() => {
  for (const name of WATCHED) {
    const original = binding[name] as (...args: unknown[]) => unknown;
    originals.set(name, original);
    (binding as unknown as Record<string, unknown>)[name] = (...args: unknown[]) => {
      calls.push(name);
      return original.apply(binding, args);
    };
  }
});

afterAll(() => {
  for (const [name, original] of originals) (binding as unknown as Record<string, unknown>)[name] = original;
});

beforeEach(() => {
  calls = [];
});

const thrown = (f: () => unknown): { code?: string; name?: string } | null => {
  try {
    f();
    return null;
  } catch (e) {
    return { code: (e as { code?: string }).code, name: (e as Error).name };
  }
};

describe('arguments are checked before the addon is called', () => {
  test.each<[string, () => unknown, string, string]>([
    ['glibc.mallopt(unknown name)', () => glibc.mallopt('M_NOPE' as never, 1), 'ERR_MALLOPT_PARAM', 'TypeError'],
    ['glibc.mallopt(name not a string)', () => glibc.mallopt(1 as never, 1), 'ERR_INVALID_ARG_TYPE', 'TypeError'],
    ['glibc.mallopt(value not a number)', () => glibc.mallopt('M_TOP_PAD', '1' as never), 'ERR_INVALID_ARG_TYPE', 'TypeError'],
    ['glibc.mallopt(fractional value)', () => glibc.mallopt('M_TOP_PAD', 1.5), 'ERR_OUT_OF_RANGE', 'RangeError'],
    ['glibc.mallopt(value above INT_MAX)', () => glibc.mallopt('M_TOP_PAD', 2 ** 31), 'ERR_OUT_OF_RANGE', 'RangeError'],
    ['glibc.mallopt(M_ARENA_MAX 0)', () => glibc.mallopt('M_ARENA_MAX', 0), 'ERR_OUT_OF_RANGE', 'RangeError'],
    ['tcmalloc.property(empty name)', () => tcmalloc.property(''), 'ERR_INVALID_ARG_TYPE', 'TypeError'],
    ['tcmalloc.property(name with NUL)', () => tcmalloc.property('generic.heap_size\0x'), 'ERR_INVALID_ARG_TYPE', 'TypeError'],
    ['tcmalloc.setProperty(name not a string)', () => tcmalloc.setProperty(7 as never, 1), 'ERR_INVALID_ARG_TYPE', 'TypeError'],
    ['tcmalloc.setProperty(negative value)', () => tcmalloc.setProperty('tcmalloc.max_total_thread_cache_bytes', -1), 'ERR_OUT_OF_RANGE', 'RangeError'],
    ['tcmalloc.setProperty(fractional value)', () => tcmalloc.setProperty('tcmalloc.max_total_thread_cache_bytes', 0.5), 'ERR_OUT_OF_RANGE', 'RangeError'],
    ['tcmalloc.setProperty(value past 2^53)', () => tcmalloc.setProperty('tcmalloc.max_total_thread_cache_bytes', 2 ** 53), 'ERR_OUT_OF_RANGE', 'RangeError'],
    ['tcmalloc.releaseRate(negative)', () => tcmalloc.releaseRate(-1), 'ERR_OUT_OF_RANGE', 'RangeError'],
    ['tcmalloc.releaseRate(NaN)', () => tcmalloc.releaseRate(NaN), 'ERR_OUT_OF_RANGE', 'RangeError'],
    ['tcmalloc.releaseRate(above 1e6)', () => tcmalloc.releaseRate(2e6), 'ERR_OUT_OF_RANGE', 'RangeError'],
    ['tcmalloc.releaseRate(not a number)', () => tcmalloc.releaseRate('10' as never), 'ERR_INVALID_ARG_TYPE', 'TypeError'],
    ['mimalloc.option(name not a string)', () => mimalloc.option(3 as never), 'ERR_INVALID_ARG_TYPE', 'TypeError'],
    ['mimalloc.option(unknown name)', () => mimalloc.option('no_such_option'), 'ERR_MIMALLOC_OPTION', 'TypeError'],
    ['mimalloc.option(fractional value)', () => mimalloc.option('verbose', 0.5), 'ERR_OUT_OF_RANGE', 'RangeError'],
    ['mimalloc.option(value past a C int)', () => mimalloc.option('verbose', 2 ** 31), 'ERR_OUT_OF_RANGE', 'RangeError'],
    ['mimalloc.setCollectTimeout(negative)', () => mimalloc.setCollectTimeout(-1), 'ERR_OUT_OF_RANGE', 'RangeError'],
    ['jemalloc.mallctl.read(empty name)', () => jemalloc.mallctl.read(''), 'ERR_INVALID_ARG_TYPE', 'TypeError'],
    ['jemalloc.mallctl.write(name with NUL)', () => jemalloc.mallctl.write('opt.narenas\0', 1), 'ERR_INVALID_ARG_TYPE', 'TypeError'],
    ['jemalloc.backgroundThread(not a boolean)', () => jemalloc.backgroundThread('yes' as never), 'ERR_INVALID_ARG_TYPE', 'TypeError'],
    ['jemalloc.setEpochInterval(negative)', () => jemalloc.setEpochInterval(-1), 'ERR_OUT_OF_RANGE', 'RangeError'],
    ['trimSync({ pad: -1 })', () => trimSync({ pad: -1 }), 'ERR_OUT_OF_RANGE', 'RangeError'],
    ['trimSync({ nope })', () => trimSync({ nope: 1 } as never), 'ERR_UNKNOWN_OPTION', 'TypeError'],
    ['allocatorStatsSync({ releasable: 1 })', () => allocatorStatsSync({ releasable: 1 } as never), 'ERR_INVALID_ARG_TYPE', 'TypeError'],
  ])('%s throws %s', (_, call, code, name) => {
    expect(thrown(call)).toEqual({ code, name });
    expect(calls).toEqual([]);
  });

  test.each<[string, () => Promise<unknown>, string]>([
    ['trim({ pad: 1.5 })', () => trim({ pad: 1.5 }), 'ERR_OUT_OF_RANGE'],
    ['glibc.trim({ pad: "1" })', () => glibc.trim({ pad: '1' } as never), 'ERR_INVALID_ARG_TYPE'],
    ['allocatorStats({ releasable: "yes" })', () => allocatorStats({ releasable: 'yes' } as never), 'ERR_INVALID_ARG_TYPE'],
  ])('%s rejects with %s', async (_, call, code) => {
    await expect(call()).rejects.toMatchObject({ code });
    expect(calls).toEqual([]);
  });

  test('valid arguments do reach the addon (the counting works)', () => {
    glibc.mallopt('M_TOP_PAD', 128 * 1024);
    allocatorStatsSync();
    expect(calls).toEqual(['glibcMallopt', 'sampleSync']);
  });
});

describe('under jemalloc, mallctl values are checked against the type of the name', () => {
  const lib = findLibrary(ALLOCATOR_LIBRARIES.jemalloc);
  testIf(lib !== null, 'libjemalloc.so.2 not installed (apt-get install libjemalloc2)')('each bad value throws its code, and jemalloc never sees it', async () => {
    const { value } = await runChild<Record<string, unknown>>(
      `const { jemalloc } = require(LIB);
       ${CHILD_BINDING}
       let calls = 0;
       for (const f of ['jemallocRead', 'jemallocWrite']) { const o = b[f]; b[f] = (...a) => (calls++, o.apply(b, a)); }
       const err = (f) => { try { f(); return null; } catch (e) { return e.code; } };
       const codes = {
         readAction: err(() => jemalloc.mallctl.read('arena.0.purge')),
         boolAsNumber: err(() => jemalloc.mallctl.write('background_thread', 1)),
         sizeNegative: err(() => jemalloc.mallctl.write('arenas.lextent.0.size', -1)),
         unsignedTooBig: err(() => jemalloc.mallctl.write('thread.arena', 2 ** 32)),
         ssizeFraction: err(() => jemalloc.mallctl.write('arenas.dirty_decay_ms', 0.5)),
         uint64TooBig: err(() => jemalloc.mallctl.write('prof.interval', 2n ** 64n)),
         bigintForSize: err(() => jemalloc.mallctl.write('arenas.lextent.0.size', 1n)),
         stringWithNul: err(() => jemalloc.mallctl.write('thread.prof.name', 'a\\0b')),
         valueForAction: err(() => jemalloc.mallctl.write('arena.0.purge', 1)),
         zeroThreads: err(() => jemalloc.mallctl.write('max_background_threads', 0)),
         unknownType: err(() => jemalloc.mallctl.write('arenas.create', 1)),
       };
       report({ codes, calls });`,
      { preload: lib! },
    );
    expect(value.codes).toEqual({
      readAction: 'ERR_MALLCTL_ACCESS',
      boolAsNumber: 'ERR_INVALID_ARG_TYPE',
      sizeNegative: 'ERR_OUT_OF_RANGE',
      unsignedTooBig: 'ERR_OUT_OF_RANGE',
      ssizeFraction: 'ERR_OUT_OF_RANGE',
      uint64TooBig: 'ERR_OUT_OF_RANGE',
      bigintForSize: 'ERR_INVALID_ARG_TYPE',
      stringWithNul: 'ERR_INVALID_ARG_VALUE',
      valueForAction: 'ERR_INVALID_ARG_TYPE',
      zeroThreads: 'ERR_OUT_OF_RANGE',
      unknownType: 'ERR_MALLCTL_TYPE',
    });
    expect(value.calls).toBe(0);
  });
});

// The addon's own guards, reached only by calling it directly (the checks above stop every public
// call first): a value of the wrong type is a TypeError ERR_INVALID_ARG_TYPE, a number or bigint
// its type cannot hold a RangeError ERR_OUT_OF_RANGE, and neither reaches the allocator.
describe('the addon, called directly, refuses what a cast could not hold', () => {
  const rawCall = `${CHILD_BINDING}
       const err = (f) => { try { f(); return 'no error'; } catch (e) { return e.name + ' ' + e.code; } };`;

  const jemallocLib = findLibrary(ALLOCATOR_LIBRARIES.jemalloc);
  testIf(jemallocLib !== null, 'libjemalloc.so.2 not installed (apt-get install libjemalloc2)')('jemallocWrite', async () => {
    const { value } = await runChild<Record<string, string>>(
      `${rawCall}
       report({
         fraction: err(() => b.jemallocWrite('arenas.dirty_decay_ms', 'ssize_t', 0.5)),
         notANumber: err(() => b.jemallocWrite('arenas.dirty_decay_ms', 'ssize_t', 'x')),
         bigintAbove64Bits: err(() => b.jemallocWrite('prof.interval', 'uint64_t', 2n ** 64n)),
         negativeBigint: err(() => b.jemallocWrite('prof.interval', 'uint64_t', -1n)),
         object: err(() => b.jemallocWrite('arenas.dirty_decay_ms', 'ssize_t', {})),
       });`,
      { preload: jemallocLib! },
    );
    expect(value).toEqual({
      fraction: 'RangeError ERR_OUT_OF_RANGE',
      notANumber: 'TypeError ERR_INVALID_ARG_TYPE',
      bigintAbove64Bits: 'RangeError ERR_OUT_OF_RANGE',
      negativeBigint: 'RangeError ERR_OUT_OF_RANGE',
      object: 'TypeError ERR_INVALID_ARG_TYPE',
    });
  });

  const tcmallocLib = findLibrary(ALLOCATOR_LIBRARIES.tcmalloc);
  testIf(tcmallocLib !== null, 'libtcmalloc_minimal.so.4 not installed (apt-get install libtcmalloc-minimal4)')(
    'tcmallocSetProperty and tcmallocReleaseRate',
    async () => {
      const { value } = await runChild<Record<string, string>>(
        `${rawCall}
         const before = b.tcmallocReleaseRate();
         report({
           fraction: err(() => b.tcmallocSetProperty('tcmalloc.max_total_thread_cache_bytes', 1.5)),
           nameNotAString: err(() => b.tcmallocSetProperty(1, 1)),
           valueNotANumber: err(() => b.tcmallocSetProperty('tcmalloc.max_total_thread_cache_bytes', '1')),
           rateNaN: err(() => b.tcmallocReleaseRate(NaN)),
           rateInfinite: err(() => b.tcmallocReleaseRate(Infinity)),
           unchanged: String(b.tcmallocReleaseRate() === before),
         });`,
        { preload: tcmallocLib! },
      );
      expect(value).toEqual({
        fraction: 'RangeError ERR_OUT_OF_RANGE',
        nameNotAString: 'TypeError ERR_INVALID_ARG_TYPE',
        valueNotANumber: 'TypeError ERR_INVALID_ARG_TYPE',
        rateNaN: 'RangeError ERR_OUT_OF_RANGE',
        rateInfinite: 'RangeError ERR_OUT_OF_RANGE',
        unchanged: 'true',
      });
    },
  );
});
