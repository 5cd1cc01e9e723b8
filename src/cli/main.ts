#!/usr/bin/env node
// allocator-stats: run a program under an allocator and watch its memory, compare allocators on
// it, diagnose a running service, list the allocators installed here.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs, integerOption, type OptionSpec, type Parsed } from './args';
import { allocatorsCommand } from './cmd-allocators';
import { DOCTOR_MAX_BYTES, DOCTOR_TIMEOUT_MS, doctorCommand } from './cmd-doctor';
import { agentPathCommand, doctorPidCommand, pidOf, statsCommand, trimCommand } from './cmd-pid';
import { serveCommand } from './cmd-serve';
import { DEFAULT_MONITOR_INTERVAL_MS, MIN_MONITOR_INTERVAL_MS } from '../doctor/monitor';
import { ALLOCATORS, BUILT_IN_CANDIDATES, findLibrary, parseCandidate, parseEnvAssignment, resolveAllocator, type Candidate } from './allocators';
import { CliError, EXIT_USAGE } from './errors';
import { jsonReport } from './export-json';
import { htmlReport } from './export-html';
import { markdownReport, mib, textTable } from './export-markdown';
import { diagnoseRun } from './findings';
import type { RunRecord } from './model';
import { rank, RECOMMENDATION_RULE } from './rank';
import { agentPath } from '../agent/locate';
import { addon } from '../core/binding';
import { forwardSignals, samplerPath, startRun, type ActiveRun } from './runner';

/** Default sampling interval: at ~0.2 ms per sample, well inside 1 % of a core. */
export const DEFAULT_INTERVAL_MS = 1000;
/** Below this, sampling would cost the program a noticeable share of a core. */
export const MIN_INTERVAL_MS = 50;
const MAX_INTERVAL_MS = 3_600_000;
/** `doctor <pid>`: 30 one-second samples, enough for the doctor's minimum and a trend test. */
const DEFAULT_DOCTOR_SECONDS = 30;
const DEFAULT_DOCTOR_INTERVAL_MS = 1000;
const MAX_RUNS = 100;

const EXPORTS: Record<string, OptionSpec> = { 'export-json': { value: true }, 'export-markdown': { value: true }, 'export-html': { value: true } };
const COMMON: Record<string, OptionSpec> = { help: {}, interval: { value: true }, quiet: {}, 'no-agent': {}, ...EXPORTS };

