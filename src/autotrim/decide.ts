// Auto-trim's decision as a pure function of (config, state, input): when to sample, when a
// sample is worth a trim, and how a trim's outcome moves the backoff and the pacing. No
// timers, clocks or I/O: the caller passes the time (a monotonic clock, in ms) and the numbers.
const MiB = 1024 * 1024;

// Backoff doubles the time between trims up to 2^4 = 16 intervals.
export const MAX_BACKOFF_LEVEL = 4;
// A trim that gives back less than this (or less than half of minReleasableBytes) was not worth it.
export const LITTLE_FLOOR_BYTES = 1 * MiB;

export type SkipReason =
  /** The sample showed too little to give back (releasable below minReleasableBytes or ratio below minHeldBackRatio). */
  | 'below-threshold'
  /** Event-loop utilisation since the previous check was above maxBusy. */
  | 'busy'
  /** Recent trims released little, or the last one took long (trimBudget): the next trim waits (no sample is taken). */
  | 'backing-off'
  /** The allocator has nothing a trim can do (musl, unknown): reported once, then nothing runs. */
  | 'unsupported'
  /** The sample could not tell how much is held back (releasable, heldBack and resident are null). */
  | 'unknown'
  /** The sample or the trim failed; the error is in the event. */
  | 'error';

export const SKIP_REASONS: readonly SkipReason[] = ['below-threshold', 'busy', 'backing-off', 'unsupported', 'unknown', 'error'];

export interface SkipEvent {
  reason: SkipReason;
  /** When the check ran (milliseconds since the epoch). */
  time: number;
  /** Why, in words. */
  message: string;
  /** 'busy': event-loop utilisation since the previous check (0..1). */
  utilization?: number;
  /** 'below-threshold' / 'unknown': the numbers the decision was made on. */
  releasable?: number | null;
  heldBack?: number | null;
  heldBackRatio?: number | null;
  /**
   * 'below-threshold' when the allocator reports neither releasable nor heldBack (mimalloc):
   * how much its resident memory grew since the level the last trim left.
   */
  residentGrowth?: number | null;
  /** 'backing-off': the backoff level (trims are at least intervalMs × 2^level apart) and when trims may resume. */
  backoffLevel?: number;
  resumeInMs?: number;
  /** 'error': what failed. */
  error?: Error;
}

/** A skip as the decision states it; the trimmer adds the wall-clock time. */
export type SkipDecision = Omit<SkipEvent, 'time' | 'error'>;

export interface DecisionConfig {
  minReleasableBytes: number;
  minHeldBackRatio: number;
  maxBusy: number;
  trimBudget: number;
}

export interface DecisionState {
  /** 0 when not backing off; trims are at least intervalMs × 2^backoffLevel apart. */
  backoffLevel: number;
  /** Monotonic ms before which no trim runs because recent trims released little (0: none). */
  backoffUntil: number;
  /** Monotonic ms before which no trim runs because the last one took long (trimBudget). */
  paceUntil: number;
  /** How long the last trim took (for the words of a trimBudget skip). */
  lastTrimMs: number | null;
  /**
   * For allocators that report only their resident memory: the level growth is measured from.
   * 0 at start (all of it may be free), null right after a trim (the next sample sets it).
   */
  residentFloor: number | null;
}

export const INITIAL_STATE: DecisionState = Object.freeze({ backoffLevel: 0, backoffUntil: 0, paceUntil: 0, lastTrimMs: null, residentFloor: 0 });

/** The numbers of a sample the decision uses. */
export interface SampleNumbers {
  releasable: number | null;
  heldBack: number | null;
  heldBackRatio: number | null;
  resident: number | null;
}

export type DecisionInput =
  /** A check is due: sample now, or skip without sampling? */
  | { kind: 'check'; now: number; delay: number; utilization: number }
  /** A sample was taken: trim, or skip? */
  | { kind: 'sample'; sample: SampleNumbers }
  /** A trim finished: how far to back off and pace the next. */
  | { kind: 'trimmed'; now: number; delay: number; releasedBytes: number | null; durationMs: number };

export type Decision =
  | { action: 'sample' }
  | { action: 'trim'; expectedBytes: number }
  | { action: 'skip'; skip: SkipDecision }
  | { action: 'none' };

export interface Step {
  decision: Decision;
  state: DecisionState;
}

const reset = (state: DecisionState): DecisionState => ({ ...state, backoffLevel: 0, backoffUntil: 0 });

