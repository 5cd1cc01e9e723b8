// The registry (src/allocators.ts) against what it stands for: every allocator in it has a
// backend in the addon, a TypeScript file that registers that backend, a namespace in the
// public API and its own test file; and the addon has no backend the registry lacks.
import fs from 'node:fs';
import path from 'node:path';
import * as api from '../src';
import { ALLOCATOR_NAMES, ALLOCATORS, allocatorOfLibrary, WITHOUT_BACKEND } from '../src/allocators';
import { backendFor } from '../src/backends';
import { binding } from '../src/binding';
import type { AllocatorName } from '../src';
import { ROOT } from './helpers';

// The public name list is fixed by the contract: deriving it from the registry must not change it.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const contractNames: Same<AllocatorName, 'glibc' | 'jemalloc' | 'tcmalloc' | 'mimalloc' | 'musl' | 'unknown'> = true;

const nativeNames = binding.wire.backends.map((b) => b.name);

describe('the allocator registry', () => {
  test('AllocatorName is the contract, in the registry order', () => {
    expect(contractNames).toBe(true);
    expect(ALLOCATOR_NAMES).toEqual(['glibc', 'jemalloc', 'tcmalloc', 'mimalloc', 'musl', 'unknown']);
  });

  test('the addon has a backend for every allocator in the registry, and no other', () => {
    expect([...nativeNames].sort()).toEqual(ALLOCATORS.map((a) => a.name).sort());
    for (const name of Object.keys(WITHOUT_BACKEND)) expect(nativeNames).not.toContain(name);
  });

  test.each(ALLOCATORS.map((a) => [a.name, a] as const))('%s: the addon exports its wire names', (name) => {
    const wire = binding.wire.backends.find((b) => b.name === name)!;
    // Every backend reports fields in its samples and gauges them around a trim.
    expect(wire.sample.length).toBeGreaterThan(0);
    expect(wire.gauge.length).toBeGreaterThan(0);
    for (const list of [wire.sample, wire.sampleArgs, wire.gauge, wire.trim, wire.trimArgs]) {
      for (const field of list) expect(field).toMatch(/^[A-Za-z_][\w.]*$/);
    }
  });

  test.each(ALLOCATORS.map((a) => [a.name, a] as const))('%s: its file registers its backend, and the API exports its namespace', (name) => {
    expect(fs.existsSync(path.join(ROOT, 'src', `${name}.ts`))).toBe(true);
    const backend = backendFor(name);
    expect(backend.name).toBe(name);
    // A backend the registry has but no file registered falls back to one that cannot trim.
    expect(backend.canTrim).toBe(true);
    const namespace = (api as unknown as Record<string, unknown>)[name];
    expect(typeof namespace).toBe('object');
    expect(Object.keys(namespace as object).length).toBeGreaterThan(0);
  });

  test.each(ALLOCATORS.map((a) => [a.name, a] as const))('%s: has its own test file', (name) => {
    expect(fs.existsSync(path.join(ROOT, 'test', `${name}.test.ts`))).toBe(true);
  });

  test.each(ALLOCATORS.filter((a) => a.libraries.length > 0).map((a) => [a.name, a] as const))(
    '%s: its library file names are recognised as it, and it names its packages',
    (name, facts) => {
      for (const file of facts.libraries) {
        expect(allocatorOfLibrary(file)).toBe(name);
        expect(allocatorOfLibrary(`/usr/lib/x86_64-linux-gnu/${file}`)).toBe(name);
      }
      expect(facts.debian).toMatch(/^[a-z0-9][a-z0-9.+-]+$/);
      expect(facts.alpine).toMatch(/^[a-z0-9][a-z0-9.+-]+$/);
    },
  );

  test('a library that is no allocator is recognised as none', () => {
    expect(allocatorOfLibrary('/lib/x86_64-linux-gnu/libc.so.6')).toBeUndefined();
    expect(allocatorOfLibrary('libz.so.1')).toBeUndefined();
  });
});
