import { CleanupStack, pause, within } from '../../fixtures/cleanup-stack.ts';
import { ClientFleet, histogramCount, histogramPercentile, type FleetReport } from '../../fixtures/fleet/client-fleet.ts';
import { absoluteNow } from '../../fixtures/fleet/fleet-protocol.ts';
import { PacedPublisher } from '../../fixtures/paced-publisher.ts';
import { mib, prepareEnv, signTokens, sourceAddress, spreadOf } from '../../fixtures/reliability-env.ts';
import { errorLines, killServices, logTime, rssBytes, startService } from '../../fixtures/signal-service.ts';
import { Checks } from '../lib/checks.ts';
import { onCleanup } from '../lib/cleanup.ts';
import type { ReliabilityScenario, ScenarioOptions, ScenarioResult } from '../scenario.ts';

/**
 * Clients that stop reading, in the same room as healthy ones. The instance
 * runs with a 64 KiB outbound bound per client; a publisher sends large room
 * messages through Redis at a steady rate. Phase one measures the healthy
 * clients alone; then the slow clients join the room and stop reading
 * (their sockets are paused, so the kernel buffers fill and the server's
 * send queue grows), and the server must close each of them with 4005 while
 * its memory stays flat and the healthy clients' latency stays where it was.
 */
const ROOM = 'rel-slow';
const BOUND_BYTES = 64 * 1024;
/** Peak RSS over the healthy-only baseline; the slow clients' unbounded queues would exceed it within seconds. */
const RSS_GROWTH_BOUND_MIB = 64;
/** Slow clients stop reading one at a time, so that some hang in the room for the whole phase. */
const STAGGER_MS = 500;

export interface SlowSizes {
  healthy: number;
  slow: number;
  /** Room messages per second and their filler size. */
  rate: number;
  padBytes: number;
  baselineMs: number;
  afterMs: number;
}

export const scenario: ReliabilityScenario = {
  name: 'slow-consumers',
  category: 'load',
  what:
    'One instance with APP_ENV_WEBSOCKET_MAX_BUFFERED_BYTES = 64 KiB; 20 healthy clients (quick: 10) in a room receiving 40 messages/s of 32 KiB through Redis; then 16 more clients (quick: 4), one every 500 ms, stop reading and join the room.',
  expected:
    "Every slow client is closed with 4005 \"Slow consumer\" (seen in the server's log, and by the client once it reads again); the server's RSS never rises more than 64 MiB above the healthy-only baseline; the healthy clients miss nothing, stay connected, and their p99 latency while and after the slow clients are there is at most twice the baseline p99 plus 20 ms.",
  timeLimitMs: { quick: 90_000, full: 150_000 },
  run: ({ quick, log }: ScenarioOptions) =>
    runSlowConsumers(
      quick
        ? { healthy: 10, slow: 4, rate: 40, padBytes: 32 * 1024, baselineMs: 3_000, afterMs: 3_000 }
        : { healthy: 20, slow: 16, rate: 40, padBytes: 32 * 1024, baselineMs: 8_000, afterMs: 8_000 },
      log,
    ),
};

