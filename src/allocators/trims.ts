// Every trim, whoever asks for it (trim(), glibc.trim(), jemalloc.decay(), auto-trim, the
// endpoint), takes this one path: queued behind the trim before it, measured into a TrimResult,
// counted in trimTotals() and emitted as an event. The public trim() and the namespaces' own
// trims both stand on it.
import { EventEmitter } from 'node:events';
import { heldBackWithinRss } from '../core/clamp';
import { optionalInteger, optionsObject } from '../core/validate';
import type { TrimOptions, TrimResult } from '../types';
import { rejecting } from '../core/errors';
import { allocatorIdentity } from './identity';
import { backendFor } from './registry';
import type { BackendTrim, TrimRequest } from './types';

const OPTIONS = ['pad'] as const;

/** Internal: every finished trim, whoever asked for it (auto-trim, endpoint, user). */
export const trimEvents: EventEmitter = new EventEmitter();

export interface TrimTotals {
  /** Trims completed in this thread (any caller), bytes they released, time they took. */
  trims: number;
  releasedBytes: number;
  durationMs: number;
}

const totals: TrimTotals = { trims: 0, releasedBytes: 0, durationMs: 0 };

/** Internal: running totals of every trim in this thread, for metrics. */
export function trimTotals(): TrimTotals {
  return { ...totals };
}

/** The trim options, checked. */
export function trimRequest(options: unknown): TrimRequest {
  const o = optionsObject<TrimOptions>(options, 'options', OPTIONS);
  return { pad: optionalInteger(o.pad, 'options.pad', 0) };
}

/** A backend's trim in the public shape: what the OS got back, in bytes and words. */
export function trimResultOf(outcome: BackendTrim, time: number, allocator: TrimResult['allocator']): TrimResult {
  const notes = outcome.notes;
  let releasedBytes: number | null = null;
  if (outcome.rssBefore !== null && outcome.rssAfter !== null) {
    releasedBytes = outcome.rssBefore - outcome.rssAfter;
    if (releasedBytes < 0) {
      notes.push(`RSS grew by ${-releasedBytes} bytes during the trim (other threads allocated): released is shown as 0`);
      releasedBytes = 0;
    }
  }
  const r: TrimResult = {
    time,
    allocator,
    supported: outcome.supported,
    rssBefore: outcome.rssBefore,
    rssAfter: outcome.rssAfter,
    releasedBytes,
    heldBackBefore: heldBackWithinRss(outcome.heldBackBefore, outcome.rssBefore, 'before', notes),
    heldBackAfter: heldBackWithinRss(outcome.heldBackAfter, outcome.rssAfter, 'after', notes),
    durationMs: outcome.durationMs,
    notes,
  };
  return r;
}

function result(outcome: BackendTrim, time: number, allocator: TrimResult['allocator']): TrimResult {
  const r = trimResultOf(outcome, time, allocator);
  if (r.supported) {
    totals.trims++;
    totals.releasedBytes += r.releasedBytes ?? 0;
    totals.durationMs += r.durationMs;
  }
  trimEvents.emit('trim', r);
  return r;
}

// Trims never overlap: each waits for the one before it (the native side also serialises
// trims across worker threads).
let queue: Promise<unknown> = Promise.resolve();

/** Trims under the serving allocator: queued, measured, counted and emitted. */
export function queueTrim(request: TrimRequest): Promise<TrimResult> {
  const run = queue.then(async () => {
    const time = Date.now();
    const allocator = allocatorIdentity();
    return result(await backendFor(allocator.name).trim(request), time, allocator);
  });
  queue = run.catch(() => undefined);
  return run;
}

/** The same on the JS thread: blocks it for as long as the allocator's trim takes. */
export function trimNowSync(request: TrimRequest): TrimResult {
  const time = Date.now();
  const allocator = allocatorIdentity();
  return result(backendFor(allocator.name).trimSync(request), time, allocator);
}

const DEFAULT_REQUEST: TrimRequest = Object.freeze({ pad: 0 });

/**
 * A namespace's own trim (glibc.trim(), jemalloc.purge(), ...): rejects with what `check` throws
 * (its allocator does not serve malloc) or what building the request throws.
 */
export function trimUnder(check: () => void, request: () => TrimRequest = () => DEFAULT_REQUEST): Promise<TrimResult> {
  return rejecting(() => {
    check();
    return queueTrim(request());
  });
}
