import { CleanupStack, within } from '../../fixtures/cleanup-stack.ts';
import { ClientFleet, type FleetReport } from '../../fixtures/fleet/client-fleet.ts';
import type { ClientSpec } from '../../fixtures/fleet/fleet-protocol.ts';
import { parseExposition, total } from '../../fixtures/prometheus-text.ts';
import { watchResponsiveness } from '../../fixtures/responsiveness.ts';
import { mib, prepareEnv, sourceAddress, spreadOf } from '../../fixtures/reliability-env.ts';
import { errorLines, killServices, rssBytes, startService, type SignalService } from '../../fixtures/signal-service.ts';
import { Checks } from '../lib/checks.ts';
import { onCleanup } from '../lib/cleanup.ts';
import type { ReliabilityScenario, ScenarioOptions, ScenarioResult } from '../scenario.ts';

/**
 * Sockets that open and never authenticate. Part one floods an uncapped
 * instance: each socket must be closed by the 5 s authentication timer
 * (4001) and the distribution of its close time is measured from the
 * client's side. Part two opens cap + half again against an instance with
 * APP_ENV_WEBSOCKET_MAX_CONNECTIONS = cap: exactly `cap` upgrades succeed,
 * the rest get HTTP 503, and once the timer has closed the first ones the
 * same number of upgrades succeeds again. /health is timed throughout.
 */
const AUTH_TIMEOUT_MS = 5_000;
/**
 * The 4001 must come at the timer. The server arms it when it takes the
 * upgrade, which the client cannot see; it lies between the client sending
 * the request and the client's `open` event. So: never earlier than 5 s
 * after the request was sent (less 5 ms of timer rounding), and no later
 * than 5 s + 1 s of scheduling after `open`.
 */
const CLOSE_WINDOW_MS = { min: AUTH_TIMEOUT_MS - 5, max: AUTH_TIMEOUT_MS + 1_000 };

export interface FloodSizes {
  flood: number;
  cap: number;
  workers: number;
}

export const scenario: ReliabilityScenario = {
  name: 'connection-flood',
  category: 'load',
  what:
    '5,000 sockets (quick: 1,000) open against one instance and never send authenticate; then cap + 50 % at once (cap 500, quick: 100) against an instance with APP_ENV_WEBSOCKET_MAX_CONNECTIONS = cap, and cap again once the first ones were closed.',
  expected:
    'Every flooding socket is accepted and closed with 4001 "Authentication timeout", never before 5 s after its request and no later than 6 s after it opened; the capped instance never holds more than cap sockets (its own gauge, sampled every 100 ms), refuses every other upgrade with HTTP 503 and a JSON body (its refusal counter agreeing with the clients), and accepts cap upgrades again once the timer closed the first ones; both instances keep running with no error line.',
  timeLimitMs: { quick: 60_000, full: 120_000 },
  run: ({ quick, log }: ScenarioOptions) => runConnectionFlood(quick ? { flood: 1_000, cap: 100, workers: 2 } : { flood: 5_000, cap: 500, workers: 2 }, log),
};

