import { startBalancedCluster } from '../../fixtures/balanced-cluster.ts';
import { pause, within } from '../../fixtures/cleanup-stack.ts';
import { reconnectsAfter } from '../../fixtures/fleet/fleet-analysis.ts';
import { absoluteNow } from '../../fixtures/fleet/fleet-protocol.ts';
import { PacedPublisher } from '../../fixtures/paced-publisher.ts';
import { prepareEnv, spreadOf } from '../../fixtures/reliability-env.ts';
import { errorLines } from '../../fixtures/signal-service.ts';
import { Checks } from '../lib/checks.ts';
import { withCleanupStack } from '../lib/cleanup.ts';
import type { ReliabilityScenario, ScenarioOptions, ScenarioResult } from '../scenario.ts';

/**
 * One of two instances is SIGKILLed while messages flow. The clients use
 * the project's SDK and reach the cluster through a round-robin TCP proxy
 * (as through a load balancer), so the dead instance's clients come back
 * through the SDK's own backoff to whatever is alive. A publishing service
 * broadcasts numbered messages through Redis the whole time. The presence
 * registry (TTL 3 s) is read the way every instance reads it.
 */
const TTL_MS = 3_000;
const RATE = 10;
const MAX_GAP_MS = 1_000;
const RECONNECT_BOUND_MS = 10_000;
/** Presence is polled every 50 ms; a reading lands up to one poll (plus a round trip) after the fact. */
const POLL_RESOLUTION_MS = 100;

export const scenario: ReliabilityScenario = {
  name: 'instance-kill',
  category: 'fault',
  what:
    'Two instances (presence TTL 3 s) behind a round-robin TCP proxy; 600 SDK clients (quick: 200) split over them; a publisher broadcasts 10 numbered msg/s through Redis; instance A is SIGKILLed.',
  expected:
    "B's clients stay connected and receive every message published meanwhile, none twice, with no silence over 1 s; every client of A is connected again (through the SDK's backoff, to B) within 10 s of the kill; the presence registry drops A and its clients within the 3 s TTL and lists every client again; B logs no error.",
  timeLimitMs: { quick: 90_000, full: 150_000 },
  run,
};

