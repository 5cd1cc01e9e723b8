// The doctor's rules: pure functions from an analysed window (trends of each part of RSS) and
// the process's context to findings. No clock, no I/O: tested directly.
import { allocatorOfLibrary, allocatorRow } from '../allocators/registry';
import { envHas } from '../allocators/types';
import type { AllocatorName } from '../types';
import { inUse, nativeInUse } from './parts';
import { BUSY_ELU, FOLLOW_MIN_CORRELATION, JEMALLOC_DECAY_MS, NODE_BASELINE_ARENAS, type Thresholds } from './thresholds';
import { known, mean, spearman, trend, type Point, type Trend } from './trend';
import type { DiagnoseContext, Finding, MonitorSample, Severity } from './types';

const MiB = 1024 * 1024;
const HOUR_MS = 3_600_000;
/** Without a trend verdict, held back at the end is the median of this many last samples: one sample right after a free would overstate it. */
const END_SAMPLES = 3;

export interface Analysis {
  /** Samples after the grace period, oldest first. */
  samples: MonitorSample[];
  /** Whether the window is long enough, with enough samples, for trend verdicts. */
  enough: boolean;
  heap: Trend | null;
  arrayBuffers: Trend | null;
  native: Trend | null;
  /** Bucket medians of in-use memory (heap used + malloc in use): rises and falls of work. */
  inUse: Trend | null;
  rss: Trend | null;
  heldBack: Trend | null;
  /** Latest cgroup numbers with a limit, or null (unlimited or not in a cgroup). */
  cgroup: { limit: number; usage: number | null } | null;
  allocator: AllocatorName;
}

export function analyse(samples: readonly MonitorSample[], t: Thresholds): Analysis {
  const sorted = [...samples].sort((a, b) => a.time - b.time);
  const first = sorted.length ? sorted[0].time : 0;
  const judged = sorted.filter((s) => s.time >= first + t.graceMs);
  const span = judged.length ? judged[judged.length - 1].time - judged[0].time : 0;
  const enough = judged.length >= t.minSamples && span >= t.minWindowMs;
  const series = (f: (s: MonitorSample) => number | null | undefined): Point[] => known(judged, (s) => s.time, f);
  const tr = (f: (s: MonitorSample) => number | null | undefined, stat: 'min' | 'median'): Trend | null => (enough ? trend(series(f), stat) : null);
  let cgroup: Analysis['cgroup'] = null;
  for (let i = sorted.length - 1; i >= 0; i--) {
    const c = sorted[i].cgroup;
    if (c && typeof c.limit === 'number' && Number.isFinite(c.limit)) {
      cgroup = { limit: c.limit, usage: c.usage ?? null };
      break;
    }
  }
  return {
    samples: judged,
    enough,
    heap: tr((s) => s.heapUsed, 'min'),
    arrayBuffers: tr((s) => s.arrayBuffers, 'min'),
    native: tr(nativeInUse, 'min'),
    inUse: tr(inUse, 'median'),
    rss: tr((s) => s.rss ?? s.rssAnon, 'min'),
    heldBack: tr((s) => s.heldBack, 'median'),
    cgroup,
    allocator: sorted.length ? sorted[sorted.length - 1].allocator : 'unknown',
  };
}

/** A part grows: a significant rise, above the byte floor and the ratio, that did not drain. */
export function growing(tr: Trend | null, t: Thresholds): boolean {
  if (!tr) return false;
  const net = tr.end - tr.start;
  const drained = tr.peak - tr.end >= t.drainMinFraction * (tr.peak - tr.start);
  return (
    tr.pRising <= t.trendMaxP &&
    net >= t.growthMinBytes &&
    tr.rise >= t.growthMinBytes / 2 &&
    net >= t.growthMinRatio * Math.max(tr.start, 0) &&
    !(tr.peak - tr.start > 0 && drained && tr.peak > tr.end)
  );
}

