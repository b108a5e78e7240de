import type { ReliabilityScenario } from '../scenario.ts';
import { OUTAGE_BOUND_MS, PROMPT_MS, runTokenAttacks } from '../lib/token-attacks.ts';
import { startInProcessTarget } from '../lib/targets.ts';

export const scenario: ReliabilityScenario = {
  name: 'token-attacks',
  category: 'attack',
  what:
    'Against a signal verifying tokens with a remote JWKS (a local key-set server) and APP_ENV_JWT_ISSUER/AUDIENCE set, on both the /stream handshake and ' +
    'REST (a user route and a permission route): alg none, HS256/HS512 keyed with the public key, unknown and mismatched kids, embedded jwk and jku ' +
    'headers, RS256 and ES384 confusion, swapped payloads, stripped signatures, expired, not-yet-valid (nbf), wrong/missing issuer and audience, ' +
    'missing user id, unknown critical headers, garbage, 100 KB and 200 KB tokens, a flood of unknown kids; then the key set down (closed port), ' +
    'hanging, stalling (full run) and answering 500.',
  expected:
    `Every forged token refused: WS error "Authentication failed" + close 4003 within ${PROMPT_MS / 1000} s, REST 401 ERR_UNAUTHORIZED with WWW-Authenticate; ` +
    'a 200 KB token closes 1009; a 100 KB Authorization header gets 401 or 431, never 500; unknown kids cause at most 2 key-set fetches and a jku URL is ' +
    `never fetched. Key set unavailable: WS 4003 and REST 503 ERR_JWKS_UNAVAILABLE within ${OUTAGE_BOUND_MS / 1000} s (handshake bound 15 s), /health unaffected.`,
  async run({ quick, log }) {
    const report = await runTokenAttacks({ startTarget: (env) => startInProcessTarget({ env }), quick, log });
    const { checks, timings } = report;
    const outage = Object.entries(timings)
      .filter(([name]) => name.startsWith('outage '))
      .map(([name, ms]) => `${name.slice(7)} ${ms} ms`)
      .join('; ');
    const slowestForged = Math.max(...Object.entries(timings).filter(([name]) => !name.startsWith('outage ')).map(([, ms]) => ms));
    return {
      pass: checks.passed,
      measured: `${checks.summary()}. Slowest refusal of a forged token: ${slowestForged} ms. Key set outages: ${outage}. Key-set fetches: ${report.jwksFetches.real} (real), ${report.jwksFetches.attacker} (jku).`,
      details: { failures: checks.failures, timings, jwksFetches: report.jwksFetches },
    };
  },
};
