import { describe, expect, it } from 'vitest';
import { runConnectionFlood } from './scenarios/connection-flood.ts';

/**
 * The connection-flood scenario at a size `npm test` can afford: 200
 * sockets that never authenticate, and a cap of 40 overrun by half.
 */
describe('connection flood (reliability subset)', () => {
  it('closes every unauthenticated socket with 4001 at the 5 s timer and answers upgrades over the cap with 503', async () => {
    const result = await runConnectionFlood({ flood: 200, cap: 40, workers: 1 });
    const failed = (result.details?.checks as Array<{ name: string; pass: boolean; expected: string; observed: string }>).filter((check) => !check.pass);
    expect(failed, result.measured).toEqual([]);
    expect(result.details?.codes).toEqual({ '4001 Authentication timeout': 200 });
    expect(result.pass).toBe(true);
  }, 60_000);
});
