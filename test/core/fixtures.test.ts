// The child scenarios in test/fixtures/ are plain JavaScript run by `node`: type-check them,
// so that a wrong call in a scenario fails here rather than as a puzzling child error.
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { ROOT } from '../helpers';

test('the fixture scenarios type-check', () => {
  const tsc = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
  let output = '';
  try {
    execFileSync(process.execPath, [tsc, '-p', path.join(ROOT, 'test', 'fixtures', 'tsconfig.json')], { encoding: 'utf8' });
  } catch (error) {
    output = String((error as { stdout?: string }).stdout ?? error);
  }
  expect(output).toBe('');
});