const HELP: Record<string, string> = {
  main: `Usage: allocator-stats <command> [options]

Commands:
  run [options] -- <command> [args…]      run a program under an allocator and sample its memory
  compare [options] -- <command> [args…]  run it under several allocators and rank them
  doctor <url>                            diagnose a running service through its diagnostic endpoint
  doctor <pid>                            sample a running program through its agent and diagnose it
  stats <pid>                             the memory figures of a running program, through its agent
  trim <pid>                              give a running program's held-back memory back to the OS
  serve --pid <pid>                       serve the diagnostic endpoint of a running program, through its agent
  agent-path                              the agent library to preload into a program
  allocators                              the allocators installed here, and how to install the others

Options:
  --help       help on a command (allocator-stats <command> --help)
  --version    the version of allocator-stats`,
  run: `Usage: allocator-stats run [options] -- <command> [args…]

Starts <command> with the allocator preloaded, samples its memory every interval, passes its
stdin/stdout/stderr through untouched and signals on to all of it (its process group), then prints a summary and the doctor's
findings on stderr. Exits with the program's exit code (killed by a signal: the same signal).

Options:
  --allocator <name|path>   ${ALLOCATORS.map((a) => (a.name === 'glibc' ? 'glibc (default)' : a.name)).join(', ')}, or a path to a .so
  --env KEY=VALUE           set a variable for the program (repeatable), e.g. MALLOC_ARENA_MAX=2
  --label <label>           the run's name in reports (default: the allocator)
  --interval <ms>           time between samples (default ${DEFAULT_INTERVAL_MS}, at least ${MIN_INTERVAL_MS})
  --export-json <file>      write the samples, figures and findings as JSON
  --export-markdown <file>  write the summary table as Markdown
  --export-html <file>      write a self-contained HTML report with charts
  --no-agent                sample a program that is not Node from /proc only (no agent preloaded)
  --quiet                   no summary`,
  compare: `Usage: allocator-stats compare [options] -- <command> [args…]

Runs <command> under each candidate, interleaved, --runs times each, and ranks the candidates by
the RSS they keep. Built-in candidates (each where its library is installed):
  ${BUILT_IN_CANDIDATES.map((c) => `${c.label}${Object.keys(c.env).length ? ` (${Object.entries(c.env).map(([k, v]) => `${k}=${v}`).join(' ')})` : ''}`).join(', ')}
Inherited allocator variables (LD_PRELOAD, MALLOC_*, TCMALLOC_*, MIMALLOC_*, GLIBC_TUNABLES) are
dropped so every candidate starts from the same ground. Rule: ${RECOMMENDATION_RULE}.
Exits 0 when at least one candidate was ranked, 1 when none was.

Options:
  --only <label,label…>     use only these built-in candidates (added ones always run)
  --candidate '<label>=<allocator>[ KEY=VALUE…]'  add a candidate (repeatable); <allocator> is a
                            name or a path to a .so, e.g. 'je-decay0=jemalloc MALLOC_CONF=dirty_decay_ms:0'
  --runs <n>                runs per candidate (default 1)
  --interval <ms>           time between samples (default ${DEFAULT_INTERVAL_MS}, at least ${MIN_INTERVAL_MS})
  --export-json <file>      write every run's samples, figures and findings, and the recommendation
  --export-markdown <file>  write the ranking table as Markdown
  --export-html <file>      write a self-contained HTML report with charts on one scale
  --no-agent                sample programs that are not Node from /proc only (no agent preloaded)
  --quiet                   no table`,
  doctor: `Usage: allocator-stats doctor [options] <url>
       allocator-stats doctor [options] <pid>

With a URL: asks a running service's diagnostic endpoint (createDiagnosticHandler) for the
doctor's findings over the history it keeps, and prints them. <url> is the endpoint
(http://host:port/debug/memory) or its /doctor route.
With a process id: samples that program through its agent for --duration and prints the doctor's
findings on the window. The program must have been started with the agent listening:
  LD_PRELOAD=$(allocator-stats agent-path) ALLOCATOR_STATS_AGENT=1 <program>
Exits 0 with an answer, 1 when the endpoint or the agent could not be read.

Options:
  --json              print the answer as JSON
  --token <token>     send it as a bearer token (URL)
  --max-bytes <n>     refuse an answer longer than this (default ${DOCTOR_MAX_BYTES}, 4 MiB) (URL)
  --timeout <ms>      give up on an endpoint that has not answered in full (default ${DOCTOR_TIMEOUT_MS}) (URL)
  --duration <s>      how long to sample the process (default ${DEFAULT_DOCTOR_SECONDS}) (pid)
  --interval <ms>     time between samples (default ${DEFAULT_DOCTOR_INTERVAL_MS}) (pid)`,
  stats: `Usage: allocator-stats stats [--json] <pid>

One sample of a running program through its agent (started with
LD_PRELOAD=$(allocator-stats agent-path) ALLOCATOR_STATS_AGENT=1): the allocator serving it, RSS,
allocated, resident, held back and releasable bytes. Exits 1 when the agent cannot be reached.`,
  trim: `Usage: allocator-stats trim [--json] <pid>

Trims a running program's allocator through its agent (the agent's own thread runs the trim) and
prints what the OS got back (RSS before and after). Exits 1 when the agent cannot be reached.`,
  serve: `Usage: allocator-stats serve --pid <pid> [options]

Serves the diagnostic endpoint (the live page, JSON, Prometheus metrics, the doctor) of a running
program, read through its agent (started with
LD_PRELOAD=$(allocator-stats agent-path) ALLOCATOR_STATS_AGENT=1), and prints its URL. Runs until
SIGINT or SIGTERM, or until the program exits; exits 0 then, 1 when the agent cannot be reached.
There are no V8 figures: the program is not Node (or not one this package runs in).

Options:
  --pid <pid>        the program (required)
  --port <n>         TCP port (default 0: a free one, shown in the URL)
  --host <host>      interface to listen on (default 127.0.0.1)
  --allow-trim       enable POST …/trim (needs --token)
  --token <token>    bearer token for POST …/trim (at least 16 characters of [A-Za-z0-9-._~+/])
  --interval <ms>    time between the doctor's samples (default ${DEFAULT_MONITOR_INTERVAL_MS}, at least ${MIN_MONITOR_INTERVAL_MS})`,
  'agent-path': `Usage: allocator-stats agent-path

Prints the path of the agent library, to preload into a program this package should read from
inside: LD_PRELOAD=$(allocator-stats agent-path) ALLOCATOR_STATS_AGENT=1 <program>.
Preloaded without ALLOCATOR_STATS_AGENT it does nothing (no thread, no socket).`,
  allocators: `Usage: allocator-stats allocators [--json]

Lists the allocators this machine can preload (library path, version as the allocator reports
it) and how to install the missing ones.`,
};

