import { pause, within } from '../../fixtures/cleanup-stack.ts';
import { ClientFleet, type FleetReport } from '../../fixtures/fleet/client-fleet.ts';
import { absoluteNow } from '../../fixtures/fleet/fleet-protocol.ts';
import { PacedPublisher, type PublishRecord } from '../../fixtures/paced-publisher.ts';
import { prepareEnv, signTokens, sourceAddress } from '../../fixtures/reliability-env.ts';
import { errorLines, killServices, logTime, readyStatus, startService, type SignalService } from '../../fixtures/signal-service.ts';
import { Checks } from '../lib/checks.ts';
import { withCleanupStack } from '../lib/cleanup.ts';
import type { ReliabilityScenario, ScenarioOptions, ScenarioResult } from '../scenario.ts';

/**
 * Redis dies under traffic and comes back. Two instances share a private
 * redis-server; clients are split over them, in rooms of five that span
 * both; a publishing service sends numbered messages (1 % broadcasts, the
 * rest room messages) through SignalEmitter at a steady rate. Redis is
 * SIGKILLed, restarted about 3 s later, and the books are read: what Redis
 * accepted before the kill and after both instances resubscribed must reach
 * every addressee exactly once; what was sent in between is lost (pub/sub is
 * at-most-once) and reported as such.
 */
const ROOM_SIZE = 5;
const OUTAGE_MS = 3_000;
const RESUBSCRIBE_BOUND_MS = 2_000;
/**
 * Messages sent this close to the kill may be accepted by Redis and still
 * sit in its output buffers when it dies: they count as in flight at the
 * kill, neither as before (strict) nor as outage.
 */
const IN_FLIGHT_MS = 100;

type Phase = 'before' | 'inFlight' | 'outage' | 'recovery' | 'after';

interface PhaseBooks {
  attempted: number;
  refused: number;
  accepted: number;
  expectedDeliveries: number;
  delivered: number;
}

export const scenario: ReliabilityScenario = {
  name: 'redis-restart',
  category: 'fault',
  what:
    'Two instances on a private Redis; 500 clients (quick: 100) split over them in rooms of 5 spanning both; a publisher sends 1,000 msg/s (quick: 200/s; 1 % broadcasts, the rest room messages) through SignalEmitter; Redis is SIGKILLed and restarted after ~3 s.',
  expected:
    'No instance exits or logs an error; within 2 s of Redis accepting connections again both instances are subscribed (PUBLISH reaches 2 subscribers), each delivers to its clients again and answers /ready 200; every message Redis accepted before the kill or after both resubscribed reaches every addressee; no client receives a message twice or is disconnected; what was published during the outage is counted and its loss reported (at-most-once).',
  timeLimitMs: { quick: 90_000, full: 180_000 },
  run,
};