export async function runConnectionFlood(sizes: FloodSizes, log?: (line: string) => void): Promise<ScenarioResult> {
  const stack = new CleanupStack();
  const release = onCleanup(() => stack.run());
  try {
    const setup = await prepareEnv(stack, 'flood', { redis: false, database: true });
    const services = await Promise.all([
      startService(setup.env, { name: 'open', sockets: sizes.flood }),
      startService({ ...setup.env, APP_ENV_WEBSOCKET_MAX_CONNECTIONS: String(sizes.cap) }, { name: 'capped', sockets: sizes.cap * 2 }),
    ]);
    stack.defer('kill the instances', () => killServices(services));
    const [open, capped] = services as [SignalService, SignalService];
    const health = watchResponsiveness(open, { scrapeMs: 1_000 });
    stack.defer('stop watching /health', () => health.stop());
    const rssBefore = rssBytes(open.child.pid);

    // Part one: the flood, alone on the machine's CPUs (the close times are the measurement).
    const flood = await idleFleet(stack, open.ws, sizes.flood, sizes.workers);
    log?.(`${flood.outcome.ok} idle sockets open in ${Math.round(flood.outcome.ms)} ms`);
    const rssPeak = rssBytes(open.child.pid);
    await within(async () => (await flood.fleet.report()).open === 0, AUTH_TIMEOUT_MS + 15_000, 200);
    const floodReport = await flood.fleet.report({ detail: true });
    const healthDuringFlood = await health.stop();
    await flood.fleet.close();
    const floodOutcome = flood.outcome;
    const closed = floodReport.perClient.filter((client) => client.connects.length > 0 && client.closes.length > 0);
    const closeAfter = closed.map((client) => client.closes[0]!.at - client.connects[0]!);
    const closeAfterRequest = closed.map((client) => client.closes[0]!.at - client.openedAt);
    const codes = closeCodes(floodReport);
    const early = closeAfterRequest.filter((ms) => ms < CLOSE_WINDOW_MS.min).length;
    const late = closeAfter.filter((ms) => ms > CLOSE_WINDOW_MS.max).length;

    // Part two: the cap. The server's own gauge of open sockets is sampled throughout, and its
    // refusal counter is compared with the 503s the clients saw: if opening took longer than the
    // 5 s timer, early sockets are closed and their slots legitimately reused.
    const overflow = Math.ceil(sizes.cap / 2);
    const sampler = sampleOpenSockets(capped);
    stack.defer('stop sampling open sockets', () => sampler.stop());
    const first = await idleFleet(stack, capped.ws, sizes.cap + overflow, sizes.workers);
    const capReport = await first.fleet.report({ detail: true });
    log?.(`capped: ${first.outcome.ok} accepted, ${first.outcome.refused} refused in ${Math.round(first.outcome.ms)} ms`);
    const freedMs = await within(async () => (await openSockets(capped)) === 0 && (await first.fleet.report()).open === 0, AUTH_TIMEOUT_MS + 15_000, 200);
    // The same workers open the next batch: no process start-up competes with the measurement.
    const second = await first.fleet.connectMore(idleSpecs(sizes.cap, sizes.cap + overflow), 30_000);
    const maxOpen = await sampler.stop();
    const refusedByServer = await capacityRefusals(capped);
    await first.fleet.close();
    const refusals = capReport.perClient.filter((client) => client.refusedStatus !== undefined);
    const refusedWith503 = refusals.filter((client) => client.refusedStatus === 503 && isServiceUnavailable(client.refusedBody)).length;
    const cap = { first: first.outcome, freedMs, second };

    const spread = spreadOf(closeAfter);
    const fromRequest = spreadOf(closeAfterRequest);
    const checks = new Checks();
    checks.record('flood sockets accepted', floodOutcome.ok === sizes.flood, String(sizes.flood), `${floodOutcome.ok} (${floodOutcome.failed} failed, ${floodOutcome.refused} refused)`);
    checks.record('closed with 4001 Authentication timeout', codes['4001 Authentication timeout'] === sizes.flood, String(sizes.flood), JSON.stringify(codes));
    checks.record('closed before 5 s had passed since the request', early === 0 && closed.length === sizes.flood, '0', `${early} (${closed.length} measured)`);
    checks.record(`closed more than ${CLOSE_WINDOW_MS.max / 1000} s after opening`, late === 0 && closed.length === sizes.flood, '0', `${late} (${closed.length} measured)`);
    checks.record('capped: open sockets (server gauge, sampled every 100 ms)', maxOpen <= sizes.cap && maxOpen > 0, `<= ${sizes.cap}`, String(maxOpen));
    checks.record('capped: every upgrade accepted or refused', cap.first.ok + cap.first.refused === sizes.cap + overflow && cap.first.failed === 0, String(sizes.cap + overflow), `${cap.first.ok} + ${cap.first.refused} (${cap.first.failed} failed otherwise)`);
    checks.record('capped: refusals are 503 with a JSON body', refusals.length > 0 && refusedWith503 === refusals.length, `all of ${refusals.length} (> 0)`, String(refusedWith503));
    checks.record("capped: the server's refusal count", refusedByServer === refusals.length, String(refusals.length), String(refusedByServer));
    checks.record('capped: capacity back after the timer', cap.freedMs !== null && cap.second.ok === sizes.cap, String(sizes.cap), String(cap.second.ok));
    for (const service of services) {
      checks.record(`${service.name} running`, service.running, 'running', service.running ? 'running' : 'exited');
      checks.record(`${service.name} error lines`, errorLines(service).length === 0, '0', String(errorLines(service).length));
    }

    const measured =
      `${sizes.flood} unauthenticated sockets: ${codes['4001 Authentication timeout'] ?? 0} closed 4001, close time after the client's open p50 ${spread.p50} / p95 ${spread.p95} / max ${spread.max} ms, after its request min ${fromRequest.min} ms; ` +
      `/health during the flood max ${healthDuringFlood.healthMaxMs} ms over ${healthDuringFlood.healthProbes} probes, event-loop delay max ${healthDuringFlood.loopMaxMs} ms ` +
      `(its thread waited for a CPU ${healthDuringFlood.runQueueWaitPct} % of the time); RSS ${mib(rssBefore)} → ${mib(rssPeak)} MiB; ` +
      `cap ${sizes.cap}, ${sizes.cap + overflow} upgrades: ${cap.first.ok} accepted, ${refusedWith503} refused with 503 (server counted ${refusedByServer}), at most ${maxOpen} open at once (server gauge), ${cap.second.ok}/${sizes.cap} accepted again after the timer. ${checks.summary()}`;
    return {
      measured,
      pass: checks.passed,
      details: { sizes, capOpenMs: Math.round(cap.first.ms), maxOpen, refusedByServer, closeAfterOpenMs: spread, closeAfterRequestMs: fromRequest, codes, early, late, responsiveness: healthDuringFlood, rssBeforeMiB: mib(rssBefore), rssPeakMiB: mib(rssPeak), openMs: floodOutcome.ms, checks: checks.outcomes },
    };
  } finally {
    await release();
  }
}