/** A part rose above the floor and fell back by most of its rise. */
export function drained(tr: Trend | null, t: Thresholds): boolean {
  if (!tr) return false;
  const rise = tr.peak - lowBeforePeak(tr);
  const last = tr.points[tr.points.length - 1];
  return rise >= t.growthMinBytes && tr.peakTime < last.t && tr.peak - tr.end >= t.drainMinFraction * rise;
}

/** The lowest bucket value up to the peak: where the rise started. */
export function lowBeforePeak(tr: Trend): number {
  return Math.min(...tr.points.filter((p) => p.t <= tr.peakTime).map((p) => p.v));
}

export function mib(bytes: number | null | undefined): string {
  if (bytes === null || bytes === undefined || !Number.isFinite(bytes)) return 'unknown';
  return `${(bytes / MiB).toFixed(Math.abs(bytes) < 10 * MiB ? 1 : 0)} MiB`;
}

function duration(ms: number): string {
  if (ms < 120_000) return `${Math.round(ms / 1000)} s`;
  if (ms < 2 * HOUR_MS) return `${Math.round(ms / 60_000)} min`;
  if (ms < 48 * HOUR_MS) return `${(ms / HOUR_MS).toFixed(1)} h`;
  return `${(ms / 24 / HOUR_MS).toFixed(1)} days`;
}

function trendEvidence(tr: Trend): Record<string, unknown> {
  return {
    startBytes: Math.round(tr.start),
    endBytes: Math.round(tr.end),
    riseBytes: Math.round(tr.end - tr.start),
    slopeBytesPerHour: Math.round(tr.slope * HOUR_MS),
    pValue: Number(tr.pRising.toPrecision(3)),
    windowMs: Math.round(tr.spanMs),
  };
}

/** Time until RSS meets the cgroup limit at `slope` (bytes/ms), raising the severity as it nears. */
function projection(a: Analysis, slope: number, t: Thresholds): { severity: Severity; text: string; evidence: Record<string, unknown> } {
  const last = a.samples[a.samples.length - 1];
  if (!a.cgroup) return { severity: 'warning', text: '', evidence: { cgroup: null } };
  const used = a.cgroup.usage ?? last?.rss ?? null;
  const evidence: Record<string, unknown> = { cgroup: { limit: a.cgroup.limit, usage: a.cgroup.usage } };
  if (used === null || !(slope > 0)) return { severity: 'warning', text: '', evidence };
  const ms = Math.max(0, (a.cgroup.limit - used) / slope);
  evidence.timeToLimitMs = Math.round(ms);
  const severity: Severity = ms <= t.criticalHorizonMs ? 'critical' : 'warning';
  return { severity, text: ` At this rate the container reaches its memory limit (${mib(a.cgroup.limit)}) in about ${duration(ms)}: then the kernel OOM-kills it.`, evidence };
}

/** What a growing part of RSS is called, and what to do about it. */
interface Growth {
  id: string;
  title: string;
  what: string;
  advice: string[];
}

const JS_HEAP_GROWTH: Growth = {
  id: 'js-heap-growth',
  title: 'The V8 heap grows: a JS leak, or a backlog of JS objects',
  what: 'The V8 heap in use',
  advice: [
    "Take two heap snapshots minutes apart (require('node:v8').writeHeapSnapshot(), or start node with --heapsnapshot-signal=SIGUSR2 and send kill -USR2 <pid>), open both in Chrome DevTools → Memory and use the Comparison view: the constructors whose count keeps rising are what is kept.",
    'Look for collections that only grow: caches without eviction, listeners added per request, maps keyed by ids that never expire, promises that never settle.',
    'If a tracked queue depth grows with it, the objects are work waiting, not a leak: see whether the consumer keeps up.',
  ],
};

const ARRAY_BUFFER_GROWTH: Growth = {
  id: 'arraybuffer-growth',
  title: 'ArrayBuffers and Buffers held from JS grow',
  what: 'Memory of ArrayBuffers/Buffers',
  advice: [
    'Something in JS keeps Buffers or typed arrays: a heap snapshot (Comparison view, filter ArrayBuffer / Buffer / Uint8Array) shows who retains them.',
    'A small slice of a large Buffer (buf.subarray(), Buffer pools) keeps the whole parent alive: copy what you keep (Buffer.from(slice)).',
    'Streams with a consumer slower than the producer buffer chunks: check writableLength / readableLength and backpressure (write() returning false).',
  ],
};

