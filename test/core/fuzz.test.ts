// Property-based fuzzing (fast-check) of every public function's arguments, in a child process
// under each real allocator: every input either works or gets an Error with a stable code, no
// call crashes the process, and none hangs. The seed is printed with any failure to replay it.
import { runFixture } from '../fixture';
import { allocatorCases, testIf } from '../helpers';

const RUNS_PER_FUNCTION = 3000;
const HANG_LIMIT_MS = 120_000;

interface FuzzReport {
  allocator: string;
  calls: number;
  succeeded: number;
  failures: Array<{ label: string; counterexample: string; error: string }>;
}

const allocators = allocatorCases();

describe.each(allocators)('fuzzed arguments under %s', (name, preload, available) => {
  testIf(available, `${name} is not installed`)('every call succeeds or fails with a coded error; no crash, no hang', async () => {
    const seed = Math.floor(Math.random() * 2 ** 31);
    const run = await runFixture('fuzz-api.js', [String(RUNS_PER_FUNCTION), String(seed)], { preload, timeoutMs: HANG_LIMIT_MS });
    expect({ seed, timedOut: run.timedOut, signal: run.signal, code: run.code }).toEqual({ seed, timedOut: false, signal: null, code: 0 });
    const line = run.stdout.split('\n').find((l) => l.startsWith('@@RESULT@@'));
    expect(line).toBeDefined();
    const report = JSON.parse(line!.slice('@@RESULT@@'.length)) as FuzzReport;
    expect({ seed, failures: report.failures }).toEqual({ seed, failures: [] });
    expect(report.allocator).toBe(name);
    expect(report.calls).toBeGreaterThanOrEqual(20 * RUNS_PER_FUNCTION);
    // Valid inputs are drawn too, so the success paths run under fuzzing as well.
    expect(report.succeeded).toBeGreaterThan(RUNS_PER_FUNCTION);
  }, HANG_LIMIT_MS + 10_000);
});