function errorCode(error: unknown): string {
  return (error as NodeJS.ErrnoException).code ?? (error as Error).message;
}

/**
 * Why `file` cannot be written, or null. Tried for real (opened, and removed again when it did
 * not exist): root passes access() on read-only files and on directories such as /proc.
 */
function unwritable(file: string): string | null {
  let exists = true;
  try {
    if (fs.statSync(file).isDirectory()) return 'a directory';
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') return errorCode(error);
    exists = false;
  }
  try {
    fs.accessSync(exists ? file : path.dirname(file), fs.constants.W_OK);
    fs.closeSync(fs.openSync(file, exists ? 'r+' : 'wx'));
    if (!exists) fs.unlinkSync(file);
  } catch (error) {
    return errorCode(error);
  }
  return null;
}

/** Checked before the program runs, so that a typo or an unwritable path does not cost a whole compare. */
function checkExports(p: Parsed): void {
  const seen = new Map<string, string>();
  for (const name of Object.keys(EXPORTS)) {
    const file = p.options[name];
    if (file === undefined) continue;
    const full = typeof file === 'string' ? path.resolve(file) : '';
    const dir = path.dirname(full);
    if (typeof file !== 'string' || file === '' || !fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) {
      throw new CliError(`Expected a file in an existing directory for --${name} but received ${JSON.stringify(file)}`);
    }
    const other = seen.get(full);
    if (other) throw new CliError(`Expected different files for --${other} and --${name} but received ${JSON.stringify(file)} for both`);
    seen.set(full, name);
    const problem = unwritable(full);
    if (problem) throw new CliError(`Expected a writable file for --${name} but received ${JSON.stringify(file)} (${problem})`);
  }
}

function intervalOf(p: Parsed, fallback = DEFAULT_INTERVAL_MS): number {
  return integerOption(p.options.interval, 'interval', fallback, MIN_INTERVAL_MS, MAX_INTERVAL_MS);
}

function commandOf(p: Parsed, name: string): string[] {
  const command = p.rest;
  if (!command || command.length === 0) throw new CliError(`Expected a command to run for allocator-stats ${name} but received nothing (allocator-stats ${name} [options] -- <command> [args…])`);
  return command;
}

function addFindings(run: RunRecord): void {
  try {
    const d = diagnoseRun(run);
    run.findings = d.findings;
    run.parts = d.parts;
    run.findingsNote = d.notes.length ? d.notes.join('; ') : null;
  } catch (error) {
    run.findingsNote = `the doctor could not judge this run: ${(error as Error).message}`;
  }
}

/**
 * Writes every export it can, each on its own: one that fails (a full disk, a path replaced
 * while the program ran) loses neither the others nor the summary. Returns one line per failure.
 */
