// The wire format: records of numbers whose fields the addon names (binding.wire), decoded by
// those names. A native backend is the addon's backend table entry seen through its names.
import { addon, type BackendBinding, type NativeProcessMemory } from './binding';
import { withCode } from './errors';

/** A record decoded by name: every field the reader expects, unknown as null. */
export type Fields<N extends string> = { readonly [K in N]: number | null };

/** A backend in the addon's table: its index there and the name it reports. */
export interface NativeRef {
  readonly index: number;
  readonly name: string;
}

const known = (v: number): number | null => (Number.isNaN(v) ? null : v);

/** ERR_ADDON_LOAD: the addon loaded, but it is not the one lib/ was built with. */
function otherBuild(what: string): Error {
  return withCode(
    new Error(`${what}: the addon and lib/ are from different builds (run npm rebuild allocator-stats)`),
    'ERR_ADDON_LOAD',
  );
}

/** Throws ERR_ADDON_LOAD unless the addon (or `binding`) has the backend `ref` names at its index. */
export function checkNativeRef(ref: NativeRef, binding: Pick<BackendBinding, 'wire'> = addon()): void {
  if (binding.wire.backends[ref.index]?.name !== ref.name) throw otherBuild(`the addon has no ${ref.name} backend at index ${ref.index}`);
}

/**
 * Reads records by field name. `expected` lists the names a reader uses; each must be among
 * the names the addon exports for that record, or loading fails here rather than a number
 * being read from the wrong place.
 */
export class Layout<N extends string> {
  readonly size: number;
  private readonly names: readonly N[];
  private readonly indices: readonly number[];

  constructor(record: string, exported: readonly string[], expected: readonly N[]) {
    this.size = exported.length;
    this.names = expected;
    this.indices = expected.map((name) => {
      const i = exported.indexOf(name);
      if (i < 0) throw otherBuild(`the native ${record} record has no field ${name}`);
      return i;
    });
    this.decode = this.compile();
  }

  /**
   * Runs on every sample. Compiled once per record into one object literal, so that every
   * decoded record has the same shape from the start: filled key by key, a record of a few
   * dozen fields went through as many hidden-class transitions (or a dictionary) per sample
   * and cost more than the native sample itself.
   */
  readonly decode: (values: Float64Array, offset?: number) => Fields<N>;

  private compile(): (values: Float64Array, offset?: number) => Fields<N> {
    const body = this.names.map((name, k) => `${JSON.stringify(name)}: known(v[o + ${this.indices[k]}])`).join(', ');
    // The names are the reader's own constants, each also found among the addon's names.
    const make = new Function('known', `return function decode(v, o = 0) { return { ${body} }; };`) as (
      k: typeof known,
    ) => (values: Float64Array, offset?: number) => Fields<N>;
    return make(known);
  }

  /** Arguments in the order the addon declares them. */
  encode(values: { readonly [K in N]: number }): number[] {
    const out = new Array<number>(this.size).fill(NaN);
    for (let k = 0; k < this.names.length; k++) out[this.indices[k]] = values[this.names[k]];
    return out;
  }

  /**
   * encode() into one Float64Array that every call reuses: the addon copies its arguments
   * during the call, and an array per call would cost an allocation (and, for a typed array,
   * a malloc'd backing store freed by a later GC) on every sample.
   */
  encoder(): (values: { readonly [K in N]: number }) => Float64Array {
    const out = new Float64Array(this.size).fill(NaN);
    return (values) => {
      for (let k = 0; k < this.names.length; k++) out[this.indices[k]] = values[this.names[k]];
      return out;
    };
  }
}

// Room for a variable-length tail in the reused sync-sample buffer (glibc's malloc_info rows:
// a few hundred on a process with a handful of arenas); a longer sample gets its own array.
const SAMPLE_TAIL_ROOM = 4096;

const NO_TAIL = new Float64Array(0);

const COMMON_SAMPLE = ['serving', 'costNs', 'rss', 'rssAnon', 'rssFile', 'rssShmem', 'swap'] as const;
const COMMON_TRIM = ['result', 'durationNs', 'rssBefore', 'rssAfter'] as const;
type CommonLayouts = { sample: Layout<(typeof COMMON_SAMPLE)[number]>; trim: Layout<(typeof COMMON_TRIM)[number]> };
const common = new WeakMap<BackendBinding['wire'], CommonLayouts>();
function commonLayouts(wire: BackendBinding['wire']): CommonLayouts {
  let layouts = common.get(wire);
  if (!layouts) common.set(wire, (layouts = { sample: new Layout('sample', wire.sample, COMMON_SAMPLE), trim: new Layout('trim', wire.trim, COMMON_TRIM) }));
  return layouts;
}

