// Prometheus: the text exposition format 0.0.4 for the endpoint, and gauges/counters for a
// prom-client registry (an optional peer dependency, loaded only when asked for).
import { withCode, typeError } from '../core/errors';
import { optionalInteger, optionsObject } from '../core/validate';
import { METRICS, type Labels } from './metrics';
import { snapshot, type DiagnosticSnapshot } from './snapshot';

export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';
export const DEFAULT_METRICS_PREFIX = 'allocator_';
export const DEFAULT_MIN_INTERVAL_MS = 1000;
const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;

export function metricsPrefix(value: unknown, name: string): string {
  if (value === undefined) return DEFAULT_METRICS_PREFIX;
  if (typeof value !== 'string') throw typeError('a string', name, value);
  if (value !== '' && !METRIC_NAME.test(value)) {
    throw typeError('a Prometheus metric name prefix ([a-zA-Z_:][a-zA-Z0-9_:]*)', name, value);
  }
  return value;
}

export function minInterval(value: unknown, name: string): number {
  return optionalInteger(value, name, DEFAULT_MIN_INTERVAL_MS, 0, 3_600_000);
}

const escapeHelp = (s: string): string => s.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
const escapeLabel = (s: string): string => s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');

function labelText(labels: Labels): string {
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${escapeLabel(v)}"`);
  return parts.length ? `{${parts.join(',')}}` : '';
}

/** The snapshot in the Prometheus text format 0.0.4. Families without a known value are left out. */
export function exposition(s: DiagnosticSnapshot, prefix: string): string {
  const lines: string[] = [];
  for (const m of METRICS) {
    const points = m.points(s);
    if (!points.length) continue;
    const name = prefix + m.prom;
    lines.push(`# HELP ${name} ${escapeHelp(m.help)}`, `# TYPE ${name} ${m.type}`);
    for (const p of points) lines.push(`${name}${labelText(p.labels)} ${String(p.value)}`);
  }
  return `${lines.join('\n')}\n`;
}

// The parts of prom-client used here, typed structurally so its types are not needed at run time.
interface PromMetric {
  reset(): void;
}
interface PromGauge extends PromMetric {
  set(labels: Labels, value: number): void;
}
interface PromCounter extends PromMetric {
  inc(labels: Labels, value: number): void;
}
interface PromConfig {
  name: string;
  help: string;
  labelNames: string[];
  registers: unknown[];
  collect(this: PromMetric): Promise<void>;
}
interface PromClient {
  Gauge: new (config: PromConfig) => PromGauge;
  Counter: new (config: PromConfig) => PromCounter;
  register: PromRegistry;
}
/** A prom-client Registry (or anything with the same registerMetric/getSingleMetric/removeSingleMetric). */
export interface PromRegistry {
  getSingleMetric(name: string): unknown;
  removeSingleMetric(name: string): void;
}

export interface CollectAllocatorMetricsOptions {
  /** The prom-client Registry to register in. Default: prom-client's default registry. */
  register?: PromRegistry;
  /** Prefix of every metric name. Default 'allocator_'. */
  prefix?: string;
  /** Scrapes within this many milliseconds share one sample. Default 1000. */
  minIntervalMs?: number;
}

export interface AllocatorMetricsHandle {
  /** The names registered. */
  readonly names: readonly string[];
  /** Removes the metrics from the registry. */
  unregister(): void;
}

function loadPromClient(): PromClient {
  try {
    // Loaded on demand: prom-client is an optional peer dependency.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require('prom-client') as PromClient;
  } catch (error) {
    throw withCode(
      new Error(`collectAllocatorMetrics() needs the prom-client package (npm install prom-client): ${(error as Error).message}`),
      'ERR_PEER_DEPENDENCY',
    );
  }
}

const OPTIONS = ['register', 'prefix', 'minIntervalMs'] as const;

/**
 * Registers the allocator metrics in a prom-client registry. Values are sampled when the
 * registry is scraped; all metrics of one scrape share one sample.
 */
export function collectAllocatorMetrics(options?: CollectAllocatorMetricsOptions): AllocatorMetricsHandle {
  const o = optionsObject<CollectAllocatorMetricsOptions>(options, 'options', OPTIONS);
  const prefix = metricsPrefix(o.prefix, 'options.prefix');
  const maxAgeMs = minInterval(o.minIntervalMs, 'options.minIntervalMs');
  if (o.register !== undefined && (o.register === null || typeof o.register !== 'object' || typeof o.register.getSingleMetric !== 'function')) {
    throw typeError('a prom-client Registry', 'options.register', o.register);
  }
  const client = loadPromClient();
  const register = o.register ?? client.register;
  const names = METRICS.map((m) => prefix + m.prom);
  const taken = names.filter((n) => register.getSingleMetric(n));
  if (taken.length) {
    throw withCode(
      new Error(`Metrics ${taken.join(', ')} are already registered: call unregister() first or pass another prefix`),
      'ERR_METRIC_REGISTERED',
    );
  }
  for (const m of METRICS) {
    const config: PromConfig = {
      name: prefix + m.prom,
      help: m.help,
      labelNames: ['allocator', ...m.labels],
      registers: [register],
      async collect(this: PromMetric) {
        const points = m.points(await snapshot(maxAgeMs));
        // Reset first so a value that became unknown disappears instead of staying stale.
        this.reset();
        for (const p of points) {
          if (m.type === 'counter') (this as PromCounter).inc(p.labels, p.value);
          else (this as PromGauge).set(p.labels, p.value);
        }
      },
    };
    if (m.type === 'counter') new client.Counter(config);
    else new client.Gauge(config);
  }
  return {
    names,
    unregister() {
      for (const n of names) if (register.getSingleMetric(n)) register.removeSingleMetric(n);
    },
  };
}