function exportAll(p: Parsed, command: string[], runs: RunRecord[], title: 'run' | 'compare'): string[] {
  // One run is not a comparison: `run` recommends nothing, in any export.
  const ranked = rank(runs);
  const ranking = title === 'compare' ? ranked : { ...ranked, recommendation: null };
  const exports: Record<string, () => string> = {
    'export-json': () => `${JSON.stringify(jsonReport(command, runs, title === 'compare' ? ranking : null), null, 2)}\n`,
    'export-markdown': () => markdownReport(command, runs, ranking),
    'export-html': () => htmlReport(command, runs, ranking, title),
  };
  const failed: string[] = [];
  for (const [name, text] of Object.entries(exports)) {
    const file = p.options[name];
    if (typeof file !== 'string') continue;
    try {
      fs.writeFileSync(path.resolve(file), text());
    } catch (error) {
      failed.push(`cannot write ${file} (--${name}): ${errorCode(error)}`);
    }
  }
  return failed;
}

/** After the summary: one line per export that could not be written, and exit 1. */
function reportFailedExports(failed: string[]): boolean {
  for (const line of failed) process.stderr.write(`allocator-stats: ${line}\n`);
  if (failed.length) process.exitCode = 1;
  return failed.length > 0;
}

function describeRun(run: RunRecord): string {
  const lines: string[] = [];
  const check = run.check.served === true ? 'verified' : run.check.served === false ? `NOT serving: ${run.check.detected} did` : 'not verified';
  lines.push(
    `allocator-stats: ${run.label} (${run.allocator.name}${run.allocator.version ? ` ${run.allocator.version}` : ''}, ${check} by ${run.check.how}), ` +
      `${run.exitCode !== null ? `exit ${run.exitCode}` : `killed by ${run.signal}`}, ${(run.wallMs / 1000).toFixed(2)} s, ${run.samples.length} samples from ${run.source === 'node' ? 'inside (Node)' : run.source === 'agent' ? 'inside (agent)' : '/proc'}`,
  );
  if (run.measured) lines.push(`  measured: pid ${run.measured.pid} (${run.measured.argv.join(' ')}), started by ${run.command[0]}`);
  if (run.samplerFailure) lines.push(`  the sampler could not load in pid ${run.samplerFailure.pid} (${run.samplerFailure.error}): sampled from /proc instead`);
  lines.push(`  RSS peak ${mib(run.rss.peak)}, steady ${mib(run.rss.steady)}, final ${mib(run.rss.final)}; held back at the end ${mib(run.heldBackFinal)}`);
  if (run.samplerCost) lines.push(`  sampling cost ${run.samplerCost.meanMs.toFixed(2)} ms per sample (max ${run.samplerCost.maxMs.toFixed(2)} ms)`);
  for (const note of run.check.served === true ? [] : run.check.notes) lines.push(`  note: ${note}`);
  if (run.unavailable.length) lines.push(`  not available${run.source === 'agent' ? '' : ' from outside'}: ${run.unavailable.join('; ')}`);
  for (const f of run.findings) lines.push(`  [${f.severity}] ${f.id}: ${f.title}. ${f.summary}`);
  if (run.findings.length === 0) lines.push(`  no findings${run.findingsNote ? ` (${run.findingsNote})` : ''}`);
  return lines.join('\n');
}

// Node ignores SIGPIPE and SIGXFSZ and starts its inspector on SIGUSR1, and a process cannot
// undo that: it cannot die of these.
const CANNOT_DIE_OF: ReadonlySet<NodeJS.Signals> = new Set(['SIGPIPE', 'SIGXFSZ', 'SIGUSR1']);

// Signals whose default action dumps core: raised on this process, they would leave a core of
// Node (tens of MiB of allocator-stats, not of the program) wherever core_pattern says.
const DUMPS_CORE: ReadonlySet<NodeJS.Signals> = new Set(['SIGQUIT', 'SIGILL', 'SIGTRAP', 'SIGABRT', 'SIGBUS', 'SIGFPE', 'SIGSEGV', 'SIGXCPU', 'SIGXFSZ', 'SIGSYS']);

/** RLIMIT_CORE to 0, as timeout(1) sets it before raising its program's signal; false when it cannot be set (no addon). */
function disableCoreDumps(): boolean {
  try {
    return addon().disableCoreDumps();
  } catch {
    return false;
  }
}