function onCheck(config: DecisionConfig, state: DecisionState, now: number, delay: number, utilization: number): Step {
  // Backing off costs nothing: no sample is taken. Half an interval of slack absorbs timer jitter.
  const resumeAt = Math.max(state.backoffUntil, state.paceUntil);
  if (resumeAt - now > delay / 2) {
    const resumeInMs = Math.round(resumeAt - now);
    const message =
      state.backoffUntil >= state.paceUntil
        ? `recent trims released little: next trim in ${resumeInMs} ms at the earliest`
        : `the last trim took ${(state.lastTrimMs ?? 0).toFixed(1)} ms: next trim in ${resumeInMs} ms at the earliest (trimBudget)`;
    return { decision: { action: 'skip', skip: { reason: 'backing-off', message, backoffLevel: state.backoffLevel, resumeInMs } }, state };
  }
  if (utilization > config.maxBusy) {
    const message = `event-loop utilisation ${utilization.toFixed(2)} is above maxBusy ${config.maxBusy}: trim postponed`;
    return { decision: { action: 'skip', skip: { reason: 'busy', message, utilization } }, state };
  }
  return { decision: { action: 'sample' }, state };
}

function onSample(config: DecisionConfig, state: DecisionState, s: SampleNumbers): Step {
  const numbers = { releasable: s.releasable, heldBack: s.heldBack, heldBackRatio: s.heldBackRatio };
  // Worth it: what a trim would return (releasable); when the allocator cannot say, everything
  // held back (an upper bound: backoff corrects it); when it reports only its resident memory
  // (mimalloc), how much that grew since the level the last trim left.
  let expected: number;
  let what: string;
  let residentGrowth: number | null = null;
  let next = state;
  if (s.releasable !== null) {
    expected = s.releasable;
    what = 'releasable';
  } else if (s.heldBack !== null) {
    expected = s.heldBack;
    what = 'held back';
  } else if (s.resident !== null) {
    const floor = state.residentFloor === null ? s.resident : Math.min(state.residentFloor, s.resident);
    next = { ...state, residentFloor: floor };
    residentGrowth = s.resident - floor;
    expected = residentGrowth;
    what = state.residentFloor === 0 ? 'resident' : 'resident growth since the last trim';
  } else {
    const message = 'the allocator could not tell how much it holds back';
    return { decision: { action: 'skip', skip: { reason: 'unknown', message, ...numbers } }, state };
  }
  const ratio = s.heldBackRatio;
  if (expected < config.minReleasableBytes || (ratio !== null && ratio < config.minHeldBackRatio)) {
    // Nothing worth giving back any more: whatever made trims return little is gone.
    const message =
      `${what} ${expected} bytes (ratio ${ratio === null ? 'unknown' : ratio.toFixed(2)}) is below ` +
      `minReleasableBytes ${config.minReleasableBytes} or minHeldBackRatio ${config.minHeldBackRatio}`;
    const skip: SkipDecision = { reason: 'below-threshold', message, ...numbers };
    if (residentGrowth !== null) skip.residentGrowth = residentGrowth;
    return { decision: { action: 'skip', skip }, state: reset(next) };
  }
  return { decision: { action: 'trim', expectedBytes: expected }, state: next };
}

function onTrimmed(config: DecisionConfig, state: DecisionState, now: number, delay: number, released: number | null, durationMs: number): Step {
  // A trim of d ms waits d / trimBudget ms before the next, so trims take at most that share of wall time.
  let next: DecisionState = { ...state, paceUntil: now + durationMs / config.trimBudget, lastTrimMs: durationMs, residentFloor: null };
  if (released !== null) {
    const little = Math.max(config.minReleasableBytes / 2, LITTLE_FLOOR_BYTES);
    if (released < little) {
      const backoffLevel = Math.min(MAX_BACKOFF_LEVEL, state.backoffLevel + 1);
      next = { ...next, backoffLevel, backoffUntil: now + delay * 2 ** backoffLevel };
    } else {
      next = reset(next);
    }
  }
  return { decision: { action: 'none' }, state: next };
}

/** One step of auto-trim's decision. Pure: the same inputs always give the same step. */
export function decide(config: DecisionConfig, state: DecisionState, input: DecisionInput): Step {
  switch (input.kind) {
    case 'check':
      return onCheck(config, state, input.now, input.delay, input.utilization);
    case 'sample':
      return onSample(config, state, input.sample);
    case 'trimmed':
      return onTrimmed(config, state, input.now, input.delay, input.releasedBytes, input.durationMs);
  }
}
