#!/usr/bin/env node
'use strict';
// node scripts/bench-agent.js [--samples 200] [--rounds 3]
// What the agent costs a program that is not Node (the C++ engine of test/agent/fixtures, built
// here with g++), measured in that program:
// 1. CPU per sample: the CPU time of the agent's own thread (/proc/<pid>/task/<tid>/schedstat,
//    nanoseconds) over --samples samples taken back to back by `allocator-stats` (releasable
//    included), while the engine idles with its retained heap; as a share of one core at a 1 s
//    interval (target <= 0.5 %). The baseline is the engine's whole CPU per second of its load
//    phase without the agent: the ratio says how much of the program's own work a sample is.
// 2. Memory: the RSS of a small C program that holds 16 MiB (test/cli/fixtures/cli-alloc.c: its
//    RSS does not move between runs, the engine's does by a few MiB) with the agent listening
//    and after --samples samples, against the same program without the agent, median of
//    --rounds each (target <= 1 MiB).
// 3. Stall: a sample walks glibc's arenas under their locks on the agent's thread, so a program
//    thread that mallocs waits. test/agent/fixtures/ticker.c allocates on a 1 ms tick over a
//    main-arena heap of 1M free chunks; its longest tick gap over --stall-seconds while the
//    agent is sampled every second, against the same program making the bare glibc calls of a
//    sample (mallinfo2, malloc_info) on a thread of its own every second: the floor (target
//    <= 1.25x), and against nothing at all.
const { execFileSync, spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { parseArgs } = require('node:util');
const { median } = require('./bench-util');

const ROOT = path.join(__dirname, '..');
const { agentPath, agentSocketOf } = require(path.join(ROOT, 'lib', 'agent', 'locate.js'));
const { AgentTarget } = require(path.join(ROOT, 'lib', 'agent', 'target.js'));

const TARGET = { cpuShare: 0.005, memoryBytes: 1024 * 1024 };
const { values } = parseArgs({
  options: { samples: { type: 'string', default: '200' }, rounds: { type: 'string', default: '3' }, 'stall-seconds': { type: 'string', default: '8' } },
});
const SAMPLES = Number(values.samples);
const ROUNDS = Number(values.rounds);
const STALL_SECONDS = Number(values['stall-seconds']);
const STALL_TARGET = 1.25;

const agent = agentPath();
let hasGxx = true;
try {
  execFileSync('g++', ['--version'], { stdio: 'ignore' });
} catch {
  hasGxx = false;
}
if (!agent || !hasGxx) {
  console.log(`skipped: needs ${agent ? '' : 'the agent (npm run build:native) '}${hasGxx ? '' : 'g++'}`);
  process.exit(0);
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'allocator-stats-bench-agent-'));
const engine = path.join(dir, 'engine');
execFileSync('g++', ['-O1', '-pthread', '-o', engine, path.join(ROOT, 'test', 'agent', 'fixtures', 'engine.cc')]);
const ticker = path.join(dir, 'ticker');
execFileSync('gcc', ['-O1', '-pthread', '-o', ticker, path.join(ROOT, 'test', 'agent', 'fixtures', 'ticker.c')]);
const small = path.join(dir, 'cli-alloc');
execFileSync('gcc', ['-O1', '-o', small, path.join(ROOT, 'test', 'cli', 'fixtures', 'cli-alloc.c')]);

const statusBytes = (pid, key) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) * 1024;
// The process's CPU, threads that have exited included: utime + stime of /proc/<pid>/stat, in
// clock ticks (100 per second on Linux).
const cpuNs = (pid) => {
  const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 1e7;
};
const agentThread = (pid) => fs.readdirSync(`/proc/${pid}/task`).find((tid) => fs.readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim() === 'allocstat-agent');
const threadNs = (pid, tid) => Number(fs.readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);

function agentEnv(withAgent) {
  const env = { ...process.env };
  if (withAgent) Object.assign(env, { LD_PRELOAD: agent, ALLOCATOR_STATS_AGENT: '1', ALLOCATOR_STATS_AGENT_DIR: dir });
  return env;
}

/** The small program's RSS while it holds its 16 MiB, after `samples` samples through its agent (if any). */
async function smallRss(withAgent) {
  const child = spawn(small, ['16', '60000', '0'], { stdio: ['ignore', 'pipe', 'ignore'], env: agentEnv(withAgent) });
  await new Promise((resolve) => child.stdout.once('data', resolve));
  await settle();
  if (withAgent) {
    const target = await AgentTarget.open(agentSocketOf(child.pid));
    for (let i = 0; i < SAMPLES; i++) await target.stats();
    target.close();
    await settle();
  }
  const rss = { total: statusBytes(child.pid, 'VmRSS'), anon: statusBytes(child.pid, 'RssAnon') };
  child.kill('SIGKILL');
  return rss;
}

