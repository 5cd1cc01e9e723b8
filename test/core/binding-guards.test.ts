// The raw binding (one require away, though not exported) refuses what would silently mean
// something else or grow without bound, at the native boundary, in a child process.
import { runFixture } from '../helpers';


interface Guards {
  count: number;
  badIndex: Record<string, string | null>;
  tooMany: Record<string, string | null>;
  tooManyMs: number;
  works: Record<string, string | null>;
}

describe('raw binding guards', () => {
  test('a backend index must be a whole number in range, and no backend takes more arguments than it declares', async () => {
    // Before the guards, the sparse array below was copied element by element (2^32 - 1 of them).
    const { value } = await runFixture<Guards>('binding-guards.js', [], { timeoutMs: 30_000 });
    for (const [call, seen] of Object.entries(value.badIndex)) {
      const type = /\((string|undefined)\)$/.test(call);
      expect([call, seen]).toEqual([call, type ? 'TypeError ERR_INVALID_ARG_TYPE' : 'RangeError ERR_OUT_OF_RANGE']);
    }
    expect(Object.keys(value.badIndex)).toHaveLength(4 * 9);
    for (const [call, seen] of Object.entries(value.tooMany)) expect([call, seen]).toEqual([call, 'RangeError ERR_OUT_OF_RANGE']);
    expect(value.tooManyMs).toBeLessThan(5000);
    expect(value.works).toEqual({ declared: null, fewer: null });
  });
});
