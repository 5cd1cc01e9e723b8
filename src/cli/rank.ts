// Ranks candidates by the memory they keep and recommends one, by a rule stated in words.
import type { RunRecord } from './model';
import { spread, type Spread } from './summary';

/**
 * A candidate "costs clearly more time" when its mean wall time is this much above the
 * fastest ranked candidate's: wall times of one memory-heavy program vary by 10–20 % from run
 * to run on a busy machine (measured here), so a smaller gap is not evidence.
 */
export const TIME_COST_TOLERANCE = 0.25;
/**
 * With several runs, the gap must also exceed this many standard deviations (the larger of the
 * two candidates'), so that one disturbed run does not decide.
 */
export const TIME_COST_SDS = 2;

export const RECOMMENDATION_RULE =
  `lowest steady RSS (final RSS when no plateau was measured) among candidates whose every run exited 0 ` +
  `with the allocator verified, unless its wall time is clearly longer: more than ${TIME_COST_TOLERANCE * 100}% above the fastest such ` +
  `candidate's and, with several runs, by more than ${TIME_COST_SDS} standard deviations`;

export interface CandidateSummary {
  label: string;
  runs: RunRecord[];
  peak: Spread | null;
  steady: Spread | null;
  final: Spread | null;
  heldBack: Spread | null;
  wallMs: Spread | null;
  /** Why it is not ranked, or null when it is. */
  excluded: string | null;
  /** 1 = keeps the program smallest; null when not ranked. */
  rank: number | null;
}

export interface Ranking {
  candidates: CandidateSummary[];
  recommendation: { label: string; reason: string } | null;
}

const mib = (b: number): string => `${(b / 1048576).toFixed(1)} MiB`;

function exclusion(runs: RunRecord[]): string | null {
  const notServed = runs.find((r) => r.check.served !== true);
  if (notServed) {
    return notServed.check.served === false
      ? `${notServed.check.detected ?? 'another allocator'} served malloc, not ${notServed.check.expected}`
      : `the allocator could not be verified (${notServed.check.notes[0] ?? 'no samples'})`;
  }
  const failed = runs.find((r) => r.exitCode !== 0);
  if (failed) return failed.signal ? `a run was killed by ${failed.signal}` : `a run exited with code ${failed.exitCode}`;
  return null;
}

export function rank(runs: readonly RunRecord[]): Ranking {
  const labels = [...new Set(runs.map((r) => r.label))];
  const candidates: CandidateSummary[] = labels.map((label) => {
    const mine = runs.filter((r) => r.label === label);
    return {
      label,
      runs: mine,
      peak: spread(mine.map((r) => r.rss.peak)),
      steady: spread(mine.map((r) => r.rss.steady ?? r.rss.final)),
      final: spread(mine.map((r) => r.rss.final)),
      heldBack: spread(mine.map((r) => r.heldBackFinal)),
      wallMs: spread(mine.map((r) => r.wallMs)),
      excluded: exclusion(mine),
      rank: null,
    };
  });
  const ranked = candidates.filter((c) => c.excluded === null && c.steady !== null);
  for (const c of candidates) if (c.excluded === null && c.steady === null) c.excluded = 'no RSS was measured';
  ranked.sort((a, b) => a.steady!.mean - b.steady!.mean || (a.final?.mean ?? 0) - (b.final?.mean ?? 0));
  ranked.forEach((c, i) => (c.rank = i + 1));
  candidates.sort((a, b) => (a.rank ?? Infinity) - (b.rank ?? Infinity));
  if (ranked.length === 0) return { candidates, recommendation: null };

  const quickest = ranked.reduce((a, b) => ((b.wallMs?.mean ?? Infinity) < (a.wallMs?.mean ?? Infinity) ? b : a));
  const fastest = quickest.wallMs?.mean ?? Infinity;
  const affordable = (c: CandidateSummary): boolean => {
    const w = c.wallMs;
    if (!w || !Number.isFinite(fastest)) return true;
    if (w.mean <= fastest * (1 + TIME_COST_TOLERANCE)) return true;
    const sd = Math.max(w.sd ?? 0, quickest.wallMs?.sd ?? 0);
    return w.n > 1 && w.mean - fastest <= TIME_COST_SDS * sd;
  };
  const pick = ranked.find(affordable) ?? ranked[0];
  const skipped = ranked.slice(0, ranked.indexOf(pick));
  const worst = ranked[ranked.length - 1];
  let reason = `lowest steady RSS (${mib(pick.steady!.mean)})`;
  if (skipped.length) {
    reason = `lowest steady RSS (${mib(pick.steady!.mean)}) among candidates not clearly slower than the fastest; ` +
      skipped.map((c) => `${c.label} keeps less (${mib(c.steady!.mean)}) but takes ${((c.wallMs!.mean / fastest - 1) * 100).toFixed(0)}% longer`).join('; ');
  } else {
    reason += `, and not clearly slower than the fastest`;
  }
  if (pick.runs.length === 1 && skipped.length) reason += ' (one run each: rerun with --runs 3 to tell time from noise)';
  if (worst !== pick && worst.steady!.mean > 0 && pick.steady!.mean < worst.steady!.mean * 0.99) {
    reason += `; ${((1 - pick.steady!.mean / worst.steady!.mean) * 100).toFixed(0)}% below ${worst.label} (${mib(worst.steady!.mean)})`;
  }
  return { candidates, recommendation: { label: pick.label, reason } };
}
