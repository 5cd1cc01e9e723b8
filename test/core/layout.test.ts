// The layout of src/ as DESIGN.md draws it: no import cycle (type imports included), no module
// named by an expression, and no addon loaded by importing the package, the registry or the CLI.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import ts from 'typescript';
import { ROOT } from '../helpers';

const SRC = path.join(ROOT, 'src');

function sources(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? sources(p) : e.name.endsWith('.ts') && !e.name.endsWith('.d.ts') ? [p] : [];
  });
}

interface ModuleUse {
  /** The specifier, or null when it is not a string literal. */
  specifier: string | null;
  line: number;
  text: string;
}

/** Every module a file names: import/export … from, import(), require(), import('…') types. */
function uses(file: string): ModuleUse[] {
  const text = fs.readFileSync(file, 'utf8');
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const out: ModuleUse[] = [];
  const add = (node: ts.Node, arg: ts.Node | undefined): void => {
    out.push({
      specifier: arg && ts.isStringLiteralLike(arg) ? arg.text : null,
      line: source.getLineAndCharacterOfPosition(node.getStart()).line + 1,
      text: node.getText().slice(0, 80),
    });
  };
  const visit = (node: ts.Node): void => {
    if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier) add(node, node.moduleSpecifier);
    else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference)) add(node, node.moduleReference.expression);
    else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument)) add(node, node.argument.literal);
    else if (ts.isCallExpression(node)) {
      const callee = node.expression;
      if (callee.kind === ts.SyntaxKind.ImportKeyword || (ts.isIdentifier(callee) && callee.text === 'require')) add(node, node.arguments[0]);
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return out;
}

function resolve(from: string, specifier: string): string | null {
  if (!specifier.startsWith('.')) return null;
  const base = path.resolve(path.dirname(from), specifier);
  for (const candidate of [`${base}.ts`, path.join(base, 'index.ts')]) if (fs.existsSync(candidate)) return candidate;
  throw new Error(`${path.relative(ROOT, from)} names ${specifier}, which is no file of src/`);
}

/** The import cycles of src/, each as the files along it. */
function cycles(graph: Map<string, string[]>): string[][] {
  const found: string[][] = [];
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (file: string): void => {
    state.set(file, 'open');
    stack.push(file);
    for (const next of graph.get(file) ?? []) {
      if (state.get(next) === 'open') found.push([...stack.slice(stack.indexOf(next)), next].map((f) => path.relative(SRC, f)));
      else if (!state.has(next)) visit(next);
    }
    stack.pop();
    state.set(file, 'done');
  };
  for (const file of graph.keys()) if (!state.has(file)) visit(file);
  return found;
}

const files = sources(SRC);
const used = new Map(files.map((f) => [f, uses(f)]));

describe('the layout of src/', () => {
  test('finds the modules each file names (the check itself)', () => {
    const index = used.get(path.join(SRC, 'index.ts'))!;
    expect(index.map((u) => u.specifier)).toContain('./allocators/glibc');
    expect(files.length).toBeGreaterThan(50);
  });

  test('has no import cycle', () => {
    const graph = new Map(files.map((f) => [f, used.get(f)!.flatMap((u) => (u.specifier === null ? [] : [resolve(f, u.specifier)].filter((p): p is string => p !== null)))]));
    expect(cycles(graph)).toEqual([]);
  });

  test('names every module by a string literal', () => {
    const computed = files.flatMap((f) => used.get(f)!.filter((u) => u.specifier === null).map((u) => `${path.relative(ROOT, f)}:${u.line}: ${u.text}`));
    expect(computed).toEqual([]);
  });

  test('finds a cycle and a computed name where there are some', () => {
    const a = path.join(SRC, 'a.ts');
    const b = path.join(SRC, 'b.ts');
    expect(cycles(new Map([[a, [b]], [b, [a]]]))).toEqual([['a.ts', 'b.ts', 'a.ts']]);
    const probe = path.join(os.tmpdir(), `allocator-stats-layout-probe-${process.pid}.ts`);
    fs.writeFileSync(probe, "const name = 'x';\nrequire(`./${name}`);\nimport('./y');\n");
    try {
      expect(uses(probe).map((u) => u.specifier)).toEqual([null, './y']);
    } finally {
      fs.rmSync(probe);
    }
  });

  test('a backend imports only the core and the allocators layer', () => {
    const wrong = files
      .filter((f) => /allocators[/\\][a-z]+[/\\](backend|numbers)\.ts$/.test(f))
      .flatMap((f) =>
        used
          .get(f)!
          .map((u) => (u.specifier ? resolve(f, u.specifier) : null))
          .filter((p): p is string => p !== null)
          .map((p) => path.relative(SRC, p))
          .filter((p) => !/^(core|allocators)[/\\]/.test(p) || /[/\\]index\.ts$|registry\.ts$|identity\.ts$|trims\.ts$/.test(p))
          .map((p) => `${path.relative(SRC, f)} imports ${p}`),
      );
    expect(wrong).toEqual([]);
  });

  test('importing the registry, the API or the CLI modules loads no addon; requiring the package does', () => {
    const lib = path.join(ROOT, 'lib');
    const loaded = (modules: string[]): string[] =>
      JSON.parse(
        execFileSync(
          process.execPath,
          ['-e', `for (const m of ${JSON.stringify(modules)}) require(${JSON.stringify(lib)} + '/' + m);
            process.stdout.write(JSON.stringify(process.report.getReport().sharedObjects.filter((p) => p.endsWith('.node'))));`],
          { encoding: 'utf8' },
        ),
      );
    const modules = ['allocators/registry.js', 'api/stats.js', 'api/trim.js', 'api/detect.js', 'cli/allocators.js', 'cli/runner.js', 'cli/sampler.js', 'cli/main.js'];
    expect(loaded(modules)).toEqual([]);
    expect(loaded(['index.js'])).toHaveLength(1);
  });
});
