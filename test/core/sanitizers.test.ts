// The addon built with UndefinedBehaviorSanitizer and with AddressSanitizer (into
// build-sanitize/, never build/) runs test/core/fixtures/native-stress.js: every native entry point,
// sync and async, from worker threads, and while workers are terminated. Any report ends the
// child (-fno-sanitize-recover=all, halt_on_error=1) and fails the test.
//
// UBSan keeps the real allocator, so it runs under glibc and under each preloaded allocator.
// ASan replaces malloc itself: under it glibc's counters do not move and no other allocator can
// serve malloc, so detection says 'unknown' and each backend stops at its "not serving" check.
// What ASan covers is therefore the allocator-independent code (init, teardown, detection,
// /proc reads, the async and worker machinery, wire packing) and glibc's region scan and
// trim, which run whoever serves malloc; the jemalloc, tcmalloc and mimalloc paths that read a
// serving allocator's numbers are covered by UBSan, not ASan.
import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { lastJson, runFixture, type FixtureRun } from '../fixture';
import { ALLOCATOR_LIBRARIES, commandExists, findLibrary, ROOT, testIf } from '../helpers';

const BUILD_LIMIT_MS = 600_000;
const RUN_LIMIT_MS = 180_000;

function runtime(file: string): string | null {
  if (!commandExists('g++')) return null;
  const p = execFileSync('g++', [`-print-file-name=${file}`], { encoding: 'utf8' }).trim();
  return path.isAbsolute(p) && fs.existsSync(p) ? p : null;
}
const headers = ['/usr/include/node', path.join(process.execPath, '..', '..', 'include', 'node')].some((d) => fs.existsSync(path.join(d, 'node_api.h')));
const libasan = runtime('libasan.so');
const libubsan = runtime('libubsan.so');
const UBSAN_READY = headers && libubsan !== null;
const ASAN_READY = headers && libasan !== null;
const UBSAN_MISSING = 'g++ with libubsan and Node headers (node_api.h) are needed for the UBSan build';
const ASAN_MISSING = 'g++ with libasan and Node headers (node_api.h) are needed for the ASan build';

function build(sanitizer: 'address' | 'undefined'): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [path.join(ROOT, 'scripts', 'build-sanitized.js'), sanitizer], { cwd: ROOT, timeout: BUILD_LIMIT_MS }, (error, stdout, stderr) =>
      error ? reject(new Error(`${sanitizer} build failed: ${stderr}`)) : resolve(stdout.trim().split('\n').pop()!),
    );
  });
}

// Both builds start at once, each test waits for its own.
const builds: Partial<Record<'address' | 'undefined', Promise<string>>> = {};
const built = (s: 'address' | 'undefined'): Promise<string> => (builds[s] ??= build(s));
// The build really is instrumented: its code calls the sanitizer's runtime.
const INSTRUMENTED = { undefined: '__ubsan_handle_', address: '__asan_report_' } as const;
async function sanitized(s: 'address' | 'undefined'): Promise<string> {
  const addon = await built(s);
  expect(fs.readFileSync(addon).includes(INSTRUMENTED[s])).toBe(true);
  return addon;
}

function expectClean(run: FixtureRun, addon: string, allocator: string): void {
  expect({ timedOut: run.timedOut, signal: run.signal, code: run.code }).toEqual({ timedOut: false, signal: null, code: 0 });
  expect(run.stderr).not.toMatch(/runtime error|AddressSanitizer|LeakSanitizer|terminate called/);
  expect(lastJson(run)).toEqual({ allocator, addon });
}

const prebuildDir = (addon: string): string => path.resolve(path.dirname(addon), '..', '..');

describe('UndefinedBehaviorSanitizer build', () => {
  // Three worker threads beside the main thread, under every allocator.
  const runs: Array<[string, string | null, number]> = [
    ['glibc', null, 3],
    ['jemalloc', findLibrary(ALLOCATOR_LIBRARIES.jemalloc), 3],
    ['tcmalloc', findLibrary(ALLOCATOR_LIBRARIES.tcmalloc), 3],
    ['mimalloc', findLibrary(ALLOCATOR_LIBRARIES.mimalloc), 3],
  ];
  for (const [name, preload, workers] of runs) {
    const available = name === 'glibc' || preload !== null;
    testIf(UBSAN_READY && available, UBSAN_READY ? `${name} is not installed` : UBSAN_MISSING)(`every native entry point under ${name}: no report`, async () => {
      const addon = await sanitized('undefined');
      const run = await runFixture('native-stress.js', ['100', String(workers), '20'], {
        preload,
        timeoutMs: RUN_LIMIT_MS,
        env: { ALLOCATOR_STATS_PREBUILD: prebuildDir(addon), UBSAN_OPTIONS: 'print_stacktrace=1:halt_on_error=1' },
      });
      expectClean(run, addon, name);
    }, BUILD_LIMIT_MS + RUN_LIMIT_MS);
  }
});

describe('AddressSanitizer build', () => {
  const env = (addon: string): Record<string, string> => ({
    ALLOCATOR_STATS_PREBUILD: prebuildDir(addon),
    // Node itself is not instrumented and keeps memory until exit: leaks are valgrind's job.
    ASAN_OPTIONS: 'detect_leaks=0:halt_on_error=1:abort_on_error=0',
  });

  testIf(ASAN_READY, ASAN_MISSING)('every native entry point, two workers and twenty teardowns: no report (allocator: ASan\'s own, reported as unknown)', async () => {
    const addon = await sanitized('address');
    const run = await runFixture('native-stress.js', ['60', '2', '20'], { preload: libasan, timeoutMs: RUN_LIMIT_MS, env: env(addon) });
    expectClean(run, addon, 'unknown');
  }, BUILD_LIMIT_MS + RUN_LIMIT_MS);

  const others = (['jemalloc', 'tcmalloc', 'mimalloc'] as const).map((n) => findLibrary(ALLOCATOR_LIBRARIES[n]));
  const othersReady = others.every((p) => p !== null);
  testIf(ASAN_READY && othersReady, ASAN_READY ? 'jemalloc, tcmalloc and mimalloc are needed' : ASAN_MISSING)('with jemalloc, tcmalloc and mimalloc loaded behind ASan: their "not serving" paths, no report', async () => {
    const addon = await sanitized('address');
    const preload = [libasan, ...others].join(':');
    const run = await runFixture('native-stress.js', ['30', '1', '5'], { preload, timeoutMs: RUN_LIMIT_MS, env: env(addon) });
    expectClean(run, addon, 'unknown');
  }, BUILD_LIMIT_MS + RUN_LIMIT_MS);
});
