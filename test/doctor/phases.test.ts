// The doctor on real children whose memory rises and falls: a backlog between threads that
// drains, glibc keeping what worker threads freed, and a healthy steady process (silent under
// every allocator).
import { alarms, ids, runScenario } from './helpers';
import { ALLOCATOR_LIBRARIES, findLibrary, MiB, testIf } from '../helpers';

const jemalloc = findLibrary(ALLOCATOR_LIBRARIES.jemalloc);
const tcmalloc = findLibrary(ALLOCATOR_LIBRARIES.tcmalloc);
const mimalloc = findLibrary(ALLOCATOR_LIBRARIES.mimalloc);

describe('doctor on processes that are not leaking', () => {
  test('a worker-thread backlog that grows then drains is a backlog, following the tracked queue, not a leak', async () => {
    const r = await runScenario('doctor-backlog');
    expect([ids(r), r.notes]).toEqual([expect.arrayContaining(['backlog']), []]);
    // It drained: no growth verdict of any kind.
    expect(alarms(r).filter((id) => id.endsWith('-growth'))).toEqual([]);
    const f = r.findings.find((x) => x.id === 'backlog')!;
    expect(f.severity).toBe('info');
    expect(f.evidence.riseBytes as number).toBeGreaterThan(16 * MiB);
    expect(f.evidence.fellBackBytes as number).toBeGreaterThanOrEqual((f.evidence.riseBytes as number) / 2);
    expect((f.evidence.gauges as Array<{ name: string }>).map((g) => g.name)).toEqual(['queue']);
    expect(r.peakQueue as number).toBeGreaterThan(100);
  });

  test('a backlog still building up is native-growth, and the doctor says it may be a backlog following the queue', async () => {
    const r = await runScenario('doctor-backlog', { args: ['still-rising'] });
    expect(alarms(r)).toEqual(['native-growth']);
    const f = r.findings.find((x) => x.id === 'backlog')!;
    expect(f.title).toBe('The growth may be a backlog');
    expect((f.evidence.gauges as Array<{ name: string }>).map((g) => g.name)).toEqual(['queue']);
    expect(f.advice.join(' ')).toContain('What tells');
  });

  test('glibc retention after worker churn is allocator-retention with per-allocator advice, and no growth', async () => {
    const r = await runScenario('doctor-retention', { env: { MALLOC_ARENA_MAX: '8' } });
    expect([alarms(r), r.notes]).toEqual([['allocator-retention'], []]);
    const f = r.findings.find((x) => x.id === 'allocator-retention')!;
    expect(f.title).toMatch(/^glibc/);
    expect(f.evidence.heldBackBytes as number).toBeGreaterThan(64 * MiB);
    expect(f.evidence.releasableBytes as number).toBeGreaterThan(0);
    expect(f.evidence.fragmentationBytes).toBe((f.evidence.heldBackBytes as number) - (f.evidence.releasableBytes as number));
    expect(f.advice.join('\n')).toMatch(/trim\(\)/);
    // MALLOC_ARENA_MAX is set in this child (8: more arenas than its 5 threads use): never advise what is already in effect.
    expect(f.advice.join('\n')).not.toContain('MALLOC_ARENA_MAX=2');
  });

  test('a healthy steady process gets no warning and no critical finding', async () => {
    const r = await runScenario('doctor-healthy');
    expect(alarms(r)).toEqual([]);
    // Node's own threads and arenas are no finding: nothing is held back to speak of.
    expect(ids(r)).not.toContain('glibc-many-threads');
    // It judged a full window: silence is a verdict, not a lack of data.
    expect(r.notes).toEqual([]);
    expect(r.window.samples).toBeGreaterThanOrEqual(12);
  });

  testIf(jemalloc !== null, `${ALLOCATOR_LIBRARIES.jemalloc} not installed (apt-get install libjemalloc2)`)(
    'the same healthy process under jemalloc is silent too, background threads off or not',
    async () => {
      const r = await runScenario('doctor-healthy', { preload: jemalloc });
      expect(r.context).toMatchObject({ allocator: { name: 'jemalloc' }, backgroundThread: false });
      expect(ids(r)).toEqual([]);
      expect(r.notes).toEqual([]);
    },
  );

  testIf(tcmalloc !== null, `${ALLOCATOR_LIBRARIES.tcmalloc} not installed (apt-get install libtcmalloc-minimal4)`)(
    'the same healthy process under tcmalloc gets no warning and no critical finding',
    async () => {
      const r = await runScenario('doctor-healthy', { preload: tcmalloc });
      expect(r.samples!.every((s) => s.allocator === 'tcmalloc')).toBe(true);
      expect(alarms(r)).toEqual([]);
      expect(r.notes).toEqual([]);
    },
  );

  testIf(mimalloc !== null, `${ALLOCATOR_LIBRARIES.mimalloc} not installed (apt-get install libmimalloc2.0)`)(
    'the same healthy process under mimalloc gets no warning and no critical finding',
    async () => {
      const r = await runScenario('doctor-healthy', { preload: mimalloc });
      expect(r.samples!.every((s) => s.allocator === 'mimalloc')).toBe(true);
      expect(alarms(r)).toEqual([]);
      // mimalloc does not count its allocated bytes: held back is unknown, and the doctor says so.
      expect(r.notes.join(' ')).toMatch(/unknown/);
    },
  );
});