export async function runSlowConsumers(sizes: SlowSizes, log?: (line: string) => void): Promise<ScenarioResult> {
  const stack = new CleanupStack();
  const release = onCleanup(() => stack.run());
  try {
    const setup = await prepareEnv(stack, 'slow', {
      redis: true,
      database: true,
      env: { APP_ENV_WEBSOCKET_MAX_BUFFERED_BYTES: String(BOUND_BYTES), APP_ENV_WEBSOCKET_ROOM_ALLOW: ROOM },
    });
    const service = await startService(setup.env, { name: 'slow', sockets: sizes.healthy + sizes.slow });
    stack.defer('kill the instance', () => killServices([service]));
    const tokens = await signTokens(setup.issuer, Array.from({ length: sizes.healthy + sizes.slow }, (_, index) => `u-${index}`));
    const spec = (index: number, group: string, rooms: string[]) => ({ index, token: tokens[index]!, rooms, group, localAddress: sourceAddress(index) });
    const healthy = await ClientFleet.open({
      mode: 'raw',
      url: service.ws,
      workers: 1,
      openTimeoutMs: 30_000,
      clients: Array.from({ length: sizes.healthy }, (_, index) => spec(index, 'healthy', [ROOM])),
    });
    stack.defer('close the healthy clients', () => healthy.fleet.close());
    // Connected now but outside the room, so opening them costs nothing during the measured phases.
    const slowIndexes = Array.from({ length: sizes.slow }, (_, offset) => sizes.healthy + offset);
    const slow = await ClientFleet.open({
      mode: 'raw',
      url: service.ws,
      // Resumed, each slow client must decrypt its whole backlog (megabytes) before the close frame.
      workers: Math.ceil(sizes.slow / 4),
      openTimeoutMs: 30_000,
      clients: slowIndexes.map((index) => spec(index, 'slow', [])),
    });
    stack.defer('close the slow clients', () => slow.fleet.close());
    const slowIds = new Set((await slow.fleet.report({ detail: true })).perClient.map((client) => client.clientId));
    log?.('all clients connected');
    const publisher = await PacedPublisher.connect({
      redisUrl: setup.redis!.url,
      channelPrefix: setup.prefix,
      rate: sizes.rate,
      padBytes: sizes.padBytes,
      targetOf: () => ({ kind: 'room', room: ROOM }),
    });
    stack.defer('close the publisher', () => publisher.close());

    const rss: Array<{ at: number; bytes: number }> = [];
    const sampler = setInterval(() => rss.push({ at: absoluteNow(), bytes: rssBytes(service.child.pid) }), 200);
    stack.defer('stop sampling RSS', () => clearInterval(sampler));

    // Phase one: healthy clients only, after a second of warm-up.
    publisher.start();
    await pause(1_000);
    await healthy.fleet.report({ reset: true });
    await pause(sizes.baselineMs);
    const baseline = await healthy.fleet.report({ reset: true });
    const baselineEnd = absoluteNow();

    // Phase two: one by one, every STAGGER_MS, a slow client stops reading and joins the room.
    const slowReport0 = await slow.fleet.report({ detail: true });
    const indexOf = new Map(slowReport0.perClient.map((client) => [client.clientId, client.index]));
    const pausedAt = new Map<number, number>();
    const firstPause = absoluteNow();
    for (const index of slowIndexes) {
      slow.fleet.pause([index]);
      slow.fleet.joinQuietly([index], [ROOM]);
      pausedAt.set(index, absoluteNow());
      await pause(STAGGER_MS);
    }
    const closedBySever = (): Array<Record<string, unknown>> =>
      service.logsWith('closing client').filter((line) => line.code === 4005 && slowIds.has(String(line.clientId)));
    const allClosedMs = await within(() => closedBySever().length === sizes.slow, 30_000, 50);
    const during = await healthy.fleet.report({ reset: true });
    log?.(`${closedBySever().length}/${sizes.slow} slow clients closed by the server`);
    const closedAt = absoluteNow();
    await pause(sizes.afterMs);
    await publisher.stop();
    await pause(500);
    clearInterval(sampler);
    const after = await healthy.fleet.report({ detail: true });

    // The slow clients read again: what the server queued, then its close frame.
    slow.fleet.resume(slowIndexes);
    await within(async () => (await slow.fleet.report()).open === 0, 25_000, 100);
    const slowReport = await slow.fleet.report({ detail: true });
    const slowCloses = slowReport.perClient.map((client) => client.closes[0]);
    const closedWith4005 = slowCloses.filter((close) => close?.code === 4005 && close.reason === 'Slow consumer').length;
    const serverCloseMs = closedBySever().map((line) => logTime(line) - (pausedAt.get(indexOf.get(String(line.clientId)) ?? -1) ?? firstPause));

    const accepted = publisher.records.filter((record) => record.ok).length;
    const healthyDelivered = sumPerSeq(after, 'healthy');
    const healthyClosed = after.perClient.filter((client) => client.closes.length > 0).length;
    const baselineRss = Math.max(...rss.filter((sample) => sample.at <= baselineEnd).map((sample) => sample.bytes));
    const peakRss = Math.max(...rss.map((sample) => sample.bytes));
    const afterClosedRss = rss.filter((sample) => sample.at >= closedAt).map((sample) => sample.bytes);
    const latency = {
      baseline: latencyOf(baseline),
      withSlow: latencyOf(during),
      afterClosed: latencyOf(after),
    };
    const latencyBound = 2 * latency.baseline.p99 + 20;

    const checks = new Checks();
    checks.record('clients connected', healthy.outcome.ok === sizes.healthy && slow.outcome.ok === sizes.slow, `${sizes.healthy}+${sizes.slow}`, `${healthy.outcome.ok}+${slow.outcome.ok}`);
    checks.record('slow clients closed by the server with 4005', allClosedMs !== null, String(sizes.slow), String(closedBySever().length));
    checks.record('slow clients saw 4005 "Slow consumer"', closedWith4005 === sizes.slow, String(sizes.slow), `${closedWith4005} (${JSON.stringify(slowCloses.map((close) => close?.code ?? 'none'))})`);
    checks.record(`RSS growth over the baseline`, mib(peakRss - baselineRss) <= RSS_GROWTH_BOUND_MIB, `<= ${RSS_GROWTH_BOUND_MIB} MiB`, `${mib(peakRss - baselineRss)} MiB`);
    checks.record('healthy clients missed messages', healthyDelivered === accepted * sizes.healthy, String(accepted * sizes.healthy), String(healthyDelivered));
    checks.record('healthy clients disconnected', healthyClosed === 0, '0', String(healthyClosed));
    checks.record('healthy p99 while slow clients hung', latency.withSlow.p99 <= latencyBound, `<= ${latencyBound} ms`, `${latency.withSlow.p99} ms`);
    checks.record('healthy p99 after they were closed', latency.afterClosed.p99 <= latencyBound, `<= ${latencyBound} ms`, `${latency.afterClosed.p99} ms`);
    checks.record('duplicate deliveries', after.duplicates === 0, '0', String(after.duplicates));
    checks.record('instance running', service.running, 'running', service.running ? 'running' : 'exited');
    checks.record('error lines', errorLines(service).length === 0, '0', String(errorLines(service).length));

    const closeSpread = spreadOf(serverCloseMs);
    const measured =
      `${sizes.slow} slow clients closed with 4005 ${closeSpread.min}-${closeSpread.max} ms after they stopped reading (all clients saw the code: ${closedWith4005}/${sizes.slow}); ` +
      `RSS baseline ${mib(baselineRss)} MiB, peak ${mib(peakRss)} MiB, after the closes max ${mib(Math.max(...afterClosedRss))} MiB; ` +
      `healthy latency p50/p99 ${latency.baseline.p50}/${latency.baseline.p99} ms alone, ${latency.withSlow.p50}/${latency.withSlow.p99} ms with slow clients, ` +
      `${latency.afterClosed.p50}/${latency.afterClosed.p99} ms after; healthy deliveries ${healthyDelivered}/${accepted * sizes.healthy}. ${checks.summary()}`;
    return {
      measured,
      pass: checks.passed,
      details: {
        sizes,
        serverCloseMs: closeSpread,
        slowCloseCodes: slowCloses.map((close) => close?.code ?? null),
        rssMiB: { baseline: mib(baselineRss), peak: mib(peakRss), afterClosedMax: mib(Math.max(...afterClosedRss)) },
        latency,
        healthyDelivered,
        expectedHealthy: accepted * sizes.healthy,
        checks: checks.outcomes,
      },
    };
  } finally {
    await release();
  }
}

function latencyOf(report: FleetReport): { n: number; p50: number; p99: number; max: number } {
  const bins = report.groups.get('healthy')?.latency ?? [];
  return { n: histogramCount(bins), p50: histogramPercentile(bins, 50), p99: histogramPercentile(bins, 99), max: bins.at(-1)?.[0] ?? Number.NaN };
}

function sumPerSeq(report: FleetReport, group: string): number {
  return (report.groups.get(group)?.perSeq ?? []).reduce((sum, count) => sum + (count ?? 0), 0);
}