/**
 * Ends this process as the program ended: the same code, or the same signal; for a signal it
 * cannot die of (or one that did not kill it), 128 + the signal's number, as a shell reports it.
 * So does a signal that dumps core when core dumps cannot be turned off first.
 */
function exitLike(code: number | null, signal: NodeJS.Signals | null): void {
  if (signal) {
    process.removeAllListeners(signal);
    if (!CANNOT_DIE_OF.has(signal) && (!DUMPS_CORE.has(signal) || disableCoreDumps())) process.kill(process.pid, signal);
    // Still here: a signal to oneself with its default action is delivered before kill() returns.
    process.exitCode = 128 + (os.constants.signals[signal] ?? 0);
    return;
  }
  process.exitCode = code ?? 1;
}

async function runCommand(argv: string[]): Promise<void> {
  const p = parseArgs(argv, { ...COMMON, allocator: { value: true }, env: { value: true, repeatable: true }, label: { value: true } }, 'run', true);
  if (p.options.help) return void process.stdout.write(`${HELP.run}\n`);
  const command = commandOf(p, 'run');
  checkExports(p);
  const allocator = typeof p.options.allocator === 'string' ? p.options.allocator : 'glibc';
  const env: Record<string, string> = {};
  for (const e of (p.options.env as string[] | undefined) ?? []) {
    const [k, v] = parseEnvAssignment(e, '--env');
    env[k] = v;
  }
  resolveAllocator(allocator, '--allocator');
  const label = typeof p.options.label === 'string' ? p.options.label : allocator.includes('/') ? path.basename(allocator) : allocator;
  const interval = intervalOf(p);
  const quiet = Boolean(p.options.quiet);
  let active: ActiveRun | null = null;
  const unforward = forwardSignals(() => active);
  let run: RunRecord;
  try {
    active = startRun({ command, candidate: { label, allocator, env }, intervalMs: interval, cleanEnv: false, samplerPath: samplerPath(), agentPath: agentOf(p) });
    run = await active.result;
  } finally {
    unforward();
  }
  addFindings(run);
  const failed = exportAll(p, command, [run], 'run');
  if (!quiet) process.stderr.write(`${describeRun(run)}\n`);
  if (reportFailedExports(failed)) return;
  exitLike(run.exitCode, run.signal);
}

/** The agent to preload into programs that are not Node; none with --no-agent or when this install has none. */
function agentOf(p: Parsed): string | null {
  return p.options['no-agent'] ? null : agentPath();
}

function candidatesOf(p: Parsed): Candidate[] {
  const extra = ((p.options.candidate as string[] | undefined) ?? []).map(parseCandidate);
  for (const c of extra) resolveAllocator(c.allocator, '--candidate');
  const builtIn = BUILT_IN_CANDIDATES.filter((c) => {
    const entry = ALLOCATORS.find((a) => a.name === c.allocator)!;
    return entry.files.length === 0 || findLibrary(entry) !== null;
  });
  const all = [...builtIn, ...extra];
  const labels = all.map((c) => c.label);
  const dup = labels.find((l, i) => labels.indexOf(l) !== i);
  if (dup) throw new CliError(`Expected unique candidate labels but received ${JSON.stringify(dup)} twice`);
  if (typeof p.options.only !== 'string') return all;
  const only = p.options.only.split(',').map((s) => s.trim()).filter(Boolean);
  if (only.length === 0) throw new CliError('Expected a comma-separated list of labels for --only but received nothing');
  const picked = only.map((label) => {
    const c = all.find((x) => x.label === label);
    if (c) return c;
    const known = BUILT_IN_CANDIDATES.find((x) => x.label === label);
    if (known) resolveAllocator(known.allocator, '--only'); // says which package installs it
    throw new CliError(`Expected a candidate label for --only but received ${JSON.stringify(label)}; known here: ${labels.join(', ')}`);
  });
  // The user's own candidates always run: --only picks among the built-in ones.
  return [...picked, ...extra.filter((c) => !picked.includes(c))];
}

