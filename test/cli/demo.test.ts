// npm run demo: wrong options get the usage line and a non-zero exit, never a stack trace.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { ROOT } from '../helpers';

const demo = (...args: string[]) =>
  spawnSync(process.execPath, [path.join(ROOT, 'scripts', 'demo.js'), ...args], { cwd: ROOT, encoding: 'utf8', timeout: 60000 });

describe('demo options', () => {
  test.each([
    [['--worker', '2'], /Unknown option '--worker'/],
    [['--workers', '0'], /--workers must be a whole number from 1 to 64, not 0/],
    [['--mib'], /'--mib <value>' argument missing/],
    [['extra'], /Unexpected argument 'extra'/],
  ])('%j: what is wrong, the usage line, exit 2', (args, problem) => {
    const r = demo(...args);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(problem);
    expect(r.stderr).toMatch(/^usage: npm run demo -- \[--workers 1\.\.64\] \[--mib 1\.\.4096\]$/m);
    expect(r.stderr).not.toMatch(/^\s+at /m);
    expect(r.stdout).toBe('');
  });
});
