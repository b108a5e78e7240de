import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CheckOutcome } from './lib/checks.ts';
import { cleanupAll } from './lib/cleanup.ts';
import { startInProcessTarget } from './lib/targets.ts';
import { runTokenAttacks, type TokenAttackReport } from './lib/token-attacks.ts';

/**
 * The token-attacks scenario against in-process servers: the same cases,
 * grouped so that a failure names the edge and the kind of attack.
 */
let report: TokenAttackReport;

beforeAll(async () => {
  report = await runTokenAttacks({ startTarget: (env) => startInProcessTarget({ env }), quick: true });
}, 60_000);

afterAll(async () => {
  await cleanupAll();
});

function group(prefix: string): { outcomes: CheckOutcome[]; failures: CheckOutcome[] } {
  const outcomes = report.checks.outcomes.filter((outcome) => outcome.name.startsWith(prefix));
  return { outcomes, failures: outcomes.filter((outcome) => !outcome.pass) };
}

describe('token attacks with a remote key set, issuer and audience', () => {
  it('accepts a valid token on both edges (the control)', () => {
    const { outcomes, failures } = group('ws: a valid token');
    expect(outcomes).toHaveLength(1);
    expect(failures).toEqual([]);
    expect(group('rest: a valid token').failures).toEqual([]);
  });

  it.each([
    ['the handshake refuses every forged token with 4003', 'ws: ', 25],
    ['the user route refuses every forged token with 401', 'rest /notifications/count: ', 25],
    ['the permission route refuses every forged token with 401', 'rest /socket/websocket/clients: ', 25],
    ['unknown kids do not hammer the key set; jku is never followed', 'jwks: ', 2],
    ['oversized tokens are refused promptly, never with a 5xx', 'rest: a 1', 2],
    ['a key set that is down, hanging or failing ends in 4003 within the bound', 'ws: key set ', 3],
    ['... and in 503 ERR_JWKS_UNAVAILABLE on REST', 'rest: key set ', 3],
    ['... while /health keeps answering', 'health: key set ', 3],
  ])('%s', (_label, prefix, atLeast) => {
    const { outcomes, failures } = group(prefix);
    expect(outcomes.length).toBeGreaterThanOrEqual(atLeast);
    expect(failures).toEqual([]);
  });

  it('bounds the wait on a hanging key set by the verifier timeout, not the 15 s handshake', () => {
    const hanging = Object.entries(report.timings).filter(([name]) => name.startsWith('outage hanging'));
    expect(hanging).toHaveLength(2);
    for (const [, ms] of hanging) {
      expect(ms).toBeGreaterThan(4_000);
      expect(ms).toBeLessThan(7_000);
    }
  });
});