const NATIVE_GROWTH: Growth = {
  id: 'native-growth',
  title: 'Memory malloc()ed outside V8 grows while the JS heap and ArrayBuffers are flat',
  what: 'Malloc in use outside the V8 heap and ArrayBuffers',
  advice: [
    'A native addon (or a library it wraps) allocates and does not free: a heap snapshot will show nothing. Record native allocations with heaptrack (heaptrack node app.js), valgrind --leak-check=full, or a jemalloc built with profiling (MALLOC_CONF=prof:true,prof_leak:true).',
    'Data queued between threads (worker postMessage, a native thread pool, a producer faster than its consumer) looks the same while it builds up: track the queue depth with monitor.track(name, fn); a backlog follows it and drains when the work does.',
    'Profilers and debuggers slow the consumer they observe and can cause the very backlog they report: confirm a finding on an unprofiled run.',
  ],
};

/** The finding for a part of RSS that grows; null when `tr` does not. */
function growthFinding(growth: Growth, tr: Trend | null, a: Analysis, t: Thresholds): Finding | null {
  if (!tr || !growing(tr, t)) return null;
  const p = projection(a, tr.slope, t);
  return {
    id: growth.id,
    severity: p.severity,
    title: growth.title,
    summary:
      `${growth.what} rose from ${mib(tr.start)} to ${mib(tr.end)} over ${duration(tr.spanMs)} ` +
      `(about ${mib(tr.slope * HOUR_MS)} per hour, judged on the minima between collections; Mann–Kendall p = ${tr.pRising.toPrecision(2)}).${p.text}`,
    evidence: { ...trendEvidence(tr), ...p.evidence },
    advice: [...growth.advice],
  };
}

export function jsHeapGrowth(a: Analysis, t: Thresholds): Finding | null {
  return growthFinding(JS_HEAP_GROWTH, a.heap, a, t);
}

export function arrayBufferGrowth(a: Analysis, t: Thresholds): Finding | null {
  return growthFinding(ARRAY_BUFFER_GROWTH, a.arrayBuffers, a, t);
}

export function nativeGrowth(a: Analysis, t: Thresholds): Finding | null {
  if (growing(a.heap, t) || growing(a.arrayBuffers, t)) return null;
  return growthFinding(NATIVE_GROWTH, a.native, a, t);
}

function eluOver(samples: readonly MonitorSample[], from: number, to: number): number | null {
  const v = samples.filter((s) => s.time >= from && s.time <= to && typeof s.elu === 'number').map((s) => s.elu as number);
  return v.length ? mean(v) : null;
}

/** Gauges that rise and fall with in-use memory (Spearman ≥ FOLLOW_MIN_CORRELATION). */
function followingGauges(a: Analysis): Array<{ name: string; correlation: number; peak: number; last: number }> {
  const names = new Set<string>();
  for (const s of a.samples) for (const k of Object.keys(s.gauges ?? {})) names.add(k);
  const out: Array<{ name: string; correlation: number; peak: number; last: number }> = [];
  for (const name of names) {
    const pairs = a.samples
      .map((s) => [s.gauges?.[name], inUse(s)] as const)
      .filter((p): p is readonly [number, number] => typeof p[0] === 'number' && Number.isFinite(p[0]) && typeof p[1] === 'number');
    const r = spearman(
      pairs.map((p) => p[0]),
      pairs.map((p) => p[1]),
    );
    if (r >= FOLLOW_MIN_CORRELATION) {
      out.push({ name, correlation: Number(r.toFixed(2)), peak: Math.max(...pairs.map((p) => p[0])), last: pairs[pairs.length - 1][0] });
    }
  }
  return out;
}