/** The ticker's longest gap in `mode` (none, bare, agent: sampled through the agent every second). */
function stallOf(mode) {
  const child = spawn(ticker, [String(STALL_SECONDS), mode], { stdio: ['ignore', 'pipe', 'pipe'], env: agentEnv(mode === 'agent') });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  return new Promise((resolve, reject) => {
    let timer = null;
    let target = null;
    child.stderr.on('data', async (d) => {
      if (mode !== 'agent' || target || !String(d).includes('ticker: ready')) return;
      target = await AgentTarget.open(agentSocketOf(child.pid));
      await target.stats();
      timer = setInterval(() => target.stats().catch(() => {}), 1000);
    });
    child.on('exit', (code) => {
      if (timer) clearInterval(timer);
      if (target) target.close();
      if (code !== 0) return reject(new Error(`ticker exited ${code}`));
      resolve(JSON.parse(out.trim()));
    });
  });
}

/** Starts the engine (with the agent when `withAgent`); resolves at its idle phase with its CPU during the load. */
function start(withAgent) {
  const child = spawn(engine, ['--idle=60'], { stdio: ['ignore', 'ignore', 'pipe'], env: agentEnv(withAgent) });
  const t0 = process.hrtime.bigint();
  return new Promise((resolve, reject) => {
    let err = '';
    child.stderr.on('data', (d) => {
      err += d;
      if (err.includes('engine: idle')) {
        const wallNs = Number(process.hrtime.bigint() - t0);
        resolve({ child, pid: child.pid, loadShare: cpuNs(child.pid) / wallNs });
      }
    });
    child.on('exit', (code) => reject(new Error(`the engine exited (${code}): ${err}`)));
  });
}

const settle = () => new Promise((r) => setTimeout(r, 300));

(async () => {
  const cpu = [];
  const load = [];
  const rssWith = [];
  const rssWithout = [];
  for (let round = 0; round < ROUNDS; round++) {
    rssWithout.push(await smallRss(false));
    rssWith.push(await smallRss(true));
    const plain = await start(false);
    load.push(plain.loadShare);
    plain.child.kill('SIGKILL');

    const p = await start(true);
    await settle();
    const target = await AgentTarget.open(agentSocketOf(p.pid));
    for (let i = 0; i < 5; i++) await target.stats(); // warm up: the agent's first sample builds its session
    const tid = agentThread(p.pid);
    const before = threadNs(p.pid, tid);
    for (let i = 0; i < SAMPLES; i++) await target.stats();
    cpu.push((threadNs(p.pid, tid) - before) / SAMPLES);
    target.close();
    p.child.kill('SIGKILL');
  }
  const stall = { none: [], bare: [], agent: [] };
  for (let round = 0; round < ROUNDS; round++) {
    for (const mode of Object.keys(stall)) stall[mode].push((await stallOf(mode)).longestGapMs);
  }
  fs.rmSync(dir, { recursive: true, force: true });

  const perSampleNs = median(cpu);
  const share = perSampleNs / 1e9; // one sample per second
  const loadShare = median(load);
  const extra = median(rssWith.map((r) => r.total)) - median(rssWithout.map((r) => r.total));
  const extraAnon = median(rssWith.map((r) => r.anon)) - median(rssWithout.map((r) => r.anon));
  const stallRatio = median(stall.agent) / median(stall.bare);
  const ok = share <= TARGET.cpuShare && extra <= TARGET.memoryBytes && stallRatio <= STALL_TARGET;
  console.log(`| agent, C++ engine holding ~120 MiB under glibc | median of ${ROUNDS} | target |`);
  console.log('|---|---:|---:|');
  console.log(`| CPU per sample (the agent's thread, ${SAMPLES} samples, releasable included) | ${(perSampleNs / 1e6).toFixed(3)} ms | |`);
  console.log(`| share of a core at a 1 s interval | ${(share * 100).toFixed(3)} % | <= ${TARGET.cpuShare * 100} % |`);
  console.log(`| ratio to the engine's own CPU under load (${(loadShare * 100).toFixed(0)} % of a core, baseline) | ${(share / loadShare).toFixed(4)}x | |`);
  console.log(`| RSS of a C program holding 16 MiB, agent listening after ${SAMPLES} samples, minus without (${(median(rssWithout.map((r) => r.total)) / 1048576).toFixed(1)} MiB, baseline) | ${(extra / 1024).toFixed(0)} KiB | <= ${TARGET.memoryBytes / 1024} KiB |`);
  console.log(`| of which anonymous (the agent's own heap and stack; the rest is its code, shared by every process that maps it) | ${(extraAnon / 1024).toFixed(0)} KiB | |`);
  console.log(`\n| longest gap of a 1 ms ticker that mallocs, ${STALL_SECONDS} s, heap of 1M free chunks | median of ${ROUNDS} | vs bare |`);
  console.log('|---|---:|---:|');
  console.log(`| nothing sampling | ${median(stall.none).toFixed(2)} ms | |`);
  console.log(`| bare mallinfo2 + malloc_info every 1 s in the program (floor) | ${median(stall.bare).toFixed(2)} ms | 1.00x |`);
  console.log(`| the agent sampled every 1 s | ${median(stall.agent).toFixed(2)} ms | ${stallRatio.toFixed(2)}x (target <= ${STALL_TARGET}x) |`);
  console.log(ok ? '\nwithin target' : '\nOVER TARGET');
  process.exitCode = ok ? 0 : 1;
})().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
