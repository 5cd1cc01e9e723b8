// trim(): give held-back memory back to the OS and report what the OS got back.
import { EventEmitter } from 'node:events';
import { backendFor } from './backends';
import type { BackendTrim, TrimRequest } from './backends/types';
import { heldBackWithinRss } from './clamp';
import { allocatorIdentity } from './detect';
import { optionalInteger, optionsObject } from './validate';
import type { TrimOptions, TrimResult } from './types';

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

function request(options: unknown): TrimRequest {
  const o = optionsObject<TrimOptions>(options, 'options', OPTIONS);
  return { pad: optionalInteger(o.pad, 'options.pad', 0) };
}

function result(outcome: BackendTrim, time: number): TrimResult {
  const notes = [...outcome.notes];
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
    allocator: allocatorIdentity(),
    supported: outcome.supported,
    rssBefore: outcome.rssBefore,
    rssAfter: outcome.rssAfter,
    releasedBytes,
    heldBackBefore: heldBackWithinRss(outcome.heldBackBefore, outcome.rssBefore, 'before', notes),
    heldBackAfter: heldBackWithinRss(outcome.heldBackAfter, outcome.rssAfter, 'after', notes),
    durationMs: outcome.durationMs,
    notes,
  };
  if (r.supported) {
    totals.trims++;
    totals.releasedBytes += releasedBytes ?? 0;
    totals.durationMs += r.durationMs;
  }
  trimEvents.emit('trim', r);
  return r;
}

// Trims never overlap: each waits for the one before it (the native side also serialises
// trims across worker threads).
let queue: Promise<unknown> = Promise.resolve();

/**
 * Internal: the one path every asynchronous release takes (trim(), jemalloc.decay(), ...):
 * queued behind the trim before it, measured, counted in trimTotals() and emitted as an event.
 */
export function queueTrim(release: () => Promise<BackendTrim>): Promise<TrimResult> {
  const run = queue.then(async () => {
    const time = Date.now();
    return result(await release(), time);
  });
  queue = run.catch(() => undefined);
  return run;
}

/** Trims on the libuv threadpool. Trims requested while one runs wait their turn. */
export function trim(options?: TrimOptions): Promise<TrimResult> {
  let req: TrimRequest;
  try {
    req = request(options);
  } catch (error) {
    return Promise.reject(error);
  }
  const backend = backendFor(allocatorIdentity().name);
  return queueTrim(() => backend.trim(req));
}

/** Trims on the JS thread: blocks it for as long as the allocator's trim takes. */
export function trimSync(options?: TrimOptions): TrimResult {
  const req = request(options);
  const time = Date.now();
  return result(backendFor(allocatorIdentity().name).trimSync(req), time);
}
