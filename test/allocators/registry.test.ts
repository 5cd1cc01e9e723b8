// The registry (src/allocators/registry.ts) against what it stands for: every allocator in it
// with a backend has that backend in the addon at the index its row names, a TypeScript folder
// with its backend and namespace, a namespace in the public API (and the ES module wrapper) and
// its own test file; the addon has no backend the registry lacks, and asks them in the order the
// rows say; every environment variable the project reads is in a row.
import fs from 'node:fs';
import path from 'node:path';
import * as api from '../../src';
import {
  ALLOCATOR_ENV_NAMES,
  ALLOCATOR_NAMES,
  ALLOCATORS,
  allocatorEnv,
  allocatorOfLibrary,
  backendFor,
  DETECTION_ORDER,
  DOCTOR_ENV_NAMES,
  isAllocatorVariable,
  REGISTRY,
  WITHOUT_BACKEND,
} from '../../src/allocators/registry';
import { addon } from '../../src/core/binding';
import type { AllocatorName } from '../../src';
import { ROOT } from '../helpers';

// The public name list is fixed by the contract: deriving it from the registry must not change it.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const contractNames: Same<AllocatorName, 'glibc' | 'jemalloc' | 'tcmalloc' | 'mimalloc' | 'musl' | 'unknown'> = true;

const binding = addon();
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

  test.each(ALLOCATORS.map((a) => [a.name, a] as const))('%s: its row names its place in the addon\'s backend table', (name, row) => {
    expect(row.native.name).toBe(name);
    expect(binding.wire.backends[row.native.index]?.name).toBe(row.native.name);
  });

  test('detection asks the backends in the order of the addon\'s table', () => {
    expect(DETECTION_ORDER).toEqual(nativeNames);
    expect(new Set(ALLOCATORS.map((a) => a.native.index)).size).toBe(ALLOCATORS.length);
  });

  test('rows without a backend have a reason and nothing to preload', () => {
    const rows = REGISTRY.filter((r) => r.native === null);
    expect(rows.map((r) => r.name)).toEqual(Object.keys(WITHOUT_BACKEND));
    for (const r of rows) {
      expect(r.backend).toBeNull();
      expect(WITHOUT_BACKEND[r.name as keyof typeof WITHOUT_BACKEND]).toMatch(/\w{10}/);
      expect(r.libraries).toEqual([]);
      expect(backendFor(r.name).canTrim).toBe(false);
    }
  });

  test('every environment variable the project reads or forwards is in a row', () => {
    // The doctor's variables are among the allocators' variables, and the runner and the endpoint read the same list.
    for (const name of DOCTOR_ENV_NAMES) expect(isAllocatorVariable(name)).toBe(true);
    for (const name of ALLOCATOR_ENV_NAMES) expect(isAllocatorVariable(name)).toBe(true);
    expect(isAllocatorVariable('TCMALLOC_RELEASE_RATE')).toBe(true);
    expect(isAllocatorVariable('MIMALLOC_PURGE_DELAY')).toBe(true);
    expect(isAllocatorVariable('PATH')).toBe(false);
    expect(isAllocatorVariable('TCMALLOC_')).toBe(false);
    const env = allocatorEnv({ PATH: '/bin', MALLOC_CONF: 'x', MIMALLOC_VERBOSE: '1', TCMALLOC_: 'y' });
    expect(env).toMatchObject({ MALLOC_CONF: 'x', MIMALLOC_VERBOSE: '1', LD_PRELOAD: null });
    expect(env).not.toHaveProperty('PATH');
    // The endpoint reports what the CLI counts: a bare prefix is no variable for either.
    expect(env).not.toHaveProperty('TCMALLOC_');
    // No module of src/ names an allocator variable outside the registry, its advice and the doctor's rules.
    const quoted = /'((?:MALLOC|TCMALLOC|MIMALLOC|GLIBC|JE|_RJEM)_[A-Z_]*)'/g;
    const outside: string[] = [];
    const walk = (dir: string): void => {
      for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
        const p = path.join(dir, e.name);
        if (e.isDirectory()) walk(p);
        else if (p.endsWith('.ts') && !/registry\.ts$|advice\.ts$|doctor[/\\]rules\.ts$/.test(p)) {
          for (const m of fs.readFileSync(p, 'utf8').matchAll(quoted)) outside.push(`${path.relative(ROOT, p)}: ${m[1]}`);
        }
      }
    };
    walk(path.join(ROOT, 'src'));
    expect(outside).toEqual([]);
  });

  test('docs/cli.md lists the allocator variables run keeps and compare drops, exactly', () => {
    const page = fs.readFileSync(path.join(ROOT, 'docs', 'cli.md'), 'utf8');
    const start = page.indexOf('\n## Allocator variables\n');
    expect(start).toBeGreaterThan(0);
    const paragraph = page.slice(start, page.indexOf('\n## ', start + 1));
    const listed = [...paragraph.matchAll(/`([A-Z_]+?)(…?)`/g)].map((m) => m[1] + (m[2] ? '*' : ''));
    const prefixes = ALLOCATORS.flatMap((a) => a.env.prefixes).map((p) => `${p}*`);
    expect([...listed].sort()).toEqual([...ALLOCATOR_ENV_NAMES, ...prefixes].sort());
  });

  test.each(ALLOCATORS.map((a) => [a.name, a] as const))('%s: its folder holds its backend, and the API exports its namespace', (name) => {
    for (const file of ['backend.ts', 'index.ts']) expect(fs.existsSync(path.join(ROOT, 'src', 'allocators', name, file))).toBe(true);
    expect(fs.readFileSync(path.join(ROOT, 'wrapper.mjs'), 'utf8')).toMatch(new RegExp(`^\\s+${name},$`, 'm'));
    const backend = backendFor(name);
    expect(backend.name).toBe(name);
    expect(backend.canTrim).toBe(true);
    const namespace = (api as unknown as Record<string, unknown>)[name];
    expect(typeof namespace).toBe('object');
    expect(Object.keys(namespace as object).length).toBeGreaterThan(0);
  });

  test.each(ALLOCATORS.map((a) => [a.name, a] as const))('%s: has its own test file', (name) => {
    expect(fs.existsSync(path.join(ROOT, 'test', 'allocators', name, `${name}.test.ts`))).toBe(true);
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
