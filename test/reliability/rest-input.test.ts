import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashPassword } from '../../src/domain/password-hash.ts';
import { cleanupAll } from './lib/cleanup.ts';
import { inputCases, runRestInput, type RestInputReport } from './lib/rest-input.ts';
import { startInProcessTarget } from './lib/targets.ts';

/** The rest-input scenario against an in-process server, one test per group of cases. */
let report: RestInputReport;

beforeAll(async () => {
  const service = { user: 'svc-reliability', password: 'reliability-password' };
  const target = await startInProcessTarget({ env: { APP_ENV_BASIC_AUTH_USERS: `${service.user}:${await hashPassword(service.password)}` } });
  report = await runRestInput({ target, service, quick: true });
}, 90_000);

afterAll(async () => {
  await cleanupAll();
});

describe('REST input', () => {
  it.each([...Object.keys(inputCases()), 'generated requests'])('%s: a documented 4xx with {code, message}, never a 5xx or internals', (group) => {
    const outcomes = report.checks.outcomes.filter((outcome) => outcome.name.startsWith(`${group}: `));
    expect(outcomes.length).toBeGreaterThan(0);
    expect(outcomes.filter((outcome) => !outcome.pass)).toEqual([]);
  });
});