export function backlog(a: Analysis, t: Thresholds, growthFound: boolean): Finding | null {
  const tr = a.inUse;
  if (!tr) return null;
  const gauges = followingGauges(a);
  if (drained(tr, t)) {
    const low = lowBeforePeak(tr);
    const rise = tr.peak - low;
    const fell = tr.peak - tr.end;
    const startT = a.samples[0].time;
    const endT = a.samples[a.samples.length - 1].time;
    const eluRising = eluOver(a.samples, startT, tr.peakTime);
    const eluAfter = eluOver(a.samples, tr.peakTime, endT);
    const peakAt = new Date(tr.peakTime).toISOString();
    return {
      id: 'backlog',
      severity: 'info',
      title: 'A backlog built up and drained: not a leak',
      summary:
        `In-use memory (${a.samples.some((x) => (x.heapUsed ?? 0) > 0) ? 'V8 heap plus malloc in use' : 'malloc in use: the program has no V8 heap'}) rose by ${mib(rise)} to a peak at ${peakAt} and then fell back by ${mib(fell)} ` +
        `(${fell >= rise ? 'all' : `${Math.round((fell / rise) * 100)} %`} of the rise) once the work drained` +
        (gauges.length ? `, following ${gauges.map((g) => `'${g.name}'`).join(', ')}` : '') +
        '. Memory that comes back when the work is done was held by work in progress, not leaked.',
      evidence: {
        startBytes: Math.round(low),
        peakBytes: Math.round(tr.peak),
        endBytes: Math.round(tr.end),
        riseBytes: Math.round(rise),
        fellBackBytes: Math.round(fell),
        peakTime: tr.peakTime,
        eluWhileRising: eluRising === null ? null : Number(eluRising.toFixed(2)),
        eluAfterPeak: eluAfter === null ? null : Number(eluAfter.toFixed(2)),
        gauges,
      },
      advice: [
        'Size the peak, not a leak: the peak is what the container limit must hold. Bound the queue (backpressure, a maximum in flight) if the peak is too high.',
        'If RSS stayed up after in-use memory fell, the allocator kept the freed memory: see allocator-retention.',
      ],
    };
  }
  if (!growthFound) return null;
  const half = a.samples[Math.floor(a.samples.length / 2)]?.time ?? tr.points[0].t;
  const elu = eluOver(a.samples, half, a.samples[a.samples.length - 1].time);
  const busy = elu !== null && elu >= BUSY_ELU;
  if (!busy && gauges.length === 0) return null;
  return {
    id: 'backlog',
    severity: 'info',
    title: 'The growth may be a backlog',
    summary:
      'Memory is still rising' +
      (busy ? ` while the event loop is saturated (utilisation ${elu!.toFixed(2)})` : '') +
      (gauges.length ? `${busy ? ' and' : ''} together with ${gauges.map((g) => `'${g.name}'`).join(', ')}` : '') +
      ': work may be arriving faster than it is done. A backlog drains when the load drops; a leak does not.',
    evidence: { eluLastHalf: elu === null ? null : Number(elu.toFixed(2)), gauges },
    advice: [
      'What tells: reduce or stop the load for a while; if in-use memory falls back, it was a backlog. Track the queue depth with monitor.track(name, fn) so the doctor can compare.',
      'A slower consumer (a profiler attached, a debug build, a saturated event loop) creates a backlog by itself: compare with an unprofiled run.',
    ],
  };
}

export function retentionAdvice(name: AllocatorName, context: DiagnoseContext, releasable: number | null, heldBack: number): string[] {
  const trimAdvice =
    context.autoTrim === true
      ? null
      : `Give it back: call trim() after a burst, or startAutoTrim() to trim when worth it${releasable !== null ? ` (a trim would return about ${mib(releasable)} now)` : ''}.`;
  // What to advise depends on the allocator: its registry row says.
  return (
    allocatorRow(name)?.retentionAdvice?.({
      env: context.env ?? {},
      threads: context.threads,
      backgroundThread: context.backgroundThread,
      version: context.allocator?.version ?? null,
      trimAdvice,
      releasable,
      heldBack,
      fragmented: releasable !== null && heldBack - releasable > heldBack / 2,
    }) ?? []
  );
}

