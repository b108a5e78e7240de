import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashPassword } from '../../src/domain/password-hash.ts';
import { runAuthorization } from './lib/authorization.ts';
import type { Checks } from './lib/checks.ts';
import { cleanupAll } from './lib/cleanup.ts';
import { startInProcessTarget, type SignalTarget } from './lib/targets.ts';

/**
 * The authorization scenario on an in-process server with a fresh
 * PostgreSQL database (the runner uses a child process).
 */
let target: SignalTarget;
let checks: Checks;

beforeAll(async () => {
  const service = { user: 'svc-reliability', password: 'reliability-password' };
  target = await startInProcessTarget({
    freshDatabase: true,
    env: { APP_ENV_BASIC_AUTH_USERS: `${service.user}:${await hashPassword(service.password)}` },
  });
  checks = await runAuthorization({ target, service, quick: true });
}, 90_000);

afterAll(async () => {
  await cleanupAll();
});

describe('authorization', () => {
  it.each([
    ["no user sees, counts or changes another user's notifications", 'inbox: ', 15],
    ["no client receives another client's direct messages", 'direct: ', 4],
    ['merchant and organizer rooms admit live members only', 'rooms: ', 5],
    ['the REST permission matrix holds on every client route', 'matrix ', 7 * 8],
  ])('%s', (_label, prefix, atLeast) => {
    const outcomes = checks.outcomes.filter((outcome) => outcome.name.startsWith(prefix));
    expect(outcomes.length).toBeGreaterThanOrEqual(atLeast);
    expect(outcomes.filter((outcome) => !outcome.pass)).toEqual([]);
  });

  it('logged no internal error while being probed', () => {
    expect(target.health()).toEqual({ exited: null, crashLines: [], errorLogs: [] });
  });
});