async function run({ quick, log }: ScenarioOptions): Promise<ScenarioResult> {
  const clientCount = quick ? 100 : 500;
  const rate = quick ? 200 : 1_000;
  const beforeMs = quick ? 2_000 : 5_000;
  const afterMs = quick ? 3_000 : 6_000;
  return withCleanupStack(async (stack) => {
    const setup = await prepareEnv(stack, 'redisrestart', { redis: true, database: true, env: { APP_ENV_WEBSOCKET_ROOM_ALLOW: 'rel-[0-9]+' } });
    const redis = setup.redis!;
    const services = await Promise.all(['A', 'B'].map((name) => startService(setup.env, { name, sockets: clientCount })));
    stack.defer('kill the instances', () => killServices(services));
    const [a, b] = services as [SignalService, SignalService];
    log?.(`instances up on ${a.port} and ${b.port}`);

    const tokens = await signTokens(setup.issuer, Array.from({ length: clientCount }, (_, index) => `u-${index}`));
    const { fleet, outcome } = await ClientFleet.open({
      mode: 'raw',
      url: a.ws,
      workers: 2,
      openTimeoutMs: 60_000,
      clients: tokens.map((token, index) => ({
        index,
        token,
        rooms: [`rel-${Math.floor(index / ROOM_SIZE)}`],
        group: index % 2 === 0 ? 'A' : 'B',
        url: services[index % 2]!.ws,
        localAddress: sourceAddress(index),
      })),
    });
    stack.defer('close the clients', () => fleet.close());
    log?.(`${outcome.ok} clients connected in ${Math.round(outcome.ms)} ms`);
    const rooms = Math.ceil(clientCount / ROOM_SIZE);
    const publisher = await PacedPublisher.connect({
      redisUrl: redis.url,
      channelPrefix: setup.prefix,
      rate,
      targetOf: (seq) => (seq % 100 === 0 ? { kind: 'broadcast' } : { kind: 'room', room: `rel-${seq % rooms}` }),
    });
    stack.defer('close the publisher', () => publisher.close());

    // /ready of both instances, every 50 ms, for the whole run.
    const readiness: Array<{ service: string; at: number; status: number }> = [];
    let probing = true;
    const probes = services.map(async (service) => {
      while (probing) {
        const status = await readyStatus(service, 1_000);
        readiness.push({ service: service.name, at: absoluteNow(), status });
        await pause(50);
      }
    });
    stack.defer('stop the readiness probes', async () => {
      probing = false;
      await Promise.all(probes);
    });

    publisher.start();
    await pause(beforeMs);
    const killAt = absoluteNow();
    await redis.kill();
    log?.('redis killed');
    await pause(Math.max(0, OUTAGE_MS - (absoluteNow() - killAt)));
    await redis.restart();
    const backAt = absoluteNow();
    log?.(`redis back after ${Math.round(backAt - killAt)} ms`);

    const resubscribedLine = (service: SignalService): Record<string, unknown> | undefined =>
      service.logsWith('redis bus resubscribed').find((line) => logTime(line) >= killAt);
    const readyAgain = (service: SignalService): number | undefined =>
      readiness.find((entry) => entry.service === service.name && entry.at >= backAt && entry.status === 200)?.at;
    // Redis's own word that both instances listen again: a PUBLISH answered with 2 subscribers.
    const bothListening = (): PublishRecord | undefined => publisher.records.find((record) => record !== undefined && record.at >= backAt && record.ok && record.receivers >= 2);
    await within(() => bothListening() !== undefined && services.every((service) => readyAgain(service) !== undefined), 15_000);
    await pause(afterMs);
    await publisher.stop();
    await pause(1_000);
    probing = false;
    await Promise.all(probes);

    const report = await fleet.report({ detail: true });
    const bothListeningAt = bothListening()?.at ?? Number.POSITIVE_INFINITY;
    const books = account(publisher.records, report, { killAt, backAt, bothResubscribedAt: bothListeningAt }, clientCount);
    const perInstance = services.map((service) => ({
      instance: service.name,
      running: service.running,
      errorLines: errorLines(service).length,
      firstDeliveryMs: round(firstDeliveryAfter(report, service.name, publisher.records, backAt) - backAt),
      readyAgainMs: round((readyAgain(service) ?? Number.NaN) - backAt),
      resubscribedLogMs: round(logTime(resubscribedLine(service)) - backAt),
      notReadyProbes: readiness.filter((entry) => entry.service === service.name && entry.at >= killAt && entry.at < backAt && entry.status !== 200).length,
    }));
    const bothListeningMs = round(bothListeningAt - backAt);
    const publisherBackMs = round((publisher.records.find((record) => record !== undefined && record.at >= backAt && record.ok)?.at ?? Number.NaN) - backAt);
    const disconnected = report.perClient.filter((client) => client.closes.length > 0).length;

    const checks = new Checks();
    checks.record('clients connected', outcome.ok === clientCount, String(clientCount), String(outcome.ok));
    for (const each of perInstance) {
      checks.record(`${each.instance} still running`, each.running, 'running', each.running ? 'running' : 'exited');
      checks.record(`${each.instance} error lines`, each.errorLines === 0, '0', String(each.errorLines));
      checks.record(`${each.instance} delivering again`, each.firstDeliveryMs <= RESUBSCRIBE_BOUND_MS, `<= ${RESUBSCRIBE_BOUND_MS} ms`, `${each.firstDeliveryMs} ms`);
      checks.record(`${each.instance} /ready 200 again`, each.readyAgainMs <= RESUBSCRIBE_BOUND_MS, `<= ${RESUBSCRIBE_BOUND_MS} ms`, `${each.readyAgainMs} ms`);
    }
    for (const phase of ['before', 'after'] as const) {
      const phaseBooks = books[phase];
      checks.record(`${phase}: accepted messages delivered`, phaseBooks.delivered === phaseBooks.expectedDeliveries, String(phaseBooks.expectedDeliveries), String(phaseBooks.delivered));
    }
    checks.record('both instances subscribed (PUBLISH reached 2)', bothListeningMs <= RESUBSCRIBE_BOUND_MS, `<= ${RESUBSCRIBE_BOUND_MS} ms`, `${bothListeningMs} ms`);
    checks.record('after: messages sent', books.after.accepted > 0, '> 0', String(books.after.accepted));
    checks.record('duplicate deliveries', report.duplicates === 0, '0', String(report.duplicates));
    checks.record('undecodable frames', report.undecodable === 0, '0', String(report.undecodable));
    checks.record('clients disconnected by the outage', disconnected === 0, '0', String(disconnected));

    const lostInOutage = (['inFlight', 'outage', 'recovery'] as const).reduce(
      (sum, phase) => sum + books[phase].expectedDeliveries - books[phase].delivered,
      0,
    );
    const measured =
      `Redis down ${Math.round(backAt - killAt)} ms; after it returned, both instances subscribed (PUBLISH → 2) at ${bothListeningMs} ms, ` +
      `first delivery ${perInstance.map((each) => `${each.instance} ${each.firstDeliveryMs} ms`).join(', ')}, /ready 200 ${perInstance.map((each) => `${each.instance} ${each.readyAgainMs} ms`).join(', ')}; ` +
      `during the outage ${books.outage.attempted} publishes (${books.outage.refused} refused by the publisher's Redis connection), ` +
      `${books.inFlight.accepted} accepted in the last ${IN_FLIGHT_MS} ms before the kill and ${books.recovery.accepted} after Redis returned but before both subscribed: ${lostInOutage} deliveries lost; ` +
      `before/after: ${books.before.delivered}/${books.before.expectedDeliveries} and ${books.after.delivered}/${books.after.expectedDeliveries} delivered; ` +
      `${report.duplicates} duplicates. ${checks.summary()}`;
    return {
      measured,
      pass: checks.passed,
      details: { clientCount, rate, books, perInstance, bothListeningMs, publisherBackMs, disconnected, duplicates: report.duplicates, checks: checks.outcomes },
      notes: [
        `redis-restart: a publish accepted by Redis while an instance was not yet resubscribed reaches nobody on that instance (at-most-once); ` +
          `${books.recovery.accepted} such publishes, ${books.recovery.expectedDeliveries - books.recovery.delivered} deliveries lost.`,
      ],
    };
  });
}