export function allocatorRetention(a: Analysis, t: Thresholds, context: DiagnoseContext): Finding | null {
  const last = [...a.samples].reverse().find((s) => typeof s.heldBack === 'number' && typeof (s.rss ?? s.rssAnon) === 'number');
  const end = heldBackAtEnd(a);
  if (!a.enough || !last || !a.heldBack || !end) return null;
  const { bytes: heldBack, rss } = end;
  if (!material(heldBack, rss, t)) return null;
  if (growing(a.inUse, t)) return null;
  const releasable = typeof last.releasable === 'number' ? Math.min(last.releasable, heldBack) : null;
  const name = context.allocator?.name ?? a.allocator;
  const fragmentation = releasable === null ? null : Math.max(0, heldBack - releasable);
  const trimmed = a.samples.reduce((sum, s) => sum + (typeof s.trimmedBytes === 'number' ? s.trimmedBytes : 0), 0);
  return {
    id: 'allocator-retention',
    severity: 'warning',
    title: `${name} keeps freed memory instead of returning it to the OS`,
    summary:
      `${name} holds back ${mib(heldBack)} (${Math.round((heldBack / rss) * 100)} % of RSS ${mib(rss)}) that the program freed, while in-use memory is flat or falling. ` +
      (releasable === null
        ? 'How much of it a trim would return is unknown.'
        : `A trim would return about ${mib(releasable)}; ${mib(fragmentation)} is fragmentation (free space inside pages still partly used) that no trim returns.`) +
      ' Heap snapshots show none of this: it is not held by the program.',
    evidence: {
      heldBackBytes: heldBack,
      releasableBytes: releasable,
      fragmentationBytes: fragmentation,
      rssBytes: rss,
      shareOfRss: Number((heldBack / rss).toFixed(3)),
      inUseStartBytes: a.inUse ? Math.round(a.inUse.start) : null,
      inUseEndBytes: a.inUse ? Math.round(a.inUse.end) : null,
      trimmedBytesInWindow: trimmed,
      allocator: name,
    },
    advice: retentionAdvice(name, context, releasable, heldBack),
  };
}

/** RSS grows and the parts above do not explain at least half of it (or cannot be seen). */
export function unaccountedGrowth(a: Analysis, t: Thresholds, explained: boolean): Finding | null {
  if (explained || !growing(a.rss, t)) return null;
  const tr = a.rss!;
  const rise = tr.end - tr.start;
  const partsKnown = a.samples.some((s) => typeof s.heapTotal === 'number' && typeof s.allocated === 'number');
  const partRise = (f: (s: MonitorSample) => number | null): number | null => {
    const pts = known(a.samples, (s) => s.time, f);
    const tt = trend(pts, 'median');
    return tt ? tt.end - tt.start : null;
  };
  let explainedBytes: number | null = null;
  if (partsKnown) {
    explainedBytes = [partRise((s) => s.heapTotal), partRise((s) => s.allocated), partRise((s) => s.heldBack)].reduce<number>((x, y) => x + Math.max(0, y ?? 0), 0);
    if (explainedBytes >= rise / 2) return null;
  }
  const p = projection(a, tr.slope, t);
  return {
    id: 'unaccounted-growth',
    severity: p.severity,
    title: partsKnown ? 'RSS grows outside the V8 heap and the allocator' : 'RSS grows (its parts are not observable from outside the process)',
    summary:
      `RSS rose from ${mib(tr.start)} to ${mib(tr.end)} over ${duration(tr.spanMs)} (about ${mib(tr.slope * HOUR_MS)} per hour). ` +
      (partsKnown
        ? `The V8 heap, malloc in use and held-back memory explain ${mib(explainedBytes)} of it: the rest is thread stacks, mmap()ed files or regions, or an addon with its own allocator.`
        : 'Without the V8 and allocator numbers the doctor cannot tell which part grows: run the monitor inside the process (createMonitor()) to split it.') +
      p.text,
    evidence: { ...trendEvidence(tr), explainedBytes, ...p.evidence },
    advice: partsKnown
      ? [
          'Compare /proc/<pid>/smaps (or pmap -x <pid>) at two points in time: the mappings that grow name the culprit (anonymous regions of 8 MiB are thread stacks; file names are mapped files).',
          'Count threads (ls /proc/<pid>/task | wc -l): a thread that never ends keeps its stack.',
          'An addon with its own allocator (or mmap) is invisible to malloc statistics: check the addons the process loads.',
        ]
      : ['Sample from inside: const m = createMonitor(); … diagnose(m) splits RSS into V8 heap, ArrayBuffers, malloc in use and held back.'],
  };
}


