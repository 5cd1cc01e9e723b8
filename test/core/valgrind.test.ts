// valgrind memcheck over test/core/fixtures/native-stress.js (every native entry point, sync and
// async, one worker, two teardowns): no definite leak and no memory error in a record that
// names the addon. Node's own records (no addon frame) are not the addon's to fix and are not
// counted; that the report can name addon frames at all is checked on the same log, so a
// report that lost the addon's symbols cannot pass for a clean one.
//
// memcheck replaces malloc with its own allocator: detection says 'unknown' there, and the
// glibc-path code (region scan, mallinfo2, malloc_trim) runs without glibc serving malloc.
// V8 runs --jitless: generated code slows memcheck down and adds nothing of the addon's.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { lastJson, runFixture } from '../fixture';
import { commandExists, ROOT, testIf } from '../helpers';

const RUN_LIMIT_MS = 300_000;
const ADDON = 'allocator_stats.node';
// Record headers that are a defect when an addon frame is in the stack below them.
const DEFECT = /definitely lost in loss record|Invalid (read|write|free)|uninitialised|Conditional jump|Mismatched free|Syscall param|Source and destination overlap/;

testIf(commandExists('valgrind'), 'valgrind not installed (apt-get install valgrind)')(
  'memcheck: no definite leak and no memory error from the addon',
  async () => {
    const log = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'allocator-stats-valgrind-')), 'memcheck.log');
    const run = await runFixture('native-stress.js', ['20', '1', '2'], {
      prefix: [
        'valgrind',
        '--tool=memcheck',
        '--leak-check=full',
        '--show-leak-kinds=all',
        '--num-callers=40',
        '--smc-check=all-non-file',
        `--log-file=${log}`,
      ],
      execArgv: ['--jitless'],
      timeoutMs: RUN_LIMIT_MS,
    });
    expect({ timedOut: run.timedOut, signal: run.signal, code: run.code }).toEqual({ timedOut: false, signal: null, code: 0 });
    expect(lastJson(run)).toEqual({ allocator: 'unknown', addon: path.join(ROOT, 'build', 'Release', ADDON) });

    // One record per paragraph of the log.
    const records = fs
      .readFileSync(log, 'utf8')
      .split(/\n==\d+== \n/)
      .map((r) => r.replace(/^==\d+== /gm, ''));
    expect(records.some((r) => /LEAK SUMMARY/.test(r))).toBe(true);
    // The report can name the addon (its still-reachable caches, at least).
    expect(records.some((r) => r.includes(ADDON))).toBe(true);
    const defects = records.filter((r) => DEFECT.test(r.split('\n')[0]) && r.includes(ADDON));
    expect(defects).toEqual([]);
  },
  RUN_LIMIT_MS + 10_000,
);
