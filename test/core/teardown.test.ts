// Teardown under load: workers terminated while they load the addon or while their work is on
// the threadpool, and process.exit() with work in flight, under every real allocator. Neither
// may abort the process (std::terminate from an unthrowable Napi::Error) nor hang it.
import { lastJson, runFixture, type FixtureRun } from '../fixture';
import { allocatorCases, testIf } from '../helpers';

// A hang is failed by these limits; they are sized for a loaded 2-core machine.
const TERMINATE_LIMIT_MS = 150_000;
const EXIT_LIMIT_MS = 15_000;

function expectClean(run: FixtureRun): void {
  expect({ timedOut: run.timedOut, signal: run.signal, code: run.code }).toEqual({ timedOut: false, signal: null, code: 0 });
  expect(run.stderr).not.toMatch(/terminate called|FATAL ERROR|Aborted|Segmentation/);
}

describe('worker terminate()', () => {
  test.each([
    ['while it loads the addon', 'load', 200],
    ['while it calls every entry point', 'async', 150],
  ])('%s, %s: %i times, neither aborts nor hangs', async (_what, mode, count) => {
    const run = await runFixture('terminate-workers.js', [mode, String(count)], { timeoutMs: TERMINATE_LIMIT_MS });
    expectClean(run);
    expect(lastJson(run)).toEqual({ finished: count, allocator: 'glibc' });
  }, TERMINATE_LIMIT_MS + 10_000);
});

const allocators = allocatorCases();

describe.each(allocators)('process.exit() with async work in flight under %s', (name, preload, available) => {
  testIf(available, `${name} is not installed`)('exits promptly with code 0, work on the main thread and in two workers', async () => {
    // Exit right away, while the first calls run, and after some rounds.
    for (const where of ['main', 'workers']) {
      for (const delay of ['0', '20']) {
        const run = await runFixture('exit-during-async.js', [delay, where], { preload, timeoutMs: EXIT_LIMIT_MS });
        expect([where, delay, run.stdout.includes('exiting')]).toEqual([where, delay, true]);
        expectClean(run);
      }
    }
  }, 4 * EXIT_LIMIT_MS + 10_000);
});

// Exit must be prompt whatever is queued: four workers that only trim, exit right away and
// after their trims are under way.
const EXIT_WHILE_TRIMMING = ['glibc', 'jemalloc', 'tcmalloc', 'mimalloc'];
const PROMPT_EXIT_LIMIT_MS = 10_000;

describe.each(allocators.filter(([name]) => EXIT_WHILE_TRIMMING.includes(name)))('process.exit() while four workers trim under %s', (name, preload, available) => {
  testIf(available, `${name} is not installed`)('exits promptly with code 0', async () => {
    for (const delay of ['0', '100']) {
      const run = await runFixture('exit-during-async.js', [delay, 'trimming'], { preload, timeoutMs: PROMPT_EXIT_LIMIT_MS });
      expect([delay, run.stdout.includes('exiting')]).toEqual([delay, true]);
      expectClean(run);
    }
  }, 2 * PROMPT_EXIT_LIMIT_MS + 10_000);
});
