// Every code block in README.md and docs/*.md runs as printed, or says in its info string why it
// must not (```sh no-run: <why>). Each runnable block runs in its own `node`, from a directory
// where `allocator-stats` resolves to this tree, and must exit 0 by itself: a snippet that starts
// a server or a timer and keeps the process alive fails here. Pages added to docs/ later are
// covered without editing this file.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import ts from 'typescript';
import { ALLOCATOR_LIBRARIES, ROOT, findLibrary, spawnNode, testIf } from '../helpers';

interface Block {
  file: string;
  line: number;
  lang: string;
  code: string;
  /** Why the block must not run, when its info string says `no-run`. */
  noRun: string | null;
  preload: keyof typeof ALLOCATOR_LIBRARIES | null;
}

const RUNNABLE = ['js', 'mjs', 'ts'] as const;
type Runnable = (typeof RUNNABLE)[number];
// A snippet runs in a fresh process that loads the addon; on 2 busy cores that can take seconds.
const SNIPPET_TIMEOUT_MS = 30000;
// Documented environment the snippets read: the endpoint examples take their token from it.
const SNIPPET_ENV = { MEMORY_DEBUG_TOKEN: 'docs-test-token-0123456789abcdef' };

function docFiles(): string[] {
  const docs = fs
    .readdirSync(path.join(ROOT, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .sort()
    .map((f) => `docs/${f}`);
  return ['README.md', ...docs];
}

function parseBlocks(file: string): Block[] {
  const lines = fs.readFileSync(path.join(ROOT, file), 'utf8').split('\n');
  const blocks: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^(`{3,}|~{3,})(.*)$/.exec(lines[i]);
    if (!open) continue;
    const fence = open[1];
    const info = open[2].trim();
    const body: string[] = [];
    let j = i + 1;
    while (j < lines.length && !(lines[j].startsWith(fence[0].repeat(fence.length)) && lines[j].trim().replace(/[`~]/g, '') === '')) {
      body.push(lines[j]);
      j++;
    }
    if (j === lines.length) throw new Error(`${file}:${i + 1}: code block never closed`);
    const lang = info.split(/\s+/)[0] ?? '';
    const noRun = /(?:^|\s)no-run\b:?\s*(.*)$/.exec(info);
    const preload = /(?:^|\s)preload=(\S+)/.exec(info)?.[1] ?? null;
    if (preload !== null && !(preload in ALLOCATOR_LIBRARIES)) {
      throw new Error(`${file}:${i + 1}: preload=${preload} is not one of ${Object.keys(ALLOCATOR_LIBRARIES).join(', ')}`);
    }
    blocks.push({
      file,
      line: i + 1,
      lang,
      code: `${body.join('\n')}\n`,
      noRun: noRun ? noRun[1].trim() : null,
      preload: preload as Block['preload'],
    });
    i = j;
  }
  return blocks;
}

const files = docFiles();
const blocks = files.flatMap(parseBlocks);
const runnable = blocks.filter((b) => b.noRun === null && (RUNNABLE as readonly string[]).includes(b.lang));
const name = (b: Block): string => `${b.file}:${b.line} ${b.lang}${b.preload ? ` under ${b.preload}` : ''}`;
const ran: Record<Runnable, number> = { js: 0, mjs: 0, ts: 0 };

let sandbox = '';
let tsErrors = new Map<string, string[]>();
const scriptOf = new Map<Block, string>();

// A project directory whose node_modules holds this package (a link to the tree, as npm link
// makes) and, for the snippets that use them, the tree's own dependencies.
function makeSandbox(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'allocator-stats-docs-'));
  const modules = path.join(dir, 'node_modules');
  fs.mkdirSync(modules);
  for (const entry of fs.readdirSync(path.join(ROOT, 'node_modules'))) {
    if (entry.startsWith('.') || entry === 'allocator-stats') continue;
    fs.symlinkSync(path.join(ROOT, 'node_modules', entry), path.join(modules, entry));
  }
  fs.symlinkSync(ROOT, path.join(modules, 'allocator-stats'), 'dir');
  return dir;
}

// Type-checks every ts block under strict, as ES modules with top-level await (what a reader
// pastes into an .mts file), and emits the JavaScript that is then run.
function compileTypeScript(tsBlocks: Block[]): Map<string, string[]> {
  const sources = tsBlocks.map((b) => scriptOf.get(b)!);
  const options: ts.CompilerOptions = {
    strict: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    types: ['node'],
    skipLibCheck: true,
    noEmitOnError: false,
    rootDir: sandbox,
    outDir: path.join(sandbox, 'out'),
  };
  const program = ts.createProgram(sources, options);
  const errors = new Map<string, string[]>(sources.map((s) => [s, []]));
  for (const d of ts.getPreEmitDiagnostics(program)) {
    const text = ts.flattenDiagnosticMessageText(d.messageText, '\n');
    const key = d.file && errors.has(d.file.fileName) ? d.file.fileName : sources[0];
    const block = tsBlocks[sources.indexOf(key)];
    // Point at the line in the Markdown file: the block's first line follows the fence.
    const where = d.file ? `${block.file}:${block.line + 1 + d.file.getLineAndCharacterOfPosition(d.start ?? 0).line}` : 'tsc';
    errors.get(key)?.push(`${where}: TS${d.code} ${text}`);
  }
  program.emit();
  return errors;
}

