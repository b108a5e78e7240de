import { fdLimits } from '../../../bench/lib/processes.ts';
import { CleanupStack, pause } from '../../fixtures/cleanup-stack.ts';
import { ClientFleet } from '../../fixtures/fleet/client-fleet.ts';
import { absoluteNow } from '../../fixtures/fleet/fleet-protocol.ts';
import { PacedPublisher } from '../../fixtures/paced-publisher.ts';
import { mib, percentile, prepareEnv, signTokens, sourceAddress } from '../../fixtures/reliability-env.ts';
import { watchResponsiveness } from '../../fixtures/responsiveness.ts';
import { errorLines, killServices, rssBytes, startService, type SignalService } from '../../fixtures/signal-service.ts';
import { Checks } from '../lib/checks.ts';
import { onCleanup } from '../lib/cleanup.ts';
import type { ReliabilityScenario, ScenarioOptions, ScenarioResult } from '../scenario.ts';

/**
 * Many encrypted connections held for minutes. Every client does the real
 * handshake, sends a plaintext heartbeat every 30 s, and decrypts a
 * broadcast sent to everyone once a second through Redis. Two instances
 * share the clients: this machine's hard limit of open files per process
 * (20,000) leaves no room for 20,000 sockets plus a server's own
 * descriptors in one process, and clients come from 16 loopback source
 * addresses so that no address runs out of ephemeral ports.
 *
 * Stalls are read two ways: from inside each instance (prom-client's
 * event-loop delay maximum, reset by every /metrics scrape, scraped every
 * 2 s) and from outside (a GET /health every 100 ms, timed).
 */
const RSS_GROWTH_BOUND = 0.1;
/**
 * The client processes yield the CPU to the instances: 20,000 decrypting
 * clients share this machine's 2 cores with the servers they load, and at
 * equal priority the instances' event loops waited for a CPU ~10 % of the
 * time, in bursts that showed as simultaneous stalls in both. In production
 * the clients are on other machines.
 */
const CLIENT_NICENESS = 10;
const STALL_BOUND_MS = 200;

export interface HoldSizes {
  clients: number;
  instances: number;
  workers: number;
  holdMs: number;
  /** RSS is compared between this point of the hold and its end. */
  warmupMs: number;
  /** Broadcasts to everyone per second. */
  broadcastRate: number;
}

export const scenario: ReliabilityScenario = {
  name: 'hold-20k',
  category: 'load',
  what:
    '20,000 encrypted connections (quick: 2,000) over 2 instances sharing a private Redis, held 5 minutes (quick: 20 s); each client heartbeats every 30 s; a broadcast to everyone through SignalEmitter every 5 s (quick: every second), i.e. 4,000 (2,000) decrypted deliveries/s. The client processes run at nice 10, so that on this 2-core machine the instances get the CPU before their load generator.',
  expected:
    "Every client connects and stays connected; every broadcast reaches every client exactly once; each instance's RSS at the end is within 10 % of its RSS after warm-up (30 s; quick: 5 s); no event-loop stall over 200 ms (the instances' own event-loop delay maximum); no error line. The /health round-trip maximum is reported alongside.",
  // 20,000 handshakes took 200 s on this shared machine under load; the hold itself is 300 s.
  timeLimitMs: { quick: 150_000, full: 840_000 },
  run: ({ quick, log }: ScenarioOptions) =>
    runHold(
      quick
        ? { clients: 2_000, instances: 2, workers: 2, holdMs: 20_000, warmupMs: 5_000, broadcastRate: 1 }
        : { clients: 20_000, instances: 2, workers: 4, holdMs: 300_000, warmupMs: 30_000, broadcastRate: 0.2 },
      log,
    ),
};