async function compareCommand(argv: string[]): Promise<void> {
  const p = parseArgs(argv, { ...COMMON, only: { value: true }, candidate: { value: true, repeatable: true }, runs: { value: true } }, 'compare', true);
  if (p.options.help) return void process.stdout.write(`${HELP.compare}\n`);
  const command = commandOf(p, 'compare');
  checkExports(p);
  const candidates = candidatesOf(p);
  const runsEach = integerOption(p.options.runs, 'runs', 1, 1, MAX_RUNS);
  const interval = intervalOf(p);
  const quiet = Boolean(p.options.quiet);
  let active: ActiveRun | null = null;
  let stopped: NodeJS.Signals | null = null;
  const unforward = forwardSignals(() => active, (signal) => {
    if (signal === 'SIGINT' || signal === 'SIGTERM' || signal === 'SIGHUP') stopped = signal;
  });
  const runs: RunRecord[] = [];
  try {
    // Interleaved: round r runs every candidate once, in an order rotated by r, so slow drifts of
    // the machine (other load, thermal) spread over all candidates instead of hitting one.
    for (let r = 0; r < runsEach && !stopped; r++) {
      for (let k = 0; k < candidates.length && !stopped; k++) {
        const candidate = candidates[(k + r) % candidates.length];
        active = startRun({ command, candidate, intervalMs: interval, cleanEnv: true, samplerPath: samplerPath(), agentPath: agentOf(p) });
        const run = await active.result;
        active = null;
        addFindings(run);
        runs.push(run);
      }
    }
  } finally {
    unforward();
  }
  if (stopped) return exitLike(null, stopped);
  const ranking = rank(runs);
  const failed = exportAll(p, command, runs, 'compare');
  if (!quiet) {
    const out = [`allocator-stats compare: ${command.join(' ')} (${runsEach} run${runsEach > 1 ? 's' : ''} each)`, '', textTable(ranking), ''];
    out.push(ranking.recommendation ? `Recommendation: ${ranking.recommendation.label} — ${ranking.recommendation.reason}.` : 'No recommendation: no candidate could be ranked.');
    const findings = runs.flatMap((r) => r.findings.map((f) => `  ${r.label}: [${f.severity}] ${f.id}: ${f.title}`));
    if (findings.length) out.push('', 'Findings:', ...[...new Set(findings)]);
    process.stderr.write(`${out.join('\n')}\n`);
  }
  process.exitCode = ranking.recommendation ? 0 : 1;
  reportFailedExports(failed);
}

function version(): string {
  const pkg = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8')) as { version: string };
  return pkg.version;
}

