// allocator-stats: help, version, the allocators here, and clear errors with a non-zero exit.
import fs from 'node:fs';
import path from 'node:path';
import { allocatorEntry, installHint } from '../../src/cli/allocators';
import type { InstalledAllocator } from '../../src/cli/cmd-allocators';
import { runCli } from './helpers';
import { ALLOCATOR_LIBRARIES, findLibrary, ROOT, testIf } from '../helpers';

describe('allocator-stats arguments', () => {
  test('--version prints the package version', async () => {
    const r = await runCli(['--version']);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe(JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version);
  });

  test.each(['run', 'compare', 'doctor', 'allocators'])('%s --help and -h', async (command) => {
    const short = await runCli([command, '-h']);
    const r = await runCli([command, '--help']);
    expect(short.stdout).toBe(r.stdout);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`Usage: allocator-stats ${command}`);
  });

  test('without --, the program starts at the first argument that is not an option, and keeps its own options', async () => {
    const r = await runCli(['run', '--quiet', '--interval', '100', 'echo', 'hi', '--port', '3000']);
    expect([r.code, r.stdout, r.stderr]).toEqual([0, 'hi --port 3000\n', '']);
  });

  test('no command: the overview and exit 2', async () => {
    const r = await runCli([]);
    expect(r.code).toBe(2);
    expect(r.stdout).toContain('Commands:');
  });

  test.each([
    [['frobnicate'], 2, /Unknown command "frobnicate"/],
    [['run'], 2, /Expected a command to run for allocator-stats run/],
    [['run', '--allocator', 'hoard', '--', 'true'], 2, /Expected one of glibc, jemalloc, tcmalloc, mimalloc or a path to a \.so for --allocator but received "hoard"/],
    [['run', '--allocator', '/nonexistent/libx.so', '--', 'true'], 2, /Expected an existing shared library for --allocator/],
    [['run', '--interval', '5', '--', 'true'], 2, /Expected an integer from 50 to 3600000 for --interval but received "5"/],
    [['run', '--interval', 'soon', '--', 'true'], 2, /for --interval but received "soon"/],
    [['run', '--env', 'NOEQUALS', '--', 'true'], 2, /Expected KEY=VALUE for --env but received "NOEQUALS"/],
    [['run', '--frob', '--', 'true'], 2, /Unknown option --frob for allocator-stats run/],
    [['run', '--', '/nonexistent/program'], 127, /cannot start "\/nonexistent\/program": command not found/],
    [['run', '--export-json', '/nonexistent/dir/r.json', '--', 'true'], 2, /Expected a file in an existing directory for --export-json but received "\/nonexistent\/dir\/r.json"/],
    // Checked before anything runs, by trying: root passes access() on /proc and on read-only files.
    [['compare', '--export-json', '/tmp', '--', 'true'], 2, /Expected a writable file for --export-json but received "\/tmp" \(a directory\)/],
    [['compare', '--export-markdown', '/proc/r.md', '--', 'true'], 2, /Expected a writable file for --export-markdown but received "\/proc\/r.md" \(ENOENT\)/],
    [['compare', '--export-html', '/sys/r.html', '--', 'true'], 2, /Expected a writable file for --export-html but received "\/sys\/r.html" \(EACCES\)/],
    [['run', '--export-json', '/etc/hostname/r.json', '--', 'true'], 2, /Expected a file in an existing directory for --export-json but received "\/etc\/hostname\/r.json"/],
    [['run', '--export-json', '/tmp/r.out', '--export-markdown', '/tmp/./r.out', '--', 'true'], 2, /Expected different files for --export-json and --export-markdown but received "\/tmp\/.\/r.out" for both/],
    [['compare', '--only', 'nosuch', '--', 'true'], 2, /Expected a candidate label for --only but received "nosuch"/],
    [['compare', '--candidate', 'no-allocator', '--', 'true'], 2, /Expected '<label>=<allocator>\[ KEY=VALUE…\]' for --candidate/],
    [['compare', '--candidate', 'glibc=glibc', '--', 'true'], 2, /Expected unique candidate labels but received "glibc" twice/],
    [['compare', '--runs', '0', '--', 'true'], 2, /Expected an integer from 1 to 100 for --runs but received "0"/],
    [['doctor'], 2, /Expected one URL or process id for allocator-stats doctor but received 0/],
    [['doctor', '1', '--token', 'abcdefghijklmnopq'], 2, /Expected --token only with a URL/],
    [['doctor', 'http://127.0.0.1:9/', '--duration', '5'], 2, /Expected --duration and --interval only with a process id/],
    [['doctor', '1', '--duration', '2', '--interval', '1000'], 2, /Expected at least 12 samples but --duration 2 s at --interval 1000 ms gives fewer/],
    [['doctor', '0'], 2, /Expected a process id for allocator-stats doctor but received "0"/],
    [['stats'], 2, /Expected one process id for allocator-stats stats but received 0/],
    [['stats', 'self'], 2, /Expected a process id for allocator-stats stats but received "self"/],
    [['trim', '1', '2'], 2, /Expected one process id for allocator-stats trim but received 2/],
    [['trim', '4194305'], 2, /Expected a process id for allocator-stats trim but received "4194305"/],
    [['trim', '4194304'], 1, /no process 4194304/],
    [['stats', '1'], 1, /process 1 has no agent listening \(or it is another user's\): start it with LD_PRELOAD=\S+ ALLOCATOR_STATS_AGENT=1/],
    [['agent-path', 'x'], 2, /Expected no arguments for allocator-stats agent-path/],
    [['doctor', 'not a url'], 2, /Expected an http\(s\) URL for allocator-stats doctor but received "not a url"/],
    [['allocators', 'extra'], 2, /Expected no arguments for allocator-stats allocators/],
  ] as Array<[string[], number, RegExp]>)('%j exits %i with a clear message', async (args, code, message) => {
    const r = await runCli(args);
    expect(r.stderr).toMatch(message);
    expect(r.stderr.startsWith('allocator-stats: ')).toBe(true);
    expect(r.stderr).not.toMatch(/\n\s+at /); // a message, not a stack
    expect(r.code).toBe(code);
  });

  test('a missing allocator names the package that installs it on Debian/Ubuntu and Alpine', () => {
    expect(installHint(allocatorEntry('jemalloc')!)).toBe('apt-get install libjemalloc2 (Debian/Ubuntu) or apk add jemalloc (Alpine)');
    expect(installHint(allocatorEntry('tcmalloc')!)).toBe('apt-get install libtcmalloc-minimal4 (Debian/Ubuntu) or apk add gperftools (Alpine)');
    expect(installHint(allocatorEntry('mimalloc')!)).toBe('apt-get install libmimalloc2.0 (Debian/Ubuntu) or apk add mimalloc2 (Alpine)');
  });

  const all = Object.values(ALLOCATOR_LIBRARIES).every((f) => findLibrary(f) !== null);
  testIf(all, 'needs libjemalloc2, libtcmalloc-minimal4 and libmimalloc2.0')('allocators: each installed one really serves malloc when preloaded, with its version', async () => {
    const r = await runCli(['allocators', '--json']);
    expect(r.code).toBe(0);
    const list = JSON.parse(r.stdout) as InstalledAllocator[];
    expect(list.map((a) => a.name)).toEqual(['glibc', 'jemalloc', 'tcmalloc', 'mimalloc']);
    for (const a of list) {
      expect([a.name, a.installed, a.serves, a.install]).toEqual([a.name, true, true, null]);
      expect(typeof a.version).toBe('string');
    }
    expect(list.find((a) => a.name === 'jemalloc')!.library).toBe(findLibrary(ALLOCATOR_LIBRARIES.jemalloc));
    const text = await runCli(['allocators']);
    expect(text.stdout).toMatch(/^allocator\s+status\s+version/);
  });
});