async function run({ quick, log }: ScenarioOptions): Promise<ScenarioResult> {
  const clientCount = quick ? 200 : 600;
  return withCleanupStack(async (stack) => {
    const setup = await prepareEnv(stack, 'instancekill', { redis: true, database: true, env: { APP_ENV_WEBSOCKET_PRESENCE_TTL_SECONDS: String(TTL_MS / 1000) } });
    const { a, b, proxy, presence, fleet, outcome } = await startBalancedCluster(stack, setup, { clientCount, presenceTtlMs: TTL_MS, openTimeoutMs: 60_000 });
    log?.(`${outcome.ok} SDK clients connected in ${Math.round(outcome.ms)} ms`);
    const listedMs = await within(async () => (await presence.count()) === clientCount, 20_000);
    const records = await presence.all();
    const instanceOf = new Map(records.map((record) => [record.id, record.instanceId]));
    const initial = await fleet.report({ detail: true });
    const onA = new Set(initial.perClient.filter((client) => instanceOf.get(client.clientId) === a.instanceId).map((client) => client.index));
    const onB = new Set(initial.perClient.filter((client) => instanceOf.get(client.clientId) === b.instanceId).map((client) => client.index));
    log?.(`${onA.size} clients on A, ${onB.size} on B`);

    const publisher = await PacedPublisher.connect({ redisUrl: setup.redis!.url, channelPrefix: setup.prefix, rate: RATE, targetOf: () => ({ kind: 'broadcast' }) });
    stack.defer('close the publisher', () => publisher.close());
    publisher.start();
    await pause(2_000);
    const firstSeq = publisher.sent;
    await fleet.report({ reset: true });

    const killAt = absoluteNow();
    await a.kill('SIGKILL');
    log?.('A killed');
    let presenceGoneMs: number | null = null;
    let relistedMs: number | null = null;
    const watchPresence = (async () => {
      while (absoluteNow() - killAt < 20_000 && (presenceGoneMs === null || relistedMs === null)) {
        try {
          if (presenceGoneMs === null && !(await presence.instances()).includes(a.instanceId)) presenceGoneMs = absoluteNow() - killAt;
          if (relistedMs === null && presenceGoneMs !== null && (await presence.count()) === clientCount) relistedMs = absoluteNow() - killAt;
        } catch {
          // The next poll tries again.
        }
        await pause(50);
      }
    })();
    const backMs = await within(async () => {
      const report = await fleet.report({ detail: true });
      return report.perClient.filter((client) => onA.has(client.index)).every((client) => client.open && client.connects.some((at) => at > killAt));
    }, 20_000, 250);
    await watchPresence;
    await pause(2_000);
    await publisher.stop();
    const lastSeq = publisher.sent;
    await pause(1_000);

    const report = await fleet.report({ detail: true, range: { from: firstSeq, to: lastSeq } });
    const accepted = publisher.records.slice(firstSeq, lastSeq).filter((record) => record.ok).length;
    const survivors = report.perClient.filter((client) => onB.has(client.index));
    const moved = report.perClient.filter((client) => onA.has(client.index));
    const survivorMissing = survivors.reduce((sum, client) => sum + Math.max(0, accepted - (client.inRange ?? 0)), 0);
    const survivorGaps = survivors.map((client) => client.maxGapMs);
    const survivorCloses = survivors.filter((client) => client.closes.some((close) => close.at >= killAt)).length;
    const reconnects = reconnectsAfter(moved, killAt);
    const movedLoss = moved.reduce((sum, client) => sum + Math.max(0, accepted - (client.inRange ?? 0)), 0);
    const finalRecords = await presence.all();
    const listedOnA = finalRecords.filter((record) => record.instanceId === a.instanceId).length;

    const checks = new Checks();
    checks.record('clients connected', outcome.ok === clientCount, String(clientCount), String(outcome.ok));
    checks.record('clients listed in presence before the kill', listedMs !== null, String(clientCount), listedMs === null ? 'not all' : 'all');
    checks.record('both instances had clients', onA.size > 0 && onB.size > 0, '> 0 each', `${onA.size}/${onB.size}`);
    checks.record("B's clients disconnected", survivorCloses === 0, '0', String(survivorCloses));
    checks.record("messages B's clients missed", survivorMissing === 0, '0', String(survivorMissing));
    checks.record("B's clients longest silence", Math.max(0, ...survivorGaps) <= MAX_GAP_MS, `<= ${MAX_GAP_MS} ms`, `${Math.round(Math.max(0, ...survivorGaps))} ms`);
    checks.record('duplicate deliveries', report.duplicates === 0, '0', String(report.duplicates));
    checks.record("A's clients connected again", backMs !== null && reconnects.stranded.length === 0, String(onA.size), `${onA.size - reconnects.stranded.length}`);
    checks.record("A's clients back within the bound", Math.max(0, ...reconnects.sinceMark) <= RECONNECT_BOUND_MS, `<= ${RECONNECT_BOUND_MS} ms`, `${Math.round(Math.max(0, ...reconnects.sinceMark))} ms`);
    checks.record('presence dropped A', presenceGoneMs !== null && presenceGoneMs <= TTL_MS + POLL_RESOLUTION_MS, `<= ${TTL_MS} ms (+${POLL_RESOLUTION_MS} ms polling)`, `${presenceGoneMs === null ? 'never' : Math.round(presenceGoneMs)} ms`);
    checks.record("A's records listed at the end", listedOnA === 0, '0', String(listedOnA));
    checks.record('every client listed again', relistedMs !== null, String(clientCount), `${finalRecords.length}`);
    checks.record('B running', b.running, 'running', b.running ? 'running' : 'exited');
    checks.record('B error lines', errorLines(b).length === 0, '0', String(errorLines(b).length));

    const back = spreadOf(reconnects.sinceMark);
    const gaps = spreadOf(survivorGaps);
    const measured =
      `${onA.size} clients on A (killed), ${onB.size} on B; ${accepted} broadcasts while it happened: B's clients missed ${survivorMissing}, ` +
      `longest silence p50 ${gaps.p50} / max ${gaps.max} ms, ${survivorCloses} disconnects; A's clients back in p50 ${back.p50} / p95 ${back.p95} / max ${back.max} ms ` +
      `(${reconnects.stranded.length} stranded, ${movedLoss} deliveries lost in between); presence forgot A after ${presenceGoneMs === null ? 'never' : Math.round(presenceGoneMs)} ms ` +
      `and listed all ${clientCount} again after ${relistedMs === null ? 'never' : Math.round(relistedMs)} ms; ${report.duplicates} duplicates. ${checks.summary()}`;
    return {
      measured,
      pass: checks.passed,
      details: {
        clientCount,
        onA: onA.size,
        onB: onB.size,
        accepted,
        survivorMissing,
        survivorGaps: gaps,
        reconnect: back,
        closeCodes: reconnects.closeCodes,
        movedLoss,
        presenceGoneMs,
        relistedMs,
        proxy: proxy.counts,
        checks: checks.outcomes,
      },
    };
  });
}