export async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'run':
      return runCommand(rest);
    case 'compare':
      return compareCommand(rest);
    case 'doctor': {
      const p = parseArgs(
        rest,
        { help: {}, json: {}, token: { value: true }, 'max-bytes': { value: true }, timeout: { value: true }, duration: { value: true }, interval: { value: true } },
        'doctor',
      );
      if (p.options.help) return void process.stdout.write(`${HELP.doctor}\n`);
      if (p.positionals.length !== 1) throw new CliError(`Expected one URL or process id for allocator-stats doctor but received ${p.positionals.length}`);
      if (/^\d+$/.test(p.positionals[0])) {
        for (const name of ['token', 'max-bytes', 'timeout']) {
          if (p.options[name] !== undefined) throw new CliError(`Expected --${name} only with a URL: a process id is reached through its agent`);
        }
        const r = await doctorPidCommand(pidOf(p.positionals[0], 'doctor'), {
          durationMs: 1000 * integerOption(p.options.duration, 'duration', DEFAULT_DOCTOR_SECONDS, 1, 86_400),
          intervalMs: intervalOf(p, DEFAULT_DOCTOR_INTERVAL_MS),
          json: Boolean(p.options.json),
          progress: (line) => process.stderr.write(`${line}\n`),
        });
        process.stdout.write(r.text);
        return;
      }
      if (p.options.duration !== undefined || p.options.interval !== undefined) throw new CliError('Expected --duration and --interval only with a process id: an endpoint keeps its own history');
      process.exitCode = await doctorCommand(p.positionals[0], {
        json: Boolean(p.options.json),
        token: typeof p.options.token === 'string' ? p.options.token : null,
        maxBytes: integerOption(p.options['max-bytes'], 'max-bytes', DOCTOR_MAX_BYTES, 1, 1024 * 1024 * 1024),
        timeoutMs: integerOption(p.options.timeout, 'timeout', DOCTOR_TIMEOUT_MS, 1, 3_600_000),
      });
      return;
    }
    case 'stats':
    case 'trim': {
      const p = parseArgs(rest, { help: {}, json: {} }, command);
      if (p.options.help) return void process.stdout.write(`${HELP[command]}\n`);
      if (p.positionals.length !== 1) throw new CliError(`Expected one process id for allocator-stats ${command} but received ${p.positionals.length}`);
      const pid = pidOf(p.positionals[0], command);
      process.stdout.write(await (command === 'stats' ? statsCommand : trimCommand)(pid, Boolean(p.options.json)));
      return;
    }
    case 'serve': {
      const p = parseArgs(rest, { help: {}, pid: { value: true }, port: { value: true }, host: { value: true }, token: { value: true }, 'allow-trim': {}, interval: { value: true } }, 'serve');
      if (p.options.help) return void process.stdout.write(`${HELP.serve}\n`);
      if (p.positionals.length) throw new CliError(`Expected no arguments for allocator-stats serve but received ${JSON.stringify(p.positionals[0])} (the process goes in --pid)`);
      if (typeof p.options.pid !== 'string') throw new CliError('Expected --pid <pid> for allocator-stats serve but received nothing');
      const host = p.options.host;
      if (host !== undefined && (typeof host !== 'string' || host === '')) throw new CliError('Expected a host name or address for --host but received nothing');
      await serveCommand({
        pid: pidOf(p.options.pid, 'serve'),
        port: integerOption(p.options.port, 'port', 0, 0, 65535),
        host: typeof host === 'string' ? host : undefined,
        token: typeof p.options.token === 'string' ? p.options.token : null,
        allowTrim: Boolean(p.options['allow-trim']),
        intervalMs: integerOption(p.options.interval, 'interval', DEFAULT_MONITOR_INTERVAL_MS, MIN_MONITOR_INTERVAL_MS, MAX_INTERVAL_MS),
        out: (line) => process.stdout.write(`${line}\n`),
        err: (line) => process.stderr.write(`${line}\n`),
      });
      return;
    }
    case 'agent-path': {
      const p = parseArgs(rest, { help: {} }, 'agent-path');
      if (p.options.help) return void process.stdout.write(`${HELP['agent-path']}\n`);
      if (p.positionals.length) throw new CliError(`Expected no arguments for allocator-stats agent-path but received ${JSON.stringify(p.positionals[0])}`);
      process.stdout.write(agentPathCommand());
      return;
    }
    case 'allocators': {
      const p = parseArgs(rest, { help: {}, json: {} }, 'allocators');
      if (p.options.help) return void process.stdout.write(`${HELP.allocators}\n`);
      if (p.positionals.length) throw new CliError(`Expected no arguments for allocator-stats allocators but received ${JSON.stringify(p.positionals[0])}`);
      process.stdout.write(allocatorsCommand(Boolean(p.options.json)));
      return;
    }
    case '--version':
    case '-v':
      return void process.stdout.write(`${version()}\n`);
    case undefined:
    case '--help':
    case '-h':
    case 'help':
      if (command === 'help' && rest[0] && HELP[rest[0]]) return void process.stdout.write(`${HELP[rest[0]]}\n`);
      process.stdout.write(`${HELP.main}\n`);
      if (command === undefined) process.exitCode = EXIT_USAGE;
      return;
    default:
      throw new CliError(`Unknown command ${JSON.stringify(command)}; commands: run, compare, doctor, stats, trim, serve, agent-path, allocators (allocator-stats --help)`);
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).catch((error: unknown) => {
    if (error instanceof CliError) {
      process.stderr.write(`allocator-stats: ${error.message}\n`);
      process.exitCode = error.exitCode;
    } else {
      process.stderr.write(`allocator-stats: ${(error as Error)?.stack ?? String(error)}\n`);
      process.exitCode = 1;
    }
  });
}
