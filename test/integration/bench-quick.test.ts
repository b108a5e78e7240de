import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

/**
 * `npm run bench -- --quick` end to end, in its own process, writing to a
 * temp dir so the committed results stay untouched. It checks the shape of
 * what the bench writes, never the figures: those depend on the machine.
 */
const ROOT = resolve(import.meta.dirname, '../..');
const KILL_AFTER_MS = 170_000;
const out = mkdtempSync(join(tmpdir(), 'signal-bench-test-'));

afterAll(() => rmSync(out, { recursive: true, force: true }));

function runQuickBench(): Promise<{ code: number | null; stderr: string }> {
  return new Promise((done) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'bench/run.ts', '--quick', '--out', out], {
      cwd: ROOT,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString('utf8')).slice(-8_000);
    });
    // The bench bounds itself; this is the backstop (SIGTERM lets it kill its own children).
    const timer = setTimeout(() => child.kill('SIGTERM'), KILL_AFTER_MS);
    child.once('exit', (code) => {
      clearTimeout(timer);
      done({ code, stderr });
    });
  });
}

describe('npm run bench -- --quick', () => {
  it(
    'writes latest.json rows with finite positive figures and ratio = signal / limit, and latest.md',
    async () => {
      const { code, stderr } = await runQuickBench();
      expect(code, stderr).toBe(0);

      const rows = JSON.parse(readFileSync(join(out, 'latest.json'), 'utf8')) as unknown;
      expect(Array.isArray(rows)).toBe(true);
      const list = rows as Array<Record<string, unknown>>;
      expect(list.length).toBeGreaterThan(0);
      for (const row of list) {
        expect(Object.keys(row).sort()).toEqual(
          ['limit', 'metric', 'params', 'peer', 'ratioToLimit', 'ratioToPeer', 'scenario', 'signal', 'unit'].sort(),
        );
        expect(typeof row.scenario).toBe('string');
        expect(typeof row.metric).toBe('string');
        expect(typeof row.unit).toBe('string');
        for (const field of ['signal', 'limit', 'ratioToLimit'] as const) {
          const value = row[field] as number;
          expect(typeof value, field).toBe('number');
          expect(Number.isFinite(value), field).toBe(true);
          expect(value, field).toBeGreaterThan(0);
        }
        expect(row.ratioToLimit as number).toBeCloseTo((row.signal as number) / (row.limit as number), 9);
        expect(row.peer).toBeNull();
        expect(row.ratioToPeer).toBeNull();
        expect(typeof row.params).toBe('object');
        expect(row.params).not.toBeNull();
      }
      expect(list.some((row) => row.scenario === 'broadcast-2000' && row.metric === 'deliveries_per_sec')).toBe(true);

      const markdown = readFileSync(join(out, 'latest.md'), 'utf8');
      expect(markdown).toContain('| scenario | metric | unit | signal | peer | limit |');
      expect(markdown).toContain(`Node: ${process.version}`);
      expect(markdown).toMatch(/\d+ cores/);
    },
    KILL_AFTER_MS + 5_000,
  );
});
