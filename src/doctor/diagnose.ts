// diagnose(): which part of RSS grows, and why, from samples over time.
import { typeError } from '../core/errors';
import { optionalInteger, optionalNumber, optionsObject } from '../core/validate';
import { split } from './parts';
import {
  allocatorRetention,
  analyse,
  arrayBufferGrowth,
  backlog,
  glibcManyThreads,
  jemallocNoBackgroundThread,
  jsHeapGrowth,
  nativeGrowth,
  preloadNotEffective,
  unaccountedGrowth,
} from './rules';
import { DEFAULT_THRESHOLDS, type Thresholds } from './thresholds';
import type { DiagnoseContext, DiagnoseOptions, DiagnoseThresholds, Diagnosis, Finding, Monitor, MonitorSample } from './types';

const OPTIONS = ['context', 'now', ...Object.keys(DEFAULT_THRESHOLDS)] as const;
const SEVERITY_ORDER = { critical: 0, warning: 1, info: 2 } as const;
const INTEGER_OPTIONS = new Set(['graceMs', 'minWindowMs', 'minSamples', 'growthMinBytes', 'retentionMinBytes', 'criticalHorizonMs']);

function isMonitor(input: unknown): input is Monitor {
  return typeof input === 'object' && input !== null && typeof (input as Monitor).samples === 'function' && typeof (input as Monitor).context === 'function';
}

// By index, not forEach: a hole in a sparse array is a missing sample, not one to skip.
function checkSamples(input: readonly unknown[], name: string): MonitorSample[] {
  for (let i = 0; i < input.length; i++) {
    const s = input[i];
    if (typeof s !== 'object' || s === null) throw typeError('a MonitorSample object', `${name}[${i}]`, s);
    const time = (s as MonitorSample).time;
    if (typeof time !== 'number' || !Number.isFinite(time)) throw typeError('a finite number (ms since the epoch)', `${name}[${i}].time`, time);
  }
  return [...(input as MonitorSample[])].sort((a, b) => a.time - b.time);
}

function thresholds(o: Partial<DiagnoseOptions>, prefix: string): Thresholds {
  const t = { ...DEFAULT_THRESHOLDS } as Thresholds;
  for (const key of Object.keys(DEFAULT_THRESHOLDS) as Array<keyof Thresholds>) {
    const name = `${prefix}.${key}`;
    if (INTEGER_OPTIONS.has(key)) t[key] = optionalInteger(o[key], name, t[key]);
    else t[key] = optionalNumber(o[key], name, t[key], 0, 1);
  }
  return t;
}

/**
 * Checks diagnose() thresholds given apart from diagnose() (the endpoint's `options.doctor`):
 * only threshold names, every value in range, errors naming `name`.
 */
export function checkThresholds(value: unknown, name: string): DiagnoseThresholds {
  const o = optionsObject<DiagnoseThresholds>(value, name, Object.keys(DEFAULT_THRESHOLDS));
  thresholds(o as Partial<DiagnoseOptions>, name);
  return { ...o };
}

function contextOption(value: unknown): DiagnoseContext {
  if (value === undefined) return {};
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw typeError('an object', 'options.context', value);
  return value as DiagnoseContext;
}

/**
 * Judges the trend of each part of RSS over the samples of a monitor (or an array of samples)
 * and names what grows and why. Short or nearly empty windows yield no trend verdict (see
 * `notes`), never a wrong one.
 */
export function diagnose(input: Monitor | readonly MonitorSample[], options?: DiagnoseOptions): Diagnosis {
  let samples: MonitorSample[];
  let context: DiagnoseContext = {};
  if (isMonitor(input)) {
    const given = input.samples();
    if (!Array.isArray(given)) throw typeError('an array of MonitorSample', 'input.samples()', given);
    samples = checkSamples(given, 'input.samples()');
    context = input.context();
    if (typeof context !== 'object' || context === null || Array.isArray(context)) throw typeError('an object', 'input.context()', context);
  } else if (Array.isArray(input)) {
    samples = checkSamples(input, 'input');
  } else {
    throw typeError('a Monitor or an array of MonitorSample', 'input', input);
  }
  const o = optionsObject<DiagnoseOptions>(options, 'options', OPTIONS);
  const t = thresholds(o, 'options');
  const given = contextOption(o.context);
  context = { ...context, ...given, env: { ...context.env, ...given.env } };
  if (o.now !== undefined && (typeof o.now !== 'number' || !Number.isFinite(o.now))) throw typeError('a finite number (ms since the epoch)', 'options.now', o.now);
  const now = o.now ?? (samples.length ? samples[samples.length - 1].time : Date.now());
  samples = samples.filter((s) => s.time <= now);

  const notes: string[] = [];
  const a = analyse(samples, t);
  const sampled = samples.length ? samples[samples.length - 1].allocator : null;
  const findings: Finding[] = [];
  const add = (f: Finding | null): void => {
    if (f) findings.push(f);
  };
  if (!a.enough) {
    const span = a.samples.length ? a.samples[a.samples.length - 1].time - a.samples[0].time : 0;
    notes.push(
      `No trend verdict: ${a.samples.length} samples over ${Math.round(span / 1000)} s after a ${Math.round(t.graceMs / 1000)} s start-up grace period; ` +
        `the doctor needs at least ${t.minSamples} samples over ${Math.round(t.minWindowMs / 1000)} s.`,
    );
  } else {
    if (!a.heap) notes.push('The V8 heap is unknown in these samples: JS growth cannot be judged.');
    if (!a.native) notes.push('Malloc in use is unknown in these samples (allocator or ArrayBuffers not reported): native growth cannot be judged.');
    if (!a.heldBack) notes.push('Held-back memory is unknown in these samples: allocator retention cannot be judged.');
    const growth = [jsHeapGrowth(a, t), arrayBufferGrowth(a, t), nativeGrowth(a, t)].filter((f): f is Finding => f !== null);
    findings.push(...growth);
    const retention = allocatorRetention(a, t, context);
    add(backlog(a, t, growth.length > 0));
    add(retention);
    add(unaccountedGrowth(a, t, growth.length > 0 || retention !== null));
  }
  add(preloadNotEffective(context, sampled));
  add(glibcManyThreads(a, t, context, sampled));
  add(jemallocNoBackgroundThread(a, t, context, sampled));
  findings.sort((x, y) => SEVERITY_ORDER[x.severity] - SEVERITY_ORDER[y.severity]);
  return {
    findings,
    parts: samples.map(split),
    window: { start: samples.length ? samples[0].time : now, end: samples.length ? samples[samples.length - 1].time : now, samples: samples.length },
    notes,
  };
}
