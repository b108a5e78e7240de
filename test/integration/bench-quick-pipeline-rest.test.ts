import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { expectWellFormedResults, runQuickBench } from './bench-quick-run.ts';

/**
 * The quick mode of the pipeline and REST scenarios end to end (a fake
 * Kafka broker, a fresh database on the local PostgreSQL, the real service,
 * encrypted push clients; then the status route under load). Shape only,
 * never the figures.
 */
const KILL_AFTER_MS = 170_000;
const out = mkdtempSync(join(tmpdir(), 'signal-bench-test-'));

afterAll(() => rmSync(out, { recursive: true, force: true }));

describe('npm run bench -- --quick (pipeline-merchant-50, rest-status)', () => {
  it(
    'writes a well-formed row for each figure of both scenarios, with the settings and every round in params',
    async () => {
      const { code, stderr } = await runQuickBench(out, ['pipeline-merchant-50', 'rest-status'], KILL_AFTER_MS);
      expect(code, stderr).toBe(0);
      const rows = expectWellFormedResults(out);
      const figures = rows.map((row) => `${String(row.scenario)}/${String(row.metric)}`);
      expect(figures).toEqual(
        expect.arrayContaining(['pipeline-merchant-50/events_per_sec', 'rest-status/requests_per_sec']),
      );
      for (const row of rows) {
        const params = row.params as Record<string, unknown>;
        expect(Array.isArray(params.signalRounds), String(row.metric)).toBe(true);
        expect((params.signalRounds as unknown[]).length).toBe((params.limitRounds as unknown[]).length);
      }
      const pipeline = rows.find((row) => row.scenario === 'pipeline-merchant-50')!.params as Record<string, unknown>;
      expect(pipeline.merchantMembers).toBe(50);
      expect(pipeline.pushClientsConnected).toBeGreaterThan(0);
    },
    KILL_AFTER_MS + 5_000,
  );
});
