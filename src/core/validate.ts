// Validation happens here, before anything reaches native code.
import { rangeError, typeError, withCode } from './errors';

export function optionsObject<T extends object>(value: unknown, name: string, allowed: readonly string[]): Partial<T> {
  if (value === undefined) return {};
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw typeError('an object', name, value);
  for (const key of Object.keys(value)) {
    if (!allowed.includes(key)) {
      throw withCode(
        new TypeError(`Unknown option ${JSON.stringify(key)} for ${name}; known options: ${allowed.join(', ')}`),
        'ERR_UNKNOWN_OPTION',
      );
    }
  }
  return value as Partial<T>;
}

export function optionalBoolean(value: unknown, name: string, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') throw typeError('a boolean', name, value);
  return value;
}

// A whole number of bytes (or count) in [min, max]: exact as a double below 2^53.
export function optionalInteger(value: unknown, name: string, fallback: number, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  if (value === undefined) return fallback;
  return integer(value, name, min, max);
}

export function integer(value: unknown, name: string, min: number, max: number): number {
  if (typeof value !== 'number') throw typeError('a number', name, value);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw rangeError(`an integer from ${min} to ${max}`, name, value);
  }
  return value;
}

export function optionalNumber(value: unknown, name: string, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number') throw typeError('a number', name, value);
  if (!(value >= min && value <= max)) throw rangeError(`a number from ${min} to ${max}`, name, value);
  return value;
}

export function optionalFunction<F extends Function>(value: unknown, name: string): F | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'function') throw typeError('a function', name, value);
  return value as F;
}

/** A name the addon hands to C as a string: non-empty, and no NUL (C would stop reading there). */
export function cName(value: unknown, what: string, name: string): string {
  if (typeof value !== 'string' || value.length === 0 || value.includes('\0')) throw typeError(what, name, value);
  return value;
}
