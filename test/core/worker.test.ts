// The addon keeps per-environment state: it must work in worker threads, loaded in the main
// thread and in several workers at once, and survive a worker torn down mid-sample.
import { Worker } from 'node:worker_threads';
import { allocatorStats } from '../../src';
import { LIB, runFixture } from '../helpers';

function runWorker<T>(body: string): Promise<T> {
  const code = `
    const { parentPort } = require('node:worker_threads');
    const a = require(${JSON.stringify(LIB)});
    (async () => { ${body} })().then((v) => parentPort.postMessage({ ok: v }), (e) => parentPort.postMessage({ error: e.message, code: e.code }));`;
  return new Promise((resolve, reject) => {
    const w = new Worker(code, { eval: true });
    w.once('message', (m: { ok?: T; error?: string }) => (m.error ? reject(new Error(m.error)) : resolve(m.ok as T)));
    w.once('error', reject);
  });
}

describe('worker threads', () => {
  test('stats and trim from a worker, while the main thread uses the addon too', async () => {
    const main = await allocatorStats();
    const results = await Promise.all(
      [0, 1, 2].map(() =>
        runWorker<{ name: string; heldBack: number; resident: number; allocated: number; supported: boolean; sync: number }>(`
          const held = [];
          for (let i = 0; i < 2000; i++) held.push(Buffer.alloc(4096, 7));
          const s = await a.allocatorStats();
          const t = await a.trim();
          const sync = a.allocatorStatsSync().allocated;
          return { name: s.allocator.name, heldBack: s.heldBack, resident: s.resident, allocated: s.allocated, supported: t.supported, sync };`),
      ),
    );
    for (const r of results) {
      expect(r.name).toBe('glibc');
      expect(r.supported).toBe(true);
      expect(r.heldBack).toBe(r.resident - r.allocated);
      // Process-wide numbers: the worker sees at least what it holds itself.
      expect(r.allocated).toBeGreaterThan(2000 * 4096);
      expect(r.sync).toBeGreaterThan(0);
    }
    expect((await allocatorStats()).allocator).toEqual(main.allocator);
  });

  test('terminating a worker while its samples run does not crash the process', async () => {
    const w = new Worker(
      `const a = require(${JSON.stringify(LIB)});
       const { parentPort } = require('node:worker_threads');
       for (let i = 0; i < 50; i++) { a.allocatorStats(); a.trim(); }
       parentPort.postMessage('started');
       setInterval(() => {}, 1000);`,
      { eval: true },
    );
    await new Promise((resolve) => w.once('message', resolve));
    const code = await w.terminate();
    expect(code).toBe(1);
    const s = await allocatorStats();
    expect(s.allocated).toBeGreaterThan(0);
  });
});

describe('loaded twice', () => {
  test('a second copy of the addon in the same process works alongside the first', async () => {
    const { value } = await runFixture<{ names: string[]; sampled: boolean[]; trimmed: boolean }>('loaded-twice.js');
    expect(value.names).toEqual(['glibc', 'glibc']);
    expect(value.sampled).toEqual([true, true]);
    expect(value.trimmed).toBe(true);
  });
});