function account(
  records: readonly PublishRecord[],
  report: FleetReport,
  marks: { killAt: number; backAt: number; bothResubscribedAt: number },
  clientCount: number,
): Record<Phase, PhaseBooks> {
  const books: Record<Phase, PhaseBooks> = {
    before: blank(),
    inFlight: blank(),
    outage: blank(),
    recovery: blank(),
    after: blank(),
  };
  for (const record of records) {
    if (record === undefined) continue;
    const phase: Phase =
      record.at < marks.killAt - IN_FLIGHT_MS
        ? 'before'
        : record.at < marks.killAt
          ? 'inFlight'
          : record.at < marks.backAt
            ? 'outage'
            : record.at < marks.bothResubscribedAt
              ? 'recovery'
              : 'after';
    const delivered = [...report.groups.values()].reduce((sum, group) => sum + (group.perSeq[record.seq] ?? 0), 0);
    const into = books[phase];
    into.attempted += 1;
    into.delivered += delivered;
    if (!record.ok) {
      into.refused += 1;
      continue;
    }
    into.accepted += 1;
    into.expectedDeliveries += record.target.kind === 'broadcast' ? clientCount : membersOf(record.target.room, clientCount);
  }
  return books;
}

function membersOf(room: string, clientCount: number): number {
  const index = Number(room.slice('rel-'.length));
  return Math.max(0, Math.min(ROOM_SIZE, clientCount - index * ROOM_SIZE));
}

/** When the first message published after `since` reached a client of this group. */
function firstDeliveryAfter(report: FleetReport, group: string, records: readonly PublishRecord[], since: number): number {
  const firstAt = report.groups.get(group)?.firstAt ?? [];
  let earliest = Number.POSITIVE_INFINITY;
  for (const record of records) {
    if (record.at < since) continue;
    const at = firstAt[record.seq];
    if (at !== undefined && at > 0 && at < earliest) earliest = at;
  }
  return earliest === Number.POSITIVE_INFINITY ? Number.NaN : earliest;
}

function blank(): PhaseBooks {
  return { attempted: 0, refused: 0, accepted: 0, expectedDeliveries: 0, delivered: 0 };
}

function round(value: number): number {
  return Math.round(value);
}