async function runNode(script: string, preload: string | null): Promise<{ code: number | null; signal: string | null; output: string }> {
  // No NODE_OPTIONS of the runner's: a snippet runs as a user would run it.
  const r = await spawnNode([script], { preload, env: { ...SNIPPET_ENV, NODE_OPTIONS: '' }, cwd: sandbox, timeoutMs: SNIPPET_TIMEOUT_MS });
  return { code: r.code, signal: r.signal, output: `${r.stdout}${r.stderr}` };
}

beforeAll(() => {
  sandbox = makeSandbox();
  runnable.forEach((b, i) => {
    const ext = b.lang === 'js' ? 'cjs' : b.lang === 'mjs' ? 'mjs' : 'mts';
    const file = path.join(sandbox, `snippet-${i}.${ext}`);
    fs.writeFileSync(file, b.code);
    scriptOf.set(b, file);
  });
  const tsBlocks = runnable.filter((b) => b.lang === 'ts');
  if (tsBlocks.length > 0) tsErrors = compileTypeScript(tsBlocks);
});

afterAll(() => {
  if (sandbox) fs.rmSync(sandbox, { recursive: true, force: true });
  const marked = blocks.filter((b) => b.noRun !== null).length;
  const total = ran.js + ran.mjs + ran.ts;
  // eslint-disable-next-line no-console
  console.log(
    `docs snippets: ${total} of ${blocks.length} blocks in ${files.length} files ran ` +
      `(js ${ran.js}, mjs ${ran.mjs}, ts ${ran.ts}); ${marked} marked no-run; ` +
      `${runnable.length - total} did not run (failed or skipped)`,
  );
});

test('every block either runs or says why not', () => {
  const unmarked = blocks
    .filter((b) => b.noRun === null && !(RUNNABLE as readonly string[]).includes(b.lang))
    .map((b) => `${b.file}:${b.line} \`\`\`${b.lang}: not runnable here (${RUNNABLE.join(', ')}); mark it "no-run: <why>"`);
  const noReason = blocks.filter((b) => b.noRun === '').map((b) => `${b.file}:${b.line}: no-run without a reason`);
  expect([...unmarked, ...noReason]).toEqual([]);
  expect(files).toContain('docs/api.md');
  expect(runnable.length).toBeGreaterThan(20);
});

describe.each(runnable.map((b) => [name(b), b] as const))('%s', (_name, block) => {
  const library = block.preload ? findLibrary(ALLOCATOR_LIBRARIES[block.preload]) : null;
  const it = block.preload ? testIf(library !== null, `${ALLOCATOR_LIBRARIES[block.preload]} is not installed`) : test;
  it(
    'runs as printed and exits by itself',
    async () => {
      const script = scriptOf.get(block)!;
      let target = script;
      if (block.lang === 'ts') {
        expect(tsErrors.get(script) ?? []).toEqual([]);
        target = path.join(sandbox, 'out', path.basename(script).replace(/\.mts$/, '.mjs'));
      }
      const r = await runNode(target, library);
      if (r.code !== 0) {
        throw new Error(
          `${name(block)} ${r.signal === 'SIGKILL' ? `did not exit within ${SNIPPET_TIMEOUT_MS} ms` : `exited with ${r.code ?? r.signal}`}\n` +
            `--- snippet ---\n${block.code}--- output ---\n${r.output}`,
        );
      }
      ran[block.lang as Runnable]++;
    },
    SNIPPET_TIMEOUT_MS + 10000,
  );
});

// GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens, repeats numbered.
function anchors(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  let inFence = false;
  for (const line of markdown.split('\n')) {
    if (/^(`{3,}|~{3,})/.test(line)) inFence = !inFence;
    const h = inFence ? null : /^#{1,6}\s+(.*)$/.exec(line);
    if (!h) continue;
    const base = h[1]
      .trim()
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, '')
      .replace(/\s/g, '-');
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
}

test('every link between the README and docs/ reaches an existing page and heading', () => {
  const broken: string[] = [];
  for (const file of [...files, 'CHANGELOG.md']) {
    const text = fs.readFileSync(path.join(ROOT, file), 'utf8').replace(/^(`{3,})[\s\S]*?^\1/gm, '');
    for (const m of text.matchAll(/\]\(([^)\s]+)\)/g)) {
      const href = m[1];
      if (/^[a-z]+:/i.test(href)) continue;
      const [target, anchor] = href.split('#');
      const resolved = target ? path.posix.normalize(path.posix.join(path.posix.dirname(file), target)) : file;
      if (!fs.existsSync(path.join(ROOT, resolved))) {
        broken.push(`${file}: ${href} (no such file)`);
        continue;
      }
      if (anchor && resolved.endsWith('.md') && !anchors(fs.readFileSync(path.join(ROOT, resolved), 'utf8')).has(anchor)) {
        broken.push(`${file}: ${href} (no such heading)`);
      }
    }
  }
  expect(broken).toEqual([]);
});

// Every code the sources can raise is in docs/errors.md, and the page lists no code they lack.
test('docs/errors.md lists exactly the error codes the code raises', () => {
  const codesIn = (text: string): Set<string> => new Set(text.match(/\bERR_[A-Z0-9_]*[A-Z0-9]\b/g) ?? []);
  const sources = ['src', 'native'].flatMap((dir) =>
    (fs.readdirSync(path.join(ROOT, dir), { recursive: true }) as string[])
      .filter((f) => /\.(ts|cc|h)$/.test(f))
      .map((f) => fs.readFileSync(path.join(ROOT, dir, f), 'utf8')),
  );
  const raised = [...codesIn(sources.join('\n'))].sort();
  const documented = [...codesIn(fs.readFileSync(path.join(ROOT, 'docs', 'errors.md'), 'utf8'))].sort();
  expect(documented).toEqual(raised);
});
