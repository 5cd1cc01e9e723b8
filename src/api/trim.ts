// trim(): give held-back memory back to the OS and report what the OS got back.
import { queueTrim, trimNowSync, trimRequest } from '../allocators/trims';
import { rejecting } from '../core/errors';
import type { TrimOptions, TrimResult } from '../types';

export { trimEvents, trimTotals, type TrimTotals } from '../allocators/trims';

/** Trims on the libuv threadpool. Trims requested while one runs wait their turn. */
export function trim(options?: TrimOptions): Promise<TrimResult> {
  return rejecting(() => queueTrim(trimRequest(options)));
}

/** Trims on the JS thread: blocks it for as long as the allocator's trim takes. */
export function trimSync(options?: TrimOptions): TrimResult {
  return trimNowSync(trimRequest(options));
}
