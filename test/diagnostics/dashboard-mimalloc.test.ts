// The dashboard under mimalloc, which reports its resident memory but not how much of it is
// allocated: that memory is the allocator's, not "other (code, stacks)".
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import fs from 'node:fs';
import { chromium } from 'playwright-core';
import { ALLOCATOR_LIBRARIES, MiB, findLibrary, fixture, testIf } from '../helpers';

const CHROMIUM = '/usr/bin/chromium';
const mimalloc = findLibrary(ALLOCATOR_LIBRARIES.mimalloc);
const UNITS: Record<string, number> = { B: 1, KiB: 1024, MiB, GiB: 1024 * MiB };

// "12.3 MiB" → bytes.
function parseBytes(text: string | null): number {
  const m = /^([\d.]+) (B|KiB|MiB|GiB)$/.exec(text ?? '');
  if (!m) throw new Error(`not a size: ${text}`);
  return Number(m[1]) * UNITS[m[2]];
}

function serve(preload: string): Promise<{ child: ChildProcessWithoutNullStreams; url: string }> {
  const env = { ...process.env, LD_PRELOAD: preload };
  const child = spawn(process.execPath, [fixture('serve-dashboard.js')], { env });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      const m = /@@RESULT@@(.*)\n/.exec(out);
      if (m) resolve({ child, url: JSON.parse(m[1]).url });
    });
    child.on('exit', (code) => reject(new Error(`server exited (${code}) before it reported its URL: ${out}`)));
  });
}

testIf(mimalloc !== null && fs.existsSync(CHROMIUM), 'libmimalloc.so.2 or chromium is not installed')(
  "counts mimalloc's resident memory as the allocator's, not as other",
  async () => {
    const { child, url } = await serve(mimalloc!);
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu'] });
    try {
      const page = await browser.newPage();
      await page.goto(`${url}dashboard`);
      await page.locator('#allocator', { hasText: /^mimalloc/ }).waitFor();
      await page.locator('#alloc', { hasText: /\d/ }).waitFor();
      expect(await page.locator('#allocLabel').textContent()).toMatch(/resident/);
      const alloc = parseBytes(await page.locator('#alloc').textContent());
      const other = parseBytes(await page.locator('#other').textContent());
      // Two idle workers keep about 128 MiB in mimalloc's heaps.
      expect(alloc).toBeGreaterThan(64 * MiB);
      expect(other).toBeLessThan(alloc);
    } finally {
      await browser.close();
      child.stdin.end();
    }
  },
);
