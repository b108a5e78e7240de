import { closedPort, startJwksServer } from '../../fixtures/jwks-server.ts';
import { Checks } from './checks.ts';
import { onCleanup } from './cleanup.ts';
import { AUDIENCE, createIssuer, forgedCases, ISSUER, validClaims } from './forged-tokens.ts';
import { isErrorBody, leaksInBody, rawRequest, type RawResponse } from './http.ts';
import type { SignalTarget } from './targets.ts';
import { attemptAuthentication, describeAttempt, isAuthFailure, type WsAttempt } from './ws-attempt.ts';

/**
 * Token attacks on both edges of a signal configured like production: a
 * remote JWKS (here a local one), issuer and audience checks. Then the key
 * set itself fails: down, hanging, stalling, erroring.
 */
export interface TokenAttackOptions {
  /** Starts a signal with the given extra environment (in-process or child). */
  startTarget(env: Record<string, string>): Promise<SignalTarget>;
  quick: boolean;
  log?: (line: string) => void;
}

export interface TokenAttackReport {
  checks: Checks;
  /** Milliseconds to the refusal, per case, for the report. */
  timings: Record<string, number>;
  jwksFetches: { real: number; attacker: number };
}

/** A forged token must be refused at once when the key set is at hand. */
export const PROMPT_MS = 2_000;
/** With the key set down or hanging: the verifier's 5 s fetch bound plus slack, well inside the 15 s handshake bound. */
export const OUTAGE_BOUND_MS = 7_000;
const HANDSHAKE_BOUND_MS = 15_000;
const REST_USER_ROUTE = '/notifications/count';
const REST_PERMISSION_ROUTE = '/socket/websocket/clients';

function envFor(jwksUrl: string): Record<string, string> {
  return { APP_ENV_JWKS_URL: jwksUrl, APP_ENV_JWT_ISSUER: ISSUER, APP_ENV_JWT_AUDIENCE: AUDIENCE };
}

const bearer = (token: string): Record<string, string> => ({ authorization: `Bearer ${token}` });

function restSummary(response: RawResponse): string {
  return `${response.status} ${response.text.slice(0, 120)} in ${Math.round(response.ms)} ms`;
}

/** A refusal on REST: the status, a `{code, message}` body without internals, and the challenge header on 401. */
function checkRestRefusal(checks: Checks, name: string, response: RawResponse, status: number, code: string, boundMs: number): void {
  const body = response.json as { code?: unknown } | undefined;
  const ok =
    response.status === status &&
    isErrorBody(response.json) &&
    body?.code === code &&
    leaksInBody(response.text).length === 0 &&
    (status !== 401 || String(response.headers['www-authenticate'] ?? '').includes('Bearer')) &&
    response.ms < boundMs;
  checks.record(name, ok, `${status} {code:"${code}"} within ${boundMs} ms`, restSummary(response));
}

function checkWsRefusal(checks: Checks, name: string, attempt: WsAttempt, boundMs: number): void {
  checks.record(name, isAuthFailure(attempt) && attempt.ms < boundMs, `error "Authentication failed", close 4003 within ${boundMs} ms`, describeAttempt(attempt));
}

