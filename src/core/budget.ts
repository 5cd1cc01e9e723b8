// The cost budget every periodic sampler keeps (auto-trim, the monitor): after a sample that
// cost c ms, the next waits at least c / budget ms, so sampling never uses more than `budget`
// of one core however expensive a sample becomes.

/** setTimeout() takes at most 2^31 − 1 ms. */
export const MAX_DELAY_MS = 2 ** 31 - 1;

/** The delay before the next periodic sample: the interval, or longer when the last sample cost more than the budget allows. */
export function nextDelayMs(intervalMs: number, lastCostMs: number | null, budget: number): number {
  return Math.min(MAX_DELAY_MS, Math.max(intervalMs, Math.ceil((lastCostMs ?? 0) / budget)));
}

/** Whether a sample taken `sinceLastMs` after the last one (which cost `lastCostMs`) stays within the budget. */
export function withinBudget(sinceLastMs: number, lastCostMs: number | null, budget: number): boolean {
  return sinceLastMs >= (lastCostMs ?? 0) / budget;
}

/**
 * The next periodic sample, `nextDelayMs()` away, on an unref()ed timer that replaces `previous`:
 * nothing this library starts keeps a process alive.
 */
export function scheduleNext(
  previous: NodeJS.Timeout | undefined,
  intervalMs: number,
  lastCostMs: number | null,
  budget: number,
  run: () => void,
): { timer: NodeJS.Timeout; delayMs: number } {
  clearTimeout(previous);
  const delayMs = nextDelayMs(intervalMs, lastCostMs, budget);
  const timer = setTimeout(run, delayMs);
  timer.unref();
  return { timer, delayMs };
}
