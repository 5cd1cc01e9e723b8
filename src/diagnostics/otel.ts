// OpenTelemetry: observable instruments on a Meter from @opentelemetry/api (an optional peer
// dependency: only the Meter the caller passes is used, nothing is imported). One batch
// callback samples once per collection and feeds every instrument.
import { typeError } from '../core/errors';
import { optionsObject } from '../core/validate';
import { METRICS } from './metrics';
import { minInterval } from './prometheus';
import { snapshot } from './snapshot';

// The parts of @opentelemetry/api's Meter used here, typed structurally.
type Attributes = Record<string, string>;
/** An observable instrument of @opentelemetry/api. */
export interface OtelObservable {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  addCallback(callback: (result: any) => void): void;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  removeCallback(callback: (result: any) => void): void;
}
interface BatchObservableResult {
  observe(instrument: OtelObservable, value: number, attributes?: Attributes): void;
}
type BatchCallback = (observer: BatchObservableResult) => void | Promise<void>;
interface InstrumentOptions {
  description?: string;
  unit?: string;
}
/** An OpenTelemetry Meter (`metrics.getMeter(name)` from @opentelemetry/api ≥ 1.3). */
export interface OtelMeter {
  createObservableGauge(name: string, options?: InstrumentOptions): OtelObservable;
  createObservableCounter(name: string, options?: InstrumentOptions): OtelObservable;
  addBatchObservableCallback(callback: BatchCallback, observables: OtelObservable[]): void;
  removeBatchObservableCallback(callback: BatchCallback, observables: OtelObservable[]): void;
}

export interface OtelMetricsOptions {
  /** Prefix of every instrument name. Default 'allocator.'. */
  prefix?: string;
  /** Collections within this many milliseconds share one sample. Default 1000. */
  minIntervalMs?: number;
}

export interface OtelMetricsHandle {
  readonly names: readonly string[];
  /** Stops observing (the instruments stay registered in the Meter but report nothing). */
  unregister(): void;
}

const OPTIONS = ['prefix', 'minIntervalMs'] as const;
const OTEL_NAME = /^[A-Za-z][A-Za-z0-9_.\-/]*$|^$/;

/** Registers observable gauges and counters for the allocator numbers on `meter`. */
export function registerOtelMetrics(meter: OtelMeter, options?: OtelMetricsOptions): OtelMetricsHandle {
  if (meter === null || typeof meter !== 'object' || typeof meter.addBatchObservableCallback !== 'function') {
    throw typeError('an OpenTelemetry Meter', 'meter', meter);
  }
  const o = optionsObject<OtelMetricsOptions>(options, 'options', OPTIONS);
  let prefix = 'allocator.';
  if (o.prefix !== undefined) {
    if (typeof o.prefix !== 'string' || !OTEL_NAME.test(o.prefix)) throw typeError('an instrument name prefix', 'options.prefix', o.prefix);
    prefix = o.prefix;
  }
  const maxAgeMs = minInterval(o.minIntervalMs, 'options.minIntervalMs');
  const instruments = METRICS.map((m) => {
    const opts = { description: m.help, unit: m.unit };
    const name = prefix + m.otel;
    return { m, name, instrument: m.type === 'counter' ? meter.createObservableCounter(name, opts) : meter.createObservableGauge(name, opts) };
  });
  const callback: BatchCallback = async (observer) => {
    const s = await snapshot(maxAgeMs);
    for (const { m, instrument } of instruments) {
      for (const p of m.points(s)) observer.observe(instrument, p.value, p.labels);
    }
  };
  const observables = instruments.map((i) => i.instrument);
  meter.addBatchObservableCallback(callback, observables);
  return {
    names: instruments.map((i) => i.name),
    unregister: () => meter.removeBatchObservableCallback(callback, observables),
  };
}