export async function runTokenAttacks(options: TokenAttackOptions): Promise<TokenAttackReport> {
  const checks = new Checks();
  const timings: Record<string, number> = {};
  const issuer = await createIssuer();
  const jwks = await startJwksServer({ keys: [issuer.publicJwk] });
  onCleanup(() => jwks.close());
  const attacker = await startJwksServer({ keys: [] });
  onCleanup(() => attacker.close());

  const target = await options.startTarget(envFor(jwks.jwksUrl));
  const valid = await issuer.sign(validClaims('attack-target'));

  // The control: without it every refusal below could be a broken setup.
  const accepted = await attemptAuthentication(target.wsUrl, valid, { stopAtConnected: true });
  checks.record('ws: a valid token is accepted (control)', accepted.frames[0]?.startsWith('{"event":"connected"') === true, 'connected', describeAttempt(accepted));
  const acceptedRest = await rawRequest(`${target.http}${REST_USER_ROUTE}`, { headers: bearer(valid) });
  checks.record('rest: a valid token is accepted (control)', acceptedRest.status === 200, '200', restSummary(acceptedRest));

  options.log?.('token attacks: forged tokens');
  for (const forged of await forgedCases(issuer, attacker.jwksUrl)) {
    const token = await forged.make();
    const attempt = await attemptAuthentication(target.wsUrl, token);
    timings[`ws ${forged.name}`] = attempt.ms;
    checkWsRefusal(checks, `ws: ${forged.name}`, attempt, PROMPT_MS);
    for (const route of [REST_USER_ROUTE, REST_PERMISSION_ROUTE]) {
      const response = await rawRequest(`${target.http}${route}`, { headers: bearer(token) });
      checkRestRefusal(checks, `rest ${route}: ${forged.name}`, response, 401, 'ERR_UNAUTHORIZED', PROMPT_MS);
    }
  }

  // An attacker sending many unknown kids must not make the service hammer the identity service.
  const unknownKids = options.quick ? 10 : 40;
  for (let index = 0; index < unknownKids; index++) {
    await rawRequest(`${target.http}${REST_USER_ROUTE}`, { headers: bearer(await issuer.sign(validClaims(), { kid: `guess-${index}` })) });
  }
  checks.record(`jwks: ${unknownKids} unknown kids cause at most 2 key set fetches in total`, jwks.fetches <= 2, '<= 2', String(jwks.fetches));
  checks.record('jwks: a key set linked from a token header (jku) is never fetched', attacker.fetches === 0, '0', String(attacker.fetches));

  options.log?.('token attacks: oversized tokens');
  const big = `${valid}${'A'.repeat(100 * 1024)}`;
  const bigWs = await attemptAuthentication(target.wsUrl, big);
  timings['ws 100 KB token'] = bigWs.ms;
  checkWsRefusal(checks, 'ws: a 100 KB token', bigWs, PROMPT_MS);
  const hugeWs = await attemptAuthentication(target.wsUrl, `${valid}${'A'.repeat(200 * 1024)}`);
  checks.record('ws: a 200 KB token (frame over 128 KiB) closes 1009', hugeWs.close?.code === 1009 && hugeWs.close.reason === 'Message too big', 'close 1009 "Message too big"', describeAttempt(hugeWs));
  const tenKb = await rawRequest(`${target.http}${REST_USER_ROUTE}`, { headers: bearer(`${valid}${'A'.repeat(10 * 1024)}`) });
  checkRestRefusal(checks, 'rest: a 10 KB bearer token', tenKb, 401, 'ERR_UNAUTHORIZED', PROMPT_MS);
  const hundredKb = await rawRequest(`${target.http}${REST_USER_ROUTE}`, { headers: bearer(big) });
  const hundredOk =
    (hundredKb.status === 431 || (hundredKb.status === 401 && isErrorBody(hundredKb.json))) && leaksInBody(hundredKb.text).length === 0 && hundredKb.ms < PROMPT_MS;
  checks.record('rest: a 100 KB Authorization header', hundredOk, '401 {code,message} or 431, never 500', restSummary(hundredKb));
  await target.stop();

  await keySetOutages(options, checks, timings, valid);
  return { checks, timings, jwksFetches: { real: jwks.fetches, attacker: attacker.fetches } };
}

/** The key set is down, hangs, stalls or errors: refusals stay bounded and the server keeps serving. */
async function keySetOutages(options: TokenAttackOptions, checks: Checks, timings: Record<string, number>, token: string): Promise<void> {
  const broken = await startJwksServer({ keys: [] });
  onCleanup(() => broken.close());
  const outages: Array<[string, string]> = [
    ['down (nothing listening)', `http://127.0.0.1:${await closedPort()}/jwks.json`],
    ['hanging (accepts, never answers)', broken.hangUrl],
    ['answering 500', broken.errorUrl],
  ];
  if (!options.quick) outages.push(['stalling (headers, then silence)', broken.stallUrl]);

  for (const [label, url] of outages) {
    options.log?.(`token attacks: key set ${label}`);
    const target = await options.startTarget(envFor(url));
    try {
      const parallel = options.quick ? 3 : 10;
      const [attempts, rest, health] = await Promise.all([
        Promise.all(Array.from({ length: parallel }, () => attemptAuthentication(target.wsUrl, token))),
        rawRequest(`${target.http}${REST_USER_ROUTE}`, { headers: bearer(token), timeoutMs: HANDSHAKE_BOUND_MS }),
        // While verifications wait on the key set, everything else must go on.
        delayed(300, () => rawRequest(`${target.http}/health`, { timeoutMs: HANDSHAKE_BOUND_MS })),
      ]);
      const slowest = attempts.reduce((worst, each) => (each.ms > worst.ms ? each : worst));
      timings[`outage ${label}: ws (slowest of ${parallel})`] = slowest.ms;
      timings[`outage ${label}: rest`] = Math.round(rest.ms);
      const allRefused = attempts.every((each) => isAuthFailure(each) && each.ms < OUTAGE_BOUND_MS);
      checks.record(`ws: key set ${label}: ${parallel} handshakes refused 4003 within ${OUTAGE_BOUND_MS} ms`, allRefused, `4003 within ${OUTAGE_BOUND_MS} ms each`, describeAttempt(slowest));
      checkRestRefusal(checks, `rest: key set ${label}`, rest, 503, 'ERR_JWKS_UNAVAILABLE', OUTAGE_BOUND_MS);
      checks.record(`health: key set ${label}: /health answers meanwhile`, health.status === 200 && health.ms < 1_000, '200 within 1 s', restSummary(health));
    } finally {
      await target.stop();
    }
  }
}

async function delayed<T>(ms: number, work: () => Promise<T>): Promise<T> {
  await new Promise((resolve) => setTimeout(resolve, ms));
  return work();
}