export function preloadNotEffective(context: DiagnoseContext, sampled: AllocatorName | null): Finding | null {
  const preload = context.env?.LD_PRELOAD;
  const serving = context.allocator?.name ?? sampled;
  if (!preload || !serving || serving === 'unknown') return null;
  for (const entry of preload.split(/[\s:]+/).filter(Boolean)) {
    const wanted = allocatorOfLibrary(entry);
    if (wanted && wanted !== serving) {
      return {
        id: 'preload-not-effective',
        severity: 'warning',
        title: `LD_PRELOAD names ${wanted}, but ${serving} serves malloc()`,
        summary: `LD_PRELOAD=${preload} asks for ${wanted}, yet ${serving} serves malloc() in this process: the preload did not take effect, and whatever it was meant to fix is not fixed.`,
        evidence: { LD_PRELOAD: preload, wanted, serving },
        advice: [
          `Check that ${entry} exists and matches the architecture (ls -l, file ${entry}); a missing library only prints a warning on stderr.`,
          'Set LD_PRELOAD in the environment of the node process itself (not of a wrapper that drops the environment); setuid binaries ignore it.',
          'A node binary that links an allocator statically, or a library loaded with RTLD_DEEPBIND, keeps its own malloc.',
        ],
      };
    }
  }
  return null;
}

/**
 * Held back at the end of the window, and the RSS it is a share of. The level of the last
 * bucket (its median when trends were judged, else of the last samples): one sample right after
 * a free would overstate it. But never more than the last sample's own figure: RSS is the last
 * sample's, and a drop in the last bucket (threads exiting) would otherwise be read as more held
 * back than the process has.
 */
function heldBackAtEnd(a: Analysis): { bytes: number; rss: number } | null {
  const known = a.samples.filter((s) => typeof s.heldBack === 'number' && typeof (s.rss ?? s.rssAnon) === 'number');
  if (!known.length) return null;
  const last = known[known.length - 1];
  const tail = known.slice(-END_SAMPLES).map((s) => s.heldBack as number).sort((x, y) => x - y);
  const level = a.heldBack ? Math.round(a.heldBack.end) : tail[Math.floor(tail.length / 2)];
  return { bytes: Math.min(level, last.heldBack as number), rss: (last.rss ?? last.rssAnon) as number };
}

/** At least retentionMinBytes and retentionMinShare of RSS: the same floor as allocator-retention. */
function material(bytes: number, rss: number, t: Thresholds): boolean {
  return bytes >= t.retentionMinBytes && rss > 0 && bytes / rss >= t.retentionMinShare;
}

