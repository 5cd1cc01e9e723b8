// A backend over a native one (nativeBackend() in src/core/wire.ts): each call builds its
// arguments, runs the native call (the async ones on the threadpool, rejecting with the
// caller's stack) and turns the record into the unified shape. Each allocator's file says
// only what differs: its arguments, its decoding and its configuration.
import { keepCallerStack } from '../core/errors';
import type { RawValue } from '../core/types';
import type { NativeBackend, NativeSample, NativeTrim } from '../core/wire';
import type { Backend, BackendSample, BackendTrim, SampleRequest, TrimRequest } from './types';

export interface NativeBackendUse<S extends string, SA extends string, G extends string, T extends string, TA extends string> {
  /** The native sample's arguments; `sync` for a sample on the JS thread. */
  sampleArgs(request: SampleRequest, sync: boolean): { readonly [K in SA]: number };
  trimArgs(request: TrimRequest): { readonly [K in TA]: number };
  toSample(sample: NativeSample<S>): BackendSample;
  toTrim(trim: NativeTrim<G, T>, request: TrimRequest): BackendTrim;
  /** The allocator's configuration in effect, for diagnostics. */
  config?(): Record<string, RawValue>;
}

export function backendOver<S extends string, SA extends string, G extends string, T extends string, TA extends string>(
  name: string,
  native: NativeBackend<S, SA, G, T, TA>,
  use: NativeBackendUse<S, SA, G, T, TA>,
): Backend {
  const backend: Backend = {
    name,
    canTrim: true,
    sampleSync: (request) => use.toSample(native.sampleSync(use.sampleArgs(request, true))),
    sample: (request) => keepCallerStack(native.sample(use.sampleArgs(request, false)), backend.sample).then(use.toSample),
    trimSync: (request) => use.toTrim(native.trimSync(use.trimArgs(request)), request),
    trim: (request) => keepCallerStack(native.trim(use.trimArgs(request)), backend.trim).then((t) => use.toTrim(t, request)),
  };
  if (use.config) backend.config = use.config;
  return backend;
}