export interface NativeSample<S extends string> {
  /** Whether this allocator serves malloc(); when false, `fields` are all null. */
  serving: boolean;
  costNs: number;
  /** Read in the same native call as the allocator's numbers. */
  process: NativeProcessMemory;
  fields: Fields<S>;
  /** Variable-length data after the named fields (glibc: malloc_info() rows). For a sync
   * sample it views a buffer reused by the next one: read it before sampling again. */
  tail: Float64Array;
}

export interface NativeTrim<G extends string, T extends string> {
  result: number;
  durationNs: number;
  rssBefore: number | null;
  rssAfter: number | null;
  /** The backend's gauge fields right before and after the trim. */
  before: Fields<G>;
  after: Fields<G>;
  fields: Fields<T>;
}

export interface BackendShape<S extends string, SA extends string, G extends string, T extends string, TA extends string> {
  sample: readonly S[];
  sampleArgs: readonly SA[];
  gauge: readonly G[];
  trim: readonly T[];
  trimArgs: readonly TA[];
}

export interface NativeBackend<S extends string, SA extends string, G extends string, T extends string, TA extends string> {
  sampleSync(args: { readonly [K in SA]: number }): NativeSample<S>;
  sample(args: { readonly [K in SA]: number }): Promise<NativeSample<S>>;
  trimSync(args: { readonly [K in TA]: number }): NativeTrim<G, T>;
  trim(args: { readonly [K in TA]: number }): Promise<NativeTrim<G, T>>;
}

/**
 * The native backend `ref` of the addon (loaded here) or of `binding`, its records decoded by
 * the names in `shape`.
 */
export function nativeBackend<S extends string, SA extends string, G extends string, T extends string, TA extends string>(
  ref: NativeRef,
  shape: BackendShape<S, SA, G, T, TA>,
  binding: BackendBinding = addon(),
): NativeBackend<S, SA, G, T, TA> {
  checkNativeRef(ref, binding);
  const { index, name } = ref;
  const wire = binding.wire.backends[index];
  const { sample: commonSample, trim: commonTrim } = commonLayouts(binding.wire);
  const sample = new Layout(`${name} sample`, wire.sample, shape.sample);
  const sampleArgs = new Layout(`${name} sample arguments`, wire.sampleArgs, shape.sampleArgs);
  const encodeSampleArgs = sampleArgs.encoder();
  const gauge = new Layout(`${name} gauge`, wire.gauge, shape.gauge);
  const trim = new Layout(`${name} trim`, wire.trim, shape.trim);
  const trimArgs = new Layout(`${name} trim arguments`, wire.trimArgs, shape.trimArgs);
  const encodeTrimArgs = trimArgs.encoder();
  // `length`: how much of `v` the sample filled (a sync sample fills the front of a reused buffer).
  const decodeSample = (v: Float64Array, length = v.length): NativeSample<S> => {
    const c = commonSample.decode(v);
    return {
      serving: c.serving === 1,
      costNs: c.costNs ?? 0,
      process: { rss: c.rss, rssAnon: c.rssAnon, rssFile: c.rssFile, rssShmem: c.rssShmem, swap: c.swap },
      fields: sample.decode(v, commonSample.size),
      tail: length > commonSample.size + sample.size ? v.subarray(commonSample.size + sample.size, length) : NO_TAIL,
    };
  };
  const decodeTrim = (v: Float64Array): NativeTrim<G, T> => {
    const c = commonTrim.decode(v);
    const at = commonTrim.size;
    return {
      result: c.result ?? 0,
      durationNs: c.durationNs ?? 0,
      rssBefore: c.rssBefore,
      rssAfter: c.rssAfter,
      before: gauge.decode(v, at),
      after: gauge.decode(v, at + gauge.size),
      fields: trim.decode(v, at + 2 * gauge.size),
    };
  };
  // Sync samples land in this buffer (decoded before the call returns): no ArrayBuffer is
  // created per sample, whose freed backing stores would slow every later mallinfo2() walk.
  const buffer = new Float64Array(commonSample.size + sample.size + SAMPLE_TAIL_ROOM);
  return {
    sampleSync: (args) => {
      const r = binding.sampleSync(index, encodeSampleArgs(args), buffer);
      return typeof r === 'number' ? decodeSample(buffer, r) : decodeSample(r);
    },
    sample: (args) => binding.sample(index, sampleArgs.encode(args)).then((v) => decodeSample(v)),
    trimSync: (args) => decodeTrim(binding.trimSync(index, encodeTrimArgs(args))),
    // The addon copies the arguments before the threadpool starts: the buffer can be reused at once.
    trim: (args) => binding.trim(index, encodeTrimArgs(args)).then(decodeTrim),
  };
}
