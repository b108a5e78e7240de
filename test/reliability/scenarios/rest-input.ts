import { hashPassword } from '../../../src/domain/password-hash.ts';
import type { ReliabilityScenario } from '../scenario.ts';
import { runRestInput } from '../lib/rest-input.ts';
import { healthSummary, startChildTarget } from '../lib/targets.ts';

export const scenario: ReliabilityScenario = {
  name: 'rest-input',
  category: 'attack',
  what:
    'Bad input on the REST routes of a child-process signal: wrong types and missing fields on every body and query, bodies over 1 MiB with a ' +
    'Content-Length and sent chunked without one, truncated/trailing-comma/empty/invalid-UTF-8 JSON, JSON nested 10,000 levels, text, form, multipart ' +
    'and XML content types, unknown routes, dot segments, wrong methods; then fast-check-generated requests (random routes, path segments, queries, ' +
    'bodies, content types and credentials: 150 quick, 2,000 full).',
  expected:
    'Each answered with the documented status (400 naming the field, 401, 404, 413 for bodies over 1 MiB, however they are sent, 415 for a body ' +
    'that is not JSON: text, form, multipart, XML or untyped) and a JSON ' +
    '{code, message} body with an X-Request-Id; never a 5xx, a stack frame or a file path.',
  async run({ quick, log }) {
    const service = { user: 'svc-reliability', password: `pw-${Date.now()}` };
    const target = await startChildTarget({
      freshDatabase: true,
      env: { APP_ENV_BASIC_AUTH_USERS: `${service.user}:${await hashPassword(service.password)}` },
    });
    let report;
    try {
      report = await runRestInput({ target, service, quick, log });
    } finally {
      await target.stop();
    }
    const health = target.health();
    const pass = report.checks.passed && health.exited === null && health.crashLines.length === 0;
    return {
      pass,
      measured: `${report.checks.summary(10)}. ${healthSummary(health)}.`,
      details: { failures: report.checks.failures, errorLogs: health.errorLogs.slice(0, 10) },
      notes: report.observations,
    };
  },
};
