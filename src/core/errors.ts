// Errors with stable codes. Messages follow "Expected <what> for <name> but received <value>".

export type ErrorCode =
  | 'ERR_INVALID_ARG_TYPE'
  | 'ERR_OUT_OF_RANGE'
  | 'ERR_INVALID_ARG_VALUE'
  | 'ERR_UNKNOWN_OPTION'
  | 'ERR_ALLOCATOR_UNSUPPORTED'
  | 'ERR_MALLOPT_PARAM'
  | 'ERR_MALLOPT_FAILED'
  | 'ERR_ADDON_NOT_FOUND'
  | 'ERR_ADDON_LOAD'
  | 'ERR_NATIVE'
  | (string & {});

export interface CodedError extends Error {
  code: ErrorCode;
}

export function withCode<E extends Error>(error: E, code: ErrorCode): E & CodedError {
  Object.defineProperty(error, 'code', { value: code, enumerable: true, writable: true, configurable: true });
  return error as E & CodedError;
}

export function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  if (typeof value === 'bigint') return `${value}n`;
  if (typeof value === 'function') return 'a function';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'an object';
  return String(value);
}

export function typeError(what: string, name: string, value: unknown): TypeError & CodedError {
  return withCode(new TypeError(`Expected ${what} for ${name} but received ${describe(value)}`), 'ERR_INVALID_ARG_TYPE');
}

export function rangeError(what: string, name: string, value: unknown): RangeError & CodedError {
  return withCode(new RangeError(`Expected ${what} for ${name} but received ${describe(value)}`), 'ERR_OUT_OF_RANGE');
}

export function unsupported(message: string): Error & CodedError {
  return withCode(new Error(message), 'ERR_ALLOCATOR_UNSUPPORTED');
}

// Native work finishes on the threadpool with no JS frames of the caller on the stack;
// keep the caller's stack so a rejection says where it came from.
export function keepCallerStack<T>(promise: Promise<T>, caller: Function): Promise<T> {
  const site: { stack?: string } = {};
  Error.captureStackTrace(site, caller);
  return promise.catch((error: unknown) => {
    if (error instanceof Error && site.stack) {
      const frames = site.stack.split('\n').slice(1).join('\n');
      error.stack = `${error.stack ?? String(error)}\n    --- awaited from ---\n${frames}`;
    }
    throw error;
  });
}

/**
 * `start()` as a promise: what it throws before any work begins (a bad argument, the wrong
 * allocator) becomes a rejection, as every asynchronous function of the API reports errors.
 */
export function rejecting<T>(start: () => Promise<T>): Promise<T> {
  try {
    return start();
  } catch (error) {
    return Promise.reject(error);
  }
}
