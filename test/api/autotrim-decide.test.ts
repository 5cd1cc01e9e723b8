// Auto-trim's decision, step by step: a pure function of (config, state, input), so every
// rule (load gate, thresholds, backoff, trim budget, the resident-growth rule for allocators
// that report no held-back figure) is checked directly, without timers or a child process.
import { EventEmitter } from 'node:events';
import { startAutoTrim, type AutoTrimmer, type SkipEvent, type TrimResult } from '../../src';
import {
  INITIAL_STATE,
  LITTLE_FLOOR_BYTES,
  MAX_BACKOFF_LEVEL,
  decide,
  type DecisionConfig,
  type DecisionState,
  type SampleNumbers,
} from '../../src/autotrim/decide';
import { MiB } from '../helpers';

const config: DecisionConfig = { minReleasableBytes: 64 * MiB, minHeldBackRatio: 0.25, maxBusy: 0.7, trimBudget: 0.005 };
const DELAY = 30000;
const known = (releasable: number, heldBack = releasable, resident = 4 * heldBack): SampleNumbers => ({
  releasable,
  heldBack,
  heldBackRatio: heldBack / resident,
  resident,
});
const residentOnly = (resident: number): SampleNumbers => ({ releasable: null, heldBack: null, heldBackRatio: null, resident });

const check = (state: DecisionState, now: number, utilization = 0) => decide(config, state, { kind: 'check', now, delay: DELAY, utilization });
const sample = (state: DecisionState, s: SampleNumbers) => decide(config, state, { kind: 'sample', sample: s });
const trimmed = (state: DecisionState, now: number, releasedBytes: number | null, durationMs = 0) =>
  decide(config, state, { kind: 'trimmed', now, delay: DELAY, releasedBytes, durationMs });

describe('the load gate', () => {
  test('a busy event loop postpones the check without sampling; at maxBusy it samples', () => {
    const busy = check(INITIAL_STATE, 0, 0.71);
    expect(busy.decision).toEqual({ action: 'skip', skip: expect.objectContaining({ reason: 'busy', utilization: 0.71 }) });
    expect(busy.state).toBe(INITIAL_STATE);
    expect(check(INITIAL_STATE, 0, 0.7).decision).toEqual({ action: 'sample' });
  });
});

describe('thresholds', () => {
  test('releasable at or above minReleasableBytes with enough held back trims', () => {
    expect(sample(INITIAL_STATE, known(64 * MiB)).decision).toEqual({ action: 'trim', expectedBytes: 64 * MiB });
  });

  test('too little releasable, or too small a held-back ratio, skips and says what it saw', () => {
    const little = sample(INITIAL_STATE, known(64 * MiB - 1)).decision;
    expect(little).toEqual({ action: 'skip', skip: expect.objectContaining({ reason: 'below-threshold', releasable: 64 * MiB - 1 }) });
    const diluted = sample(INITIAL_STATE, known(100 * MiB, 100 * MiB, 401 * MiB)).decision;
    expect(diluted).toEqual({ action: 'skip', skip: expect.objectContaining({ reason: 'below-threshold', heldBackRatio: 100 / 401 }) });
  });

  test('without releasable, everything held back is the upper bound', () => {
    const s = { releasable: null, heldBack: 80 * MiB, heldBackRatio: 0.5, resident: 160 * MiB };
    expect(sample(INITIAL_STATE, s).decision).toEqual({ action: 'trim', expectedBytes: 80 * MiB });
  });

  test('when nothing is known, the skip says so', () => {
    const s = { releasable: null, heldBack: null, heldBackRatio: null, resident: null };
    expect(sample(INITIAL_STATE, s).decision).toEqual({ action: 'skip', skip: expect.objectContaining({ reason: 'unknown' }) });
  });
});

describe('backoff', () => {
  test('each trim that releases little raises the level by one up to the cap; one that releases resets it', () => {
    let state = INITIAL_STATE;
    const levels: number[] = [];
    for (let i = 0; i < MAX_BACKOFF_LEVEL + 2; i++) {
      state = trimmed(state, 1000 * i, LITTLE_FLOOR_BYTES - 1).state;
      levels.push(state.backoffLevel);
      expect(state.backoffUntil).toBe(1000 * i + DELAY * 2 ** state.backoffLevel);
    }
    expect(levels).toEqual([1, 2, 3, 4, 4, 4]);
    // "Little" is half of minReleasableBytes when that is above the 1 MiB floor.
    expect(trimmed(state, 0, 32 * MiB - 1).state.backoffLevel).toBe(MAX_BACKOFF_LEVEL);
    const reset = trimmed(state, 0, 32 * MiB).state;
    expect(reset.backoffLevel).toBe(0);
    expect(reset.backoffUntil).toBe(0);
    // An unknown release leaves the backoff as it was.
    expect(trimmed(state, 0, null).state.backoffLevel).toBe(MAX_BACKOFF_LEVEL);
  });

  test('a quiet heap: checks every interval, and the gaps between trims double up to 16 intervals', () => {
    const quiet = { ...config, minReleasableBytes: 0, minHeldBackRatio: 0, trimBudget: 1 };
    let state = INITIAL_STATE;
    const gaps: number[] = [];
    let skipped = 0;
    for (let i = 1; i <= 80; i++) {
      const now = i * DELAY;
      const gate = decide(quiet, state, { kind: 'check', now, delay: DELAY, utilization: 0 });
      state = gate.state;
      if (gate.decision.action === 'skip') {
        expect(gate.decision.skip.reason).toBe('backing-off');
        skipped++;
        continue;
      }
      const verdict = decide(quiet, state, { kind: 'sample', sample: known(0, 0, 1) });
      expect(verdict.decision.action).toBe('trim');
      state = decide(quiet, verdict.state, { kind: 'trimmed', now, delay: DELAY, releasedBytes: 0, durationMs: 1 }).state;
      gaps.push(skipped);
      skipped = 0;
    }
    expect(gaps.slice(0, 7)).toEqual([0, 1, 3, 7, 15, 15, 15]);
  });

  test('a check while backing off skips without sampling and says when trims resume', () => {
    const state = trimmed(trimmed(INITIAL_STATE, 0, 0).state, 0, 0).state; // level 2: 4 intervals
    const early = check(state, DELAY);
    expect(early.decision).toEqual({ action: 'skip', skip: expect.objectContaining({ reason: 'backing-off', backoffLevel: 2, resumeInMs: 3 * DELAY }) });
    // Half an interval of slack absorbs timer jitter.
    expect(check(state, 4 * DELAY - DELAY / 2).decision).toEqual({ action: 'sample' });
  });

  test('a sample below the thresholds ends the backoff: whatever made trims return little is gone', () => {
    const state = trimmed(INITIAL_STATE, 0, 0).state;
    const next = sample(state, known(0)).state;
    expect(next.backoffLevel).toBe(0);
    expect(next.backoffUntil).toBe(0);
  });
});

