import { hashPassword } from '../../../src/domain/password-hash.ts';
import type { ReliabilityScenario } from '../scenario.ts';
import { runAuthorization } from '../lib/authorization.ts';
import { healthSummary, startChildTarget } from '../lib/targets.ts';

export const scenario: ReliabilityScenario = {
  name: 'authorization',
  category: 'attack',
  what:
    'A child-process signal on a fresh PostgreSQL database. Inbox: notifications for two users created through POST /dev/activity-events, then list, ' +
    'count, mark-read (on every id of the other user, neighbouring and random ids) and mark-all-read across users, look-alike user ids, smuggled query ' +
    'parameters, a service principal. Direct messages: joining rooms named after another client id (any case) or user, sending to random client ids, ' +
    'client frames posing as send instructions. Merchant rooms against PolicyDefinition rows (live, deleted, role, grant, look-alike and random ids). ' +
    'The REST authorization matrix of test/integration/client-routes.test.ts on every client route.',
  expected:
    "No user sees, counts or changes another user's notifications (404 on foreign ids, counts unchanged); live pushes reach only the recipient; no " +
    "client receives another client's direct messages; only a live user membership admits a merchant/organizer room; matrix: 401 without or with bad " +
    'credentials, 403 without the permission, 200 for ADMIN, SUPER_ADMIN and the service principal.',
  async run({ quick, log }) {
    const service = { user: 'svc-reliability', password: `pw-${Date.now()}` };
    const target = await startChildTarget({
      freshDatabase: true,
      env: { APP_ENV_BASIC_AUTH_USERS: `${service.user}:${await hashPassword(service.password)}` },
    });
    let checks;
    try {
      checks = await runAuthorization({ target, service, quick, log });
    } finally {
      await target.stop();
    }
    const health = target.health();
    const pass = checks.passed && health.exited === null && health.crashLines.length === 0;
    return {
      pass,
      measured: `${checks.summary()}. ${healthSummary(health)}.`,
      details: { failures: checks.failures, checks: checks.outcomes.length, errorLogs: health.errorLogs.slice(0, 10) },
    };
  },
};
