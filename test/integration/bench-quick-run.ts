import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { expect } from 'vitest';

/**
 * Shared by the bench-quick suites: runs `bench/run.ts --quick` for some
 * scenarios in its own process, writing to a temp dir so the committed
 * results stay untouched, and checks the shape of what it wrote, never the
 * figures (those depend on the machine).
 */
const ROOT = resolve(import.meta.dirname, '../..');

export function runQuickBench(out: string, scenarios: readonly string[], killAfterMs: number): Promise<{ code: number | null; stderr: string }> {
  return new Promise((done) => {
    const args = ['--import', 'tsx', 'bench/run.ts', '--quick', '--out', out, ...scenarios.flatMap((name) => ['--scenario', name])];
    const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString('utf8')).slice(-8_000);
    });
    // The bench bounds itself; this is the backstop (SIGTERM lets it kill its own children).
    const timer = setTimeout(() => child.kill('SIGTERM'), killAfterMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      done({ code, stderr });
    });
  });
}

/** Reads latest.json and latest.md from `out` and checks every row's shape; returns the rows. */
export function expectWellFormedResults(out: string): Array<Record<string, unknown>> {
  const rows = JSON.parse(readFileSync(join(out, 'latest.json'), 'utf8')) as unknown;
  expect(Array.isArray(rows)).toBe(true);
  const list = rows as Array<Record<string, unknown>>;
  expect(list.length).toBeGreaterThan(0);
  for (const row of list) {
    expect(Object.keys(row).sort()).toEqual(['limit', 'metric', 'params', 'peer', 'ratioToLimit', 'ratioToPeer', 'scenario', 'signal', 'unit'].sort());
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
    // A row has a peer figure (and then ratioToPeer = signal / peer) or neither.
    if (row.peer === null) {
      expect(row.ratioToPeer).toBeNull();
    } else {
      for (const field of ['peer', 'ratioToPeer'] as const) {
        const value = row[field] as number;
        expect(typeof value, field).toBe('number');
        expect(Number.isFinite(value), field).toBe(true);
        expect(value, field).toBeGreaterThan(0);
      }
      expect(row.ratioToPeer as number).toBeCloseTo((row.signal as number) / (row.peer as number), 9);
    }
    expect(typeof row.params).toBe('object');
    expect(row.params).not.toBeNull();
  }

  const markdown = readFileSync(join(out, 'latest.md'), 'utf8');
  expect(markdown).toContain('| scenario | metric | unit | signal | peer | limit |');
  expect(markdown).toContain(`Node: ${process.version}`);
  expect(markdown).toMatch(/\d+ cores/);
  return list;
}
