import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { expectWellFormedResults, runQuickBench } from './bench-quick-run.ts';

/**
 * `npm run bench -- --quick --scenario broadcast-2000` end to end. The
 * pipeline and REST scenarios have their own suite
 * (bench-quick-pipeline-rest.test.ts): all of them in one run would not fit
 * the quick run's deadline on a loaded two-core machine.
 */
const KILL_AFTER_MS = 170_000;
const out = mkdtempSync(join(tmpdir(), 'signal-bench-test-'));

afterAll(() => rmSync(out, { recursive: true, force: true }));

describe('npm run bench -- --quick (broadcast)', () => {
  it(
    'writes latest.json rows with finite positive figures and ratio = signal / limit, and latest.md',
    async () => {
      const { code, stderr } = await runQuickBench(out, ['broadcast-2000'], KILL_AFTER_MS);
      expect(code, stderr).toBe(0);
      const rows = expectWellFormedResults(out);
      expect(rows.some((row) => row.scenario === 'broadcast-2000' && row.metric === 'deliveries_per_sec')).toBe(true);
    },
    KILL_AFTER_MS + 5_000,
  );
});