function idleSpecs(count: number, firstIndex = 0): ClientSpec[] {
  return Array.from({ length: count }, (_, offset) => ({ index: firstIndex + offset, token: '', rooms: [], group: 'idle', localAddress: sourceAddress(firstIndex + offset) }));
}

async function idleFleet(stack: CleanupStack, url: string, count: number, workers: number) {
  const opened = await ClientFleet.open({ mode: 'idle', url, workers, concurrency: 64, openTimeoutMs: 30_000, clients: idleSpecs(count) });
  stack.defer('close idle sockets', () => opened.fleet.close());
  return opened;
}

function closeCodes(report: FleetReport): Record<string, number> {
  const codes: Record<string, number> = {};
  for (const client of report.perClient) {
    const close = client.closes[0];
    const key = close === undefined ? 'none' : `${close.code} ${close.reason}`;
    codes[key] = (codes[key] ?? 0) + 1;
  }
  return codes;
}

/** Open sockets by the instance's own gauge (every state of signal_ws_connections). */
async function openSockets(service: SignalService): Promise<number> {
  const response = await fetch(`${service.http}/metrics`, { signal: AbortSignal.timeout(5_000) });
  return total(parseExposition(await response.text()), 'signal_ws_connections');
}

async function capacityRefusals(service: SignalService): Promise<number> {
  const response = await fetch(`${service.http}/metrics`, { signal: AbortSignal.timeout(5_000) });
  return total(parseExposition(await response.text()), 'signal_ws_upgrades_refused_total', { reason: 'capacity' });
}

/** The largest open-socket count seen, sampling every 100 ms until stopped. */
function sampleOpenSockets(service: SignalService): { stop(): Promise<number> } {
  let running = true;
  let max = 0;
  const sampling = (async () => {
    while (running) {
      try {
        max = Math.max(max, await openSockets(service));
      } catch {
        // The next sample tries again.
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  })();
  return {
    stop: async () => {
      running = false;
      await sampling;
      return max;
    },
  };
}

function isServiceUnavailable(body: string | undefined): boolean {
  try {
    return (JSON.parse(body ?? '') as { code?: string }).code === 'SERVICE_UNAVAILABLE';
  } catch {
    return false;
  }
}
