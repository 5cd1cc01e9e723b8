// OpenTelemetry: observable instruments read back through the SDK's readers.
import { metrics as otelApi } from '@opentelemetry/api';
import {
  AggregationTemporality,
  DataPointType,
  InMemoryMetricExporter,
  MeterProvider,
  MetricReader,
  PeriodicExportingMetricReader,
  type ResourceMetrics,
} from '@opentelemetry/sdk-metrics';
import { allocatorStatsSync, registerOtelMetrics, trim } from '../../src';
import { MiB } from '../helpers';

class ManualReader extends MetricReader {
  protected async onForceFlush(): Promise<void> {}
  protected async onShutdown(): Promise<void> {}
}

interface Point {
  value: number;
  attributes: Record<string, unknown>;
}

function points(rm: ResourceMetrics): Map<string, { unit: string; type: DataPointType; points: Point[] }> {
  const out = new Map<string, { unit: string; type: DataPointType; points: Point[] }>();
  for (const sm of rm.scopeMetrics) {
    for (const m of sm.metrics) {
      out.set(m.descriptor.name, {
        unit: m.descriptor.unit,
        type: m.dataPointType,
        points: m.dataPoints.map((p) => ({ value: p.value as number, attributes: p.attributes as Record<string, unknown> })),
      });
    }
  }
  return out;
}

const one = (m: ReturnType<typeof points>, name: string): number | undefined => m.get(name)?.points[0]?.value;

describe('registerOtelMetrics', () => {
  test('a collection reports every known number from one sample, consistent with MemoryStats', async () => {
    const reader = new ManualReader();
    const provider = new MeterProvider({ readers: [reader] });
    const handle = registerOtelMetrics(provider.getMeter('allocator-stats-test'), { minIntervalMs: 0 });
    try {
      const { resourceMetrics, errors } = await reader.collect();
      expect(errors).toEqual([]);
      const m = points(resourceMetrics);
      const s = allocatorStatsSync();
      for (const name of ['allocated', 'resident', 'held_back', 'releasable', 'mapped', 'process.rss', 'process.rss_anon', 'v8.heap.physical']) {
        const metric = m.get(`allocator.${name}`);
        expect([name, metric?.unit, metric?.type]).toEqual([name, 'By', DataPointType.GAUGE]);
        expect(metric!.points[0].attributes).toEqual({ allocator: 'glibc' });
      }
      expect(m.get('allocator.trims')?.type).toBe(DataPointType.SUM);
      expect(m.get('allocator.trim.released')?.unit).toBe('By');
      expect(m.get('allocator.stats.duration')?.unit).toBe('s');
      // One batch callback, one sample: the identity holds exactly.
      expect(one(m, 'allocator.held_back')).toBe(one(m, 'allocator.resident')! - one(m, 'allocator.allocated')!);
      expect(Math.abs(one(m, 'allocator.process.rss')! - s.process.rss!)).toBeLessThan(Math.max(128 * MiB, s.process.rss! * 0.5));
      expect(handle.names).toContain('allocator.held_back');
    } finally {
      handle.unregister();
    }
    // Unregistered: the callback no longer runs, so a trim does not reach the counter.
    const last = one(points((await reader.collect()).resourceMetrics), 'allocator.trims');
    expect(typeof last).toBe('number');
    await trim();
    expect(one(points((await reader.collect()).resourceMetrics), 'allocator.trims')).toBe(last);
    await provider.shutdown();
  });

  test('counters are cumulative: a trim raises allocator.trims by one', async () => {
    const reader = new ManualReader();
    const provider = new MeterProvider({ readers: [reader] });
    const handle = registerOtelMetrics(provider.getMeter('t'), { prefix: 'svc.mem.' });
    try {
      const before = one(points((await reader.collect()).resourceMetrics), 'svc.mem.trims')!;
      await trim();
      const after = one(points((await reader.collect()).resourceMetrics), 'svc.mem.trims')!;
      expect(after).toBe(before + 1);
    } finally {
      handle.unregister();
      await provider.shutdown();
    }
  });

  test('the in-memory exporter receives the metrics through a periodic reader and the global API', async () => {
    const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
    const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 60_000 });
    const provider = new MeterProvider({ readers: [reader] });
    otelApi.setGlobalMeterProvider(provider);
    const handle = registerOtelMetrics(otelApi.getMeter('service'));
    try {
      await reader.forceFlush();
      const exported = exporter.getMetrics();
      expect(exported.length).toBeGreaterThanOrEqual(1);
      const m = points(exported[exported.length - 1]);
      expect(one(m, 'allocator.resident')).toBeGreaterThan(0);
      expect(one(m, 'allocator.info')).toBe(1);
    } finally {
      handle.unregister();
      await provider.shutdown();
      otelApi.disable();
    }
  });

  test('validates its arguments', () => {
    expect(() => registerOtelMetrics({} as never)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    const provider = new MeterProvider();
    expect(() => registerOtelMetrics(provider.getMeter('x'), { prefix: 7 } as never)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    expect(() => registerOtelMetrics(provider.getMeter('x'), { other: 1 } as never)).toThrow(expect.objectContaining({ code: 'ERR_UNKNOWN_OPTION' }));
  });
});