describe('trim budget', () => {
  test('a trim of d ms holds the next one back d / trimBudget ms, and the skip names trimBudget', () => {
    const state = trimmed(INITIAL_STATE, 1000, 200 * MiB, 500).state;
    expect(state.paceUntil).toBe(1000 + 500 / 0.005);
    const skip = check(state, 1000 + DELAY).decision;
    expect(skip).toEqual({ action: 'skip', skip: expect.objectContaining({ reason: 'backing-off', resumeInMs: 100000 - DELAY }) });
    expect(skip.action === 'skip' && skip.skip.message).toMatch(/took 500\.0 ms.*trimBudget/);
    expect(check(state, 1000 + 100000).decision).toEqual({ action: 'sample' });
  });
});

describe('allocators that report only their resident memory (mimalloc)', () => {
  test('the first check counts all of it; after a trim only growth from the level the trim left counts', () => {
    const first = sample(INITIAL_STATE, residentOnly(500 * MiB));
    expect(first.decision).toEqual({ action: 'trim', expectedBytes: 500 * MiB });
    const afterTrim = trimmed(first.state, 0, 400 * MiB).state;
    expect(afterTrim.residentFloor).toBeNull();
    // The sample after the trim sets the level and does not trim again.
    const settle = sample(afterTrim, residentOnly(100 * MiB));
    expect(settle.decision).toEqual({ action: 'skip', skip: expect.objectContaining({ reason: 'below-threshold', residentGrowth: 0 }) });
    expect(settle.state.residentFloor).toBe(100 * MiB);
    // Falling lowers the level; growth from the lowest level decides.
    const lower = sample(settle.state, residentOnly(90 * MiB)).state;
    expect(sample(lower, residentOnly(90 * MiB + 64 * MiB - 1)).decision.action).toBe('skip');
    expect(sample(lower, residentOnly(90 * MiB + 64 * MiB)).decision).toEqual({ action: 'trim', expectedBytes: 64 * MiB });
  });

  test('memory still in use is not trimmed again and again: the level follows it', () => {
    // A trim that returns little backs off, and the next sample raises the level to what is in use.
    let state = sample(INITIAL_STATE, residentOnly(300 * MiB)).state;
    state = trimmed(state, 0, 0).state;
    expect(state.backoffLevel).toBe(1);
    state = sample(state, residentOnly(300 * MiB)).state;
    expect(sample(state, residentOnly(310 * MiB)).decision.action).toBe('skip');
  });
});

test('decide() is pure: it never changes the state it is given', () => {
  const frozen = Object.freeze({ ...INITIAL_STATE, backoffLevel: 2, backoffUntil: 5, paceUntil: 7, residentFloor: 9 });
  const inputs = [
    () => check(frozen, 0),
    () => sample(frozen, known(100 * MiB)),
    () => sample(frozen, residentOnly(100 * MiB)),
    () => trimmed(frozen, 0, 0),
    () => trimmed(frozen, 0, 100 * MiB),
  ];
  for (const run of inputs) {
    const a = run();
    expect(run()).toEqual(a);
  }
  expect(frozen).toEqual({ ...INITIAL_STATE, backoffLevel: 2, backoffUntil: 5, paceUntil: 7, residentFloor: 9 });
});

test('the trimmer is typed: only its events, with their listener signatures, compile', () => {
  // Type-level checks (ts-jest type-checks this file); the trimmer is stopped at once.
  const t: AutoTrimmer = startAutoTrim({ intervalMs: 60000 });
  t.on('trim', (r: TrimResult) => r.releasedBytes);
  t.once('skip', (s: SkipEvent) => s.reason);
  t.off('trim', () => undefined);
  // Checked by the compiler, never run.
  const wrong = (): void => {
    // @ts-expect-error: not an event of the trimmer
    t.on('trimmed', () => undefined);
    // @ts-expect-error: a 'skip' listener receives a SkipEvent, not a TrimResult
    t.on('skip', (r: TrimResult) => r.releasedBytes);
    // @ts-expect-error: a 'trim' listener receives a TrimResult, not a string
    t.once('trim', (s: string) => s.length);
    // @ts-expect-error: events are named by string
    t.on(Symbol('trim'), () => undefined);
    // @ts-expect-error: only the trimmer emits its events
    t.emit('trim', {});
  };
  expect(typeof wrong).toBe('function');
  expect(t.listenerCount('trim')).toBe(1);
  expect(t).toBeInstanceOf(EventEmitter);
  t.stop();
  expect(t.running).toBe(false);
});
