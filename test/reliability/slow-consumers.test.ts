import { describe, expect, it } from 'vitest';
import { runSlowConsumers } from './scenarios/slow-consumers.ts';

/**
 * The slow-consumers scenario at a size `npm test` can afford: 4 healthy
 * clients and 2 that stop reading. Latency is compared in the full scenario
 * only (a shared machine makes two short windows too noisy to assert on);
 * here it is reported in the failure message when something else fails.
 */
describe('slow consumers (reliability subset)', () => {
  it('closes clients that stop reading with 4005 while memory stays flat and the healthy ones miss nothing', async () => {
    const result = await runSlowConsumers({ healthy: 4, slow: 2, rate: 40, padBytes: 32 * 1024, baselineMs: 1_500, afterMs: 1_500 });
    const checks = result.details?.checks as Array<{ name: string; pass: boolean; expected: string; observed: string }>;
    const failed = checks.filter((check) => !check.pass && !check.name.startsWith('healthy p99'));
    expect(failed, result.measured).toEqual([]);
    expect(result.details?.slowCloseCodes).toEqual([4005, 4005]);
  }, 60_000);
});
