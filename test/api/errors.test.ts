// Bad input: a clear error with a stable code, never a crash.
import { allocatorStats, allocatorStatsSync, glibc, trim, trimSync } from '../../src';
import { runChild, runFixture } from '../helpers';

describe('trim() options', () => {
  test.each([
    [{ pad: -1 }, RangeError, 'ERR_OUT_OF_RANGE'],
    [{ pad: NaN }, RangeError, 'ERR_OUT_OF_RANGE'],
    [{ pad: 1.5 }, RangeError, 'ERR_OUT_OF_RANGE'],
    [{ pad: Infinity }, RangeError, 'ERR_OUT_OF_RANGE'],
    [{ pad: 2 ** 53 }, RangeError, 'ERR_OUT_OF_RANGE'],
    [{ pad: 'x' }, TypeError, 'ERR_INVALID_ARG_TYPE'],
    [{ pad: 10n }, TypeError, 'ERR_INVALID_ARG_TYPE'],
    ['x', TypeError, 'ERR_INVALID_ARG_TYPE'],
    [null, TypeError, 'ERR_INVALID_ARG_TYPE'],
    [[], TypeError, 'ERR_INVALID_ARG_TYPE'],
    [{ padd: 1 }, TypeError, 'ERR_UNKNOWN_OPTION'],
  ])('trim(%p) rejects with %p %s', async (options, Ctor, code) => {
    const promise = trim(options as never);
    await expect(promise).rejects.toThrow(Ctor);
    await expect(promise).rejects.toMatchObject({ code });
    expect(() => trimSync(options as never)).toThrow(expect.objectContaining({ code }));
  });

  test('messages say what was expected and what was received', async () => {
    await expect(trim({ pad: -1 })).rejects.toThrow(
      'Expected an integer from 0 to 9007199254740991 for options.pad but received -1',
    );
    await expect(trim({ pad: 'x' } as never)).rejects.toThrow('Expected a number for options.pad but received "x"');
  });

  test('a rejected trim does not block the next one', async () => {
    await expect(trim({ pad: -1 })).rejects.toThrow();
    await expect(trim()).resolves.toMatchObject({ supported: true });
  });
});

describe('allocatorStats() options', () => {
  test.each([
    [{ releasable: 'yes' }, 'ERR_INVALID_ARG_TYPE'],
    [{ release: true }, 'ERR_UNKNOWN_OPTION'],
    [42, 'ERR_INVALID_ARG_TYPE'],
  ])('%p → %s', async (options, code) => {
    await expect(allocatorStats(options as never)).rejects.toMatchObject({ code });
    expect(() => allocatorStatsSync(options as never)).toThrow(expect.objectContaining({ code }));
  });
});

describe('glibc.mallopt()', () => {
  test('unknown parameter', () => {
    expect(() => glibc.mallopt('M_NOPE' as never, 1)).toThrow(expect.objectContaining({ code: 'ERR_MALLOPT_PARAM', name: 'TypeError' }));
    expect(() => glibc.mallopt(42 as never, 1)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    expect(() => glibc.mallopt('toString' as never, 1)).toThrow(expect.objectContaining({ code: 'ERR_MALLOPT_PARAM' }));
  });

  test('bad values', () => {
    expect(() => glibc.mallopt('M_TRIM_THRESHOLD', -1)).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    expect(() => glibc.mallopt('M_TRIM_THRESHOLD', 2 ** 31)).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    expect(() => glibc.mallopt('M_TRIM_THRESHOLD', '1' as never)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    // glibc takes 0 arenas and ignores it: refused here, with the range.
    expect(() => glibc.mallopt('M_ARENA_MAX', 0)).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE', message: expect.stringContaining('from 1 to') }));
  });

  test('a value glibc refuses says the range it takes', async () => {
    const { value } = await runFixture<{ code: string; name: string; message: string }>('mallopt-refused.js');
    expect(value.code).toBe('ERR_MALLOPT_FAILED');
    expect(value.name).toBe('RangeError');
    expect(value.message).toBe('Expected 0 to 160 bytes for M_MXFAST but received 1000 (glibc rejected mallopt(M_MXFAST, 1000))');
  });
});

describe('glibc namespace under another allocator', () => {
  const tbb = '/usr/lib/x86_64-linux-gnu/libtbbmalloc_proxy.so.2';
  test('rejects with ERR_ALLOCATOR_UNSUPPORTED and keeps the caller stack', async () => {
    const fs = await import('node:fs');
    if (!fs.existsSync(tbb)) {
      if (process.env.ALLOCATOR_STATS_REQUIRE_ALL === '1') throw new Error(`${tbb} missing`);
      return;
    }
    const { value } = await runChild<{ codes: string[]; stack: string }>(
      `const { glibc } = require(LIB);
       const codes = [];
       let stack = '';
       async function callerFrame() { return glibc.mallocInfo(); }
       try { await callerFrame(); } catch (e) { codes.push(e.code); stack = e.stack; }
       try { glibc.mallinfo2Sync(); } catch (e) { codes.push(e.code); }
       try { glibc.mallopt('M_TRIM_THRESHOLD', 1); } catch (e) { codes.push(e.code); }
       try { await glibc.trim(); } catch (e) { codes.push(e.code); }
       report({ codes, stack });`,
      { preload: tbb },
    );
    expect(value.codes).toEqual(Array(4).fill('ERR_ALLOCATOR_UNSUPPORTED'));
    expect(value.stack).toMatch(/needs glibc malloc/);
    expect(value.stack).toMatch(/callerFrame/);
  });
});