export async function runHold(sizes: HoldSizes, log?: (line: string) => void): Promise<ScenarioResult> {
  const stack = new CleanupStack();
  const release = onCleanup(() => stack.run());
  try {
    const perInstance = Math.ceil(sizes.clients / sizes.instances);
    const setup = await prepareEnv(stack, 'hold', { redis: true, database: true });
    const services = await Promise.all(Array.from({ length: sizes.instances }, (_, index) => startService(setup.env, { name: `I${index + 1}`, sockets: perInstance + 64 })));
    stack.defer('kill the instances', () => killServices(services));
    log?.(`instances up; fd limit ${fdLimits().hard} per process`);

    const tokens = await signTokens(setup.issuer, Array.from({ length: sizes.clients }, (_, index) => `u-${index}`));
    const connectStart = absoluteNow();
    const { fleet, outcome } = await ClientFleet.open({
      mode: 'raw',
      url: services[0]!.ws,
      workers: sizes.workers,
      concurrency: 48,
      heartbeatMs: 30_000,
      connectTimeoutMs: 60_000,
      openTimeoutMs: Math.max(120_000, sizes.clients * 15),
      niceness: CLIENT_NICENESS,
      clients: tokens.map((token, index) => ({
        index,
        token,
        rooms: [],
        group: services[index % sizes.instances]!.name,
        url: services[index % sizes.instances]!.ws,
        localAddress: sourceAddress(index, 16),
      })),
    });
    stack.defer('close the clients', () => fleet.close());
    const connectMs = absoluteNow() - connectStart;
    log?.(`${outcome.ok}/${sizes.clients} connected in ${Math.round(connectMs)} ms (${outcome.failed} failed)`);

    const publisher = await PacedPublisher.connect({ redisUrl: setup.redis!.url, channelPrefix: setup.prefix, rate: sizes.broadcastRate, targetOf: () => ({ kind: 'broadcast' }) });
    stack.defer('close the publisher', () => publisher.close());
    const monitors = services.map((service) => watchResponsiveness(service));
    stack.defer('stop the monitors', () => Promise.all(monitors.map((each) => each.stop())));
    const holdStart = absoluteNow();
    publisher.start();

    await pause(sizes.warmupMs);
    const warm = await Promise.all(services.map((service) => medianRss(service)));
    log?.(`warm RSS ${warm.map((bytes) => `${mib(bytes)} MiB`).join(', ')}`);
    let lastLog = absoluteNow();
    while (absoluteNow() - holdStart < sizes.holdMs - 5_000) {
      await pause(1_000);
      if (absoluteNow() - lastLog >= 30_000) {
        lastLog = absoluteNow();
        const report = await fleet.report();
        log?.(`held ${Math.round((absoluteNow() - holdStart) / 1000)} s: ${report.open} open, ${report.deliveries} deliveries`);
      }
    }
    const end = await Promise.all(services.map((service) => medianRss(service)));
    await publisher.stop();
    await pause(3_000);
    const readings = await Promise.all(monitors.map((each) => each.stop()));
    const report = await fleet.report({ detail: true });

    const accepted = publisher.records.filter((record) => record.ok);
    const expected = accepted.length * sizes.clients;
    const short = accepted.filter((record) => [...report.groups.values()].reduce((sum, group) => sum + (group.perSeq[record.seq] ?? 0), 0) !== sizes.clients).length;
    const closed = report.perClient.filter((client) => client.closes.length > 0);
    const growth = services.map((_, index) => (end[index]! - warm[index]!) / warm[index]!);
    const loopMax = Math.max(...readings.map((reading) => reading.loopMaxMs));
    const checks = new Checks();
    checks.record('clients connected', outcome.ok === sizes.clients, String(sizes.clients), `${outcome.ok} (${outcome.errors.slice(0, 2).join('; ')})`);
    checks.record('clients disconnected during the hold', closed.length === 0, '0', `${closed.length} ${JSON.stringify([...new Set(closed.map((client) => client.closes[0]!.code))])}`);
    checks.record('broadcast deliveries', report.deliveries === expected && short === 0, String(expected), `${report.deliveries} (${short} broadcasts short)`);
    checks.record('duplicate deliveries', report.duplicates === 0, '0', String(report.duplicates));
    checks.record('undecodable frames', report.undecodable === 0, '0', String(report.undecodable));
    services.forEach((service, index) => {
      checks.record(`${service.name} RSS growth after warm-up`, growth[index]! < RSS_GROWTH_BOUND, `< ${RSS_GROWTH_BOUND * 100} %`, `${(growth[index]! * 100).toFixed(1)} % (${mib(warm[index]!)} → ${mib(end[index]!)} MiB)`);
      checks.record(`${service.name} event-loop delay max`, readings[index]!.loopMaxMs <= STALL_BOUND_MS, `<= ${STALL_BOUND_MS} ms`, `${Math.round(readings[index]!.loopMaxMs)} ms`);
      checks.record(`${service.name} running`, service.running, 'running', service.running ? 'running' : 'exited');
      checks.record(`${service.name} error lines`, errorLines(service).length === 0, '0', String(errorLines(service).length));
    });

    const measured =
      `${outcome.ok}/${sizes.clients} connected in ${(connectMs / 1000).toFixed(1)} s and held ${Math.round(sizes.holdMs / 1000)} s over ${sizes.instances} instances; ` +
      `${report.deliveries}/${expected} broadcast deliveries, ${closed.length} disconnects, ${report.duplicates} duplicates; ` +
      `RSS after warm-up → end: ${services.map((service, index) => `${service.name} ${mib(warm[index]!)} → ${mib(end[index]!)} MiB (${(growth[index]! * 100).toFixed(1)} %)`).join(', ')}; ` +
      `event-loop delay max ${Math.round(loopMax)} ms (${readings.map((reading) => `${reading.name} ${Math.round(reading.loopMaxMs)}`).join(', ')}); ` +
      `/health round trip max ${readings.map((reading) => `${reading.name} ${Math.round(reading.healthMaxMs)}`).join(', ')} ms (p99 ${readings.map((reading) => Math.round(reading.healthP99Ms)).join(', ')} ms); ` +
      `event-loop thread: ${readings.map((each) => `${each.name} ${each.cpuMsPerSecond} ms CPU/s, waiting for a CPU ${each.runQueueWaitPct} % of the time`).join('; ')}. ${checks.summary()}`;
    return {
      measured,
      pass: checks.passed,
      details: {
        sizes,
        connectMs: Math.round(connectMs),
        connect: outcome,
        broadcasts: accepted.length,
        deliveries: report.deliveries,
        expected,
        rssMiB: services.map((service, index) => ({ instance: service.name, warm: mib(warm[index]!), end: mib(end[index]!), growthPct: Math.round(growth[index]! * 1000) / 10 })),
        readings,
        checks: checks.outcomes,
      },
      notes: [
        `hold-20k: the background rate is one broadcast every 5 s at full size because at one per second to 20,000 clients this 2-core machine (servers and decrypting clients together, load average ~14) ` +
          `delivered only ~8,300 deliveries/s, and the clients fell minutes behind (1.76 M deliveries after 211 s instead of 4.2 M).`,
        `hold-20k: the instances' own event-loop delay is exposed at /metrics (nodejs_eventloop_lag_max_seconds, prom-client default metrics); the scenario scrapes it every 2 s and asserts on it, the /health round trip (which also carries this machine's scheduling noise) is reported only.`,
      ],
    };
  } finally {
    await release();
  }
}

/** Median of five RSS readings a second apart. */
async function medianRss(service: SignalService): Promise<number> {
  const readings: number[] = [];
  for (let index = 0; index < 5; index++) {
    readings.push(rssBytes(service.child.pid));
    if (index < 4) await pause(1_000);
  }
  return percentile(readings, 50);
}
