// The doctor's configuration findings and per-allocator advice in real children under real
// preloaded allocators: an LD_PRELOAD that did not take effect, jemalloc without background
// threads, and never advice that is already in effect.
import { ALLOCATOR_LIBRARIES, findLibrary, MiB, testIf } from '../helpers';
import { ids, runScenario } from './helpers';
import type { DiagnoseContext } from '../../src';

const jemalloc = findLibrary(ALLOCATOR_LIBRARIES.jemalloc);
const withJemalloc = testIf(jemalloc !== null, `${ALLOCATOR_LIBRARIES.jemalloc} not installed (apt-get install libjemalloc2)`);

describe('doctor configuration findings', () => {
  test('an LD_PRELOAD naming an allocator that does not serve malloc is preload-not-effective', async () => {
    const r = await runScenario('doctor-config', { preload: '/nonexistent/libjemalloc.so.2' });
    const f = r.findings.find((x) => x.id === 'preload-not-effective');
    expect(f).toMatchObject({ severity: 'warning', evidence: { wanted: 'jemalloc', serving: 'glibc' } });
    expect((r.context as DiagnoseContext).env?.LD_PRELOAD).toBe('/nonexistent/libjemalloc.so.2');
  });

  test('without LD_PRELOAD there is no preload finding', async () => {
    const r = await runScenario('doctor-config');
    expect(ids(r)).not.toContain('preload-not-effective');
    expect((r.context as DiagnoseContext).allocator?.name).toBe('glibc');
  });

  withJemalloc('jemalloc retention after worker churn: advice to enable background threads, and the info finding once pages outlive the decay time', async () => {
    // Idle 13 s after the churn: longer than jemalloc's 10 s decay, so pages still held were not
    // decayed. The margin is for a loaded machine, where the first sample that sees the freed
    // pages comes a second or two after the churn ends.
    const r = await runScenario('doctor-retention', { preload: jemalloc, args: ['13000'] });
    expect([ids(r), r.notes]).toEqual([expect.arrayContaining(['allocator-retention', 'jemalloc-no-background-thread']), []]);
    const f = r.findings.find((x) => x.id === 'allocator-retention')!;
    expect(f.title).toMatch(/^jemalloc/);
    expect(f.advice.join('\n')).toContain('MALLOC_CONF=background_thread:true');
    const info = r.findings.find((x) => x.id === 'jemalloc-no-background-thread')!;
    expect(info.evidence.heldForMs as number).toBeGreaterThanOrEqual(10_000);
    expect(info.evidence.heldBytes as number).toBeGreaterThanOrEqual(64 * MiB);
    expect(info.evidence.heldBytes as number).toBeLessThanOrEqual(info.evidence.rssBytes as number);
  });

  withJemalloc('with background threads on, the doctor knows it and never advises them', async () => {
    const r = await runScenario('doctor-config', { preload: jemalloc, env: { MALLOC_CONF: 'background_thread:true' } });
    expect((r.context as DiagnoseContext).backgroundThread).toBe(true);
    expect(ids(r)).not.toContain('jemalloc-no-background-thread');
    const retained = await runScenario('doctor-retention', { preload: jemalloc, env: { MALLOC_CONF: 'background_thread:true' } });
    // Within jemalloc's 10 s decay the churned memory is still held: the finding is there, without that advice.
    expect([ids(retained), retained.notes]).toEqual([expect.arrayContaining(['allocator-retention']), []]);
    const f = retained.findings.find((x) => x.id === 'allocator-retention')!;
    expect(f.title).toMatch(/^jemalloc/);
    expect(f.advice.join('\n')).toContain('trim()');
    for (const other of retained.findings) expect(other.advice.join('\n')).not.toContain('background_thread:true');
    expect(ids(retained)).not.toContain('jemalloc-no-background-thread');
  });
});
