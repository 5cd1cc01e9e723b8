// The mimalloc backend. Heaps belong to threads, so trim() asks every JS thread that loaded
// this addon to run mi_collect(true) on itself.
import { addon, type BackendBinding, type NativeMimallocProcessInfo } from '../../core/binding';
import type { RawValue } from '../../core/types';
import { nativeBackend, type NativeRef } from '../../core/wire';
import { backendOver } from '../native';
import type { Backend } from '../types';
import {
  DEFAULT_COLLECT_TIMEOUT_MS,
  delayOption,
  fromNative,
  mimallocOptionNames,
  mimallocToSample,
  mimallocToTrim,
  mimallocVersion,
  SAMPLE_FIELDS,
  TRIM_FIELDS,
} from './numbers';

/** Settings of this thread's mimalloc backend (mimalloc.setCollectTimeout()). */
export const mimallocSettings = { collectTimeoutMs: DEFAULT_COLLECT_TIMEOUT_MS };

let exitHook = false;

/**
 * A thread that is exiting will never collect: say so as its exit begins, so that trims that
 * asked it stop waiting (process.exit() stops worker threads before the main thread's
 * environment is torn down, and a worker blocked in trimSync() waits for the main thread).
 * Installed when the package is required, or when the backend is first used (by the CLI's sampler, say).
 */
export function installMimallocExitHook(): void {
  if (exitHook) return;
  exitHook = true;
  if (addon().mimallocInfo().version !== null) process.once('exit', () => addon().mimallocClosing());
}

export function mimallocConfig(): Record<string, RawValue> {
  const info = addon().mimallocInfo();
  if (!info.serving) return {};
  const out: Record<string, RawValue> = { version: mimallocVersion(), registeredThreads: info.registeredThreads };
  mimallocOptionNames().forEach((name, i) => {
    if (!name.startsWith('deprecated_')) out[name] = addon().mimallocOptionGet(i);
  });
  out.collectTimeoutMs = mimallocSettings.collectTimeoutMs;
  return out;
}


export interface MimallocBackend extends Backend {
  /** mi_process_info() now, or null when mimalloc does not serve malloc. */
  processInfo(): NativeMimallocProcessInfo | null;
}

/** `binding`: the addon by default, or an agent's (another process, whose configuration is not read). */
export function mimallocBackend(ref: NativeRef, binding?: BackendBinding): MimallocBackend {
  if (!binding) installMimallocExitHook();
  const reader = binding ?? addon();
  const native = nativeBackend(
    ref,
    { sample: SAMPLE_FIELDS, sampleArgs: [], gauge: SAMPLE_FIELDS, trim: TRIM_FIELDS, trimArgs: ['timeoutMs', 'delayOption'] },
    reader,
  );
  const backend = backendOver('mimalloc', native, {
    sampleArgs: () => ({}),
    trimArgs: () => ({ timeoutMs: mimallocSettings.collectTimeoutMs, delayOption: delayOption(reader) }),
    toSample: (n) => mimallocToSample(n, reader),
    toTrim: (t) => mimallocToTrim(t, mimallocSettings.collectTimeoutMs, reader),
    config: binding ? undefined : mimallocConfig,
  });
  return Object.assign(backend, { processInfo: () => fromNative(native.sampleSync({})).processInfo });
}