export function glibcManyThreads(a: Analysis, t: Thresholds, context: DiagnoseContext, sampled: AllocatorName | null): Finding | null {
  const name = context.allocator?.name ?? sampled;
  if (name !== 'glibc') return null;
  const limit = context.env?.MALLOC_ARENA_MAX;
  // Set to no more than Node's own arenas (or to something glibc cannot read as a number): the
  // program's threads already share arenas, or the setting is the operator's to fix.
  if (limit !== undefined && !(Number(limit) > NODE_BASELINE_ARENAS)) return null;
  const arenas = [...a.samples].reverse().find((s) => typeof s.arenas === 'number')?.arenas ?? null;
  if (arenas === null || arenas <= NODE_BASELINE_ARENAS) return null;
  const held = heldBackAtEnd(a);
  if (!held || !material(held.bytes, held.rss, t)) return null;
  return {
    id: 'glibc-many-threads',
    severity: 'info',
    title: `glibc has ${arenas} arenas, each keeping its own freed pages`,
    summary:
      `glibc gives each thread that mallocs its own arena (up to 8 per core) and each arena keeps the pages freed in it. ` +
      `This process has ${arenas} arenas, more than the ${NODE_BASELINE_ARENAS} that Node's own threads account for: its own threads ` +
      `(worker_threads, addon pools) allocate, and glibc holds back ${mib(held.bytes)} (${Math.round((held.bytes / held.rss) * 100)} % of RSS).`,
    evidence: {
      arenas,
      baselineArenas: NODE_BASELINE_ARENAS,
      heldBackBytes: held.bytes,
      rssBytes: held.rss,
      threads: typeof context.threads === 'number' ? context.threads : null,
      MALLOC_ARENA_MAX: limit ?? null,
    },
    advice: [
      `MALLOC_ARENA_MAX=2 limits the arenas${limit !== undefined ? ` (now ${limit})` : ''} (measured here on six churning workers: 581 → 487 MiB), or preload jemalloc with MALLOC_CONF=background_thread:true.`,
    ],
  };
}

/** The longest time jemalloc takes to return freed pages (dirty, then muzzy) under MALLOC_CONF; null when decay is off. */
export function jemallocDecayMs(conf: string | undefined): number | null {
  const get = (key: string): number => {
    const m = new RegExp(`(?:^|,)${key}:(-?\\d+)`).exec(conf ?? '');
    return m ? Number(m[1]) : JEMALLOC_DECAY_MS;
  };
  const dirty = get('dirty_decay_ms');
  const muzzy = get('muzzy_decay_ms');
  // -1: pages are never purged, with or without background threads.
  if (dirty < 0 || muzzy < 0) return null;
  return Math.max(dirty, muzzy);
}

export function jemallocNoBackgroundThread(a: Analysis, t: Thresholds, context: DiagnoseContext, sampled: AllocatorName | null): Finding | null {
  const name = context.allocator?.name ?? sampled;
  const conf = context.env?.MALLOC_CONF;
  if (name !== 'jemalloc' || context.backgroundThread !== false || envHas(conf, /background_thread:true/)) return null;
  const decayMs = jemallocDecayMs(conf);
  if (decayMs === null) return null;
  // Freed pages (dirty and muzzy: what a purge returns) held above the floor at every sample of
  // the end of the window, for longer than decay takes: no thread decayed them.
  const known = a.samples.filter((s) => typeof s.releasable === 'number');
  let from = known.length;
  while (from > 0 && (known[from - 1].releasable as number) >= t.retentionMinBytes) from--;
  if (from === known.length) return null;
  const run = known.slice(from);
  const last = run[run.length - 1];
  const heldForMs = last.time - run[0].time;
  const held = Math.min(...run.map((s) => s.releasable as number));
  const rss = last.rss ?? last.rssAnon;
  if (heldForMs < decayMs || rss === null || !material(held, rss, t)) return null;
  return {
    id: 'jemalloc-no-background-thread',
    severity: 'info',
    title: 'jemalloc keeps freed pages that no thread decays: background threads are off',
    summary:
      `jemalloc has held at least ${mib(held)} of freed pages (${Math.round((held / rss) * 100)} % of RSS) for ${Math.round(heldForMs / 1000)} s, ` +
      `longer than its decay time (${Math.round(decayMs / 1000)} s). Without background threads jemalloc decays pages only when a thread allocates in their arena: ` +
      'threads that freed memory and then idle (a worker pool between bursts) keep it.',
    evidence: { heldBytes: held, heldForMs: Math.round(heldForMs), decayMs, rssBytes: rss, backgroundThread: false, MALLOC_CONF: conf ?? null },
    advice: ['MALLOC_CONF=background_thread:true (measured here: 735 MiB kept without, 82 MiB with, on six churning workers that then idle).'],
  };
}
