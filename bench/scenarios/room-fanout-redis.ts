import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DevIssuer } from '../../src/adapters/jwks/dev-issuer.ts';
import { cpuTimeMs } from '../lib/processes.ts';
import { startRedis, type BenchRedis } from '../lib/redis-server.ts';
import type { ResultRow, Scenario, ScenarioOptions } from '../lib/results.ts';
import { startBenchServer, type BenchServer } from '../lib/server-handle.ts';
import { median, significant } from '../lib/stats.ts';
import { threeWayRow } from '../lib/three-way-row.ts';
import { shares, WorkerFleet } from '../lib/worker-fleet.ts';
import type { FromLatencyWorker, LatencyTarget, ToLatencyWorker } from '../lib/worker-messages.ts';
import { ECDH_INFO, signalServerEnv } from '../lib/signal-env.ts';

/**
 * One room whose members are spread over two instances that share a Redis:
 * messages are published through instance A, which delivers to its own
 * members directly and publishes once on Redis for instance B, whose
 * members get it from there. Both paths are in every message's figures.
 *
 * signal: two real start()s with APP_ENV_WEBSOCKET_REDIS_URL, publishing
 * through `delivery.toRoom` on A (the REST route's call). Peer: two
 * Socket.IO 4 servers with @socket.io/redis-adapter, publishing with
 * `io.to(room).emit` on A. Same Redis, same room split, same offered load,
 * same clients measuring publish → decrypted (signal) / parsed (peer) latency
 * against the message's due time on one monotonic clock. Limit: two bare
 * ws + AES-GCM servers (bench/limit-server.ts) doing only the local seal and
 * send plus one Redis PUBLISH / SUBSCRIBE of the frame text.
 *
 * The offered load is counted in deliveries: `rate` room messages per
 * second × 1,000 members. See bench/README.md for why the load is 5,000
 * deliveries/s and not 5,000 room messages/s.
 */
const PAYLOAD_BYTES = 200;
const ROOM = 'bench-fanout';

interface Settings {
  members: number;
  /** Room messages per second (each reaches every member). */
  rate: number;
  roundMs: number;
  warmupMs: number;
  rounds: number;
}

const QUICK: Settings = { members: 200, rate: 2, roundMs: 1_500, warmupMs: 500, rounds: 1 };
const FULL: Settings = { members: 1_000, rate: 5, roundMs: 10_000, warmupMs: 3_000, rounds: 5 };

type Name = LatencyTarget;
const NAMES: readonly Name[] = ['signal', 'peer', 'limit'];

interface Measured {
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  deliveries: number;
  /** Both instances' CPU (user + system) per delivery, µs. */
  serverCpuUs: number | undefined;
}

export const roomFanoutRedisScenario: Scenario = {
  name: 'room-fanout-redis',
  summary:
    'a 1,000-member room split over two instances sharing a Redis, messages published through one instance at a fixed rate: publish → decrypted latency p50 and p99; peer: two Socket.IO 4 servers with @socket.io/redis-adapter; limit: two bare ws + AES-GCM servers with one Redis channel',
  run,
};

async function run(options: ScenarioOptions): Promise<ResultRow[]> {
  const settings = applyOverrides(options.quick ? QUICK : FULL);
  const dataDir = await mkdtemp(join(tmpdir(), 'signal-bench-'));
  const servers: BenchServer[] = [];
  const fleets: Array<WorkerFleet<ToLatencyWorker, FromLatencyWorker>> = [];
  let redis: BenchRedis | undefined;
  try {
    const issuer = await DevIssuer.loadOrCreate(dataDir);
    redis = await startRedis();
    const runId = randomUUID().slice(0, 8);
    const perInstance = shares(settings.members, 2);
    const launch = async (spec: Parameters<typeof startBenchServer>[0]): Promise<BenchServer> => {
      // Seven processes start at once on two cores: signal's start-up alone can take tens of seconds then.
      const server = await startBenchServer({ startTimeoutMs: 120_000, ...spec });
      servers.push(server);
      return server;
    };
    const signalEnv = signalServerEnv(dataDir, {
      APP_ENV_WEBSOCKET_REDIS_URL: redis.url,
      APP_ENV_WEBSOCKET_REDIS_CHANNEL_PREFIX: `bench-${runId}:`,
      APP_ENV_WEBSOCKET_ROOM_ALLOW: ROOM,
    });
    const peerEnv = { PORT: '0', HOST: '127.0.0.1', PEER_REDIS_URL: redis.url, PEER_REDIS_KEY: `bench-sio-${runId}`, PEER_JWKS: '' };
    const limitEnv = { PORT: '0', HOST: '127.0.0.1', LIMIT_REDIS_URL: redis.url, LIMIT_REDIS_CHANNEL: `bench-limit-${runId}` };
    const [tokens, signalA, signalB, peerA, peerB, limitA, limitB] = await Promise.all([
      Promise.all(Array.from({ length: settings.members }, (_, index) => issuer.sign({ userId: `fanout-${index}`, expiresInSec: 4 * 3600 }))),
      launch({ name: 'signal-a', script: 'bench/signal-server.ts', sockets: perInstance[0]!, env: signalEnv }),
      launch({ name: 'signal-b', script: 'bench/signal-server.ts', sockets: perInstance[1]!, env: signalEnv }),
      launch({ name: 'peer-a', script: 'bench/peer-server.ts', sockets: perInstance[0]!, env: peerEnv }),
      launch({ name: 'peer-b', script: 'bench/peer-server.ts', sockets: perInstance[1]!, env: peerEnv }),
      launch({ name: 'limit-a', script: 'bench/limit-server.ts', sockets: perInstance[0]!, env: limitEnv }),
      launch({ name: 'limit-b', script: 'bench/limit-server.ts', sockets: perInstance[1]!, env: limitEnv }),
    ]);
    options.log(`redis and 6 servers up (room split ${perInstance.join(' + ')})`);

    const instances: Record<Name, [BenchServer, BenchServer]> = { signal: [signalA, signalB], peer: [peerA, peerB], limit: [limitA, limitB] };
    const url = (name: Name, server: BenchServer): string =>
      name === 'signal'
        ? `ws://127.0.0.1:${server.port}/stream`
        : name === 'peer'
          ? `http://127.0.0.1:${server.port}`
          : `ws://127.0.0.1:${server.port}/`;
    const members = async (name: Name): Promise<WorkerFleet<ToLatencyWorker, FromLatencyWorker>> => {
      const started = performance.now();
      // One worker per instance: worker i holds instance i's share of the room.
      const fleet = WorkerFleet.spawn<ToLatencyWorker, FromLatencyWorker>(`${name} members`, 'bench/lib/latency-worker.ts', perInstance);
      fleets.push(fleet);
      await fleet.ask(
        (index) => ({
          type: 'connect',
          target: name,
          url: url(name, instances[name][index]!),
          tokens: name === 'signal' ? tokens.slice(index === 0 ? 0 : perInstance[0], index === 0 ? perInstance[0] : undefined) : [],
          clients: perInstance[index]!,
          room: ROOM,
          ecdhInfo: ECDH_INFO,
          concurrency: 32,
        }),
        'connected',
        120_000,
        `${settings.members} members joining`,
      );
      options.log(`${name}: ${settings.members} members joined in ${Math.round(performance.now() - started)} ms`);
      return fleet;
    };
    const fleetOf: Record<Name, WorkerFleet<ToLatencyWorker, FromLatencyWorker>> = {
      signal: await members('signal'),
      peer: await members('peer'),
      limit: await members('limit'),
    };
    // Redis subscriptions are acknowledged before start() returns (signal) and before the adapter
    // connects (peer); the join replies above mean every member is in the room on its instance.

    let nextSeq = 0;
    const roundOf = async (name: Name, durationMs: number): Promise<Measured> => {
      const fleet = fleetOf[name];
      const [publisher, other] = instances[name];
      const count = Math.max(1, Math.round((settings.rate * durationMs) / 1000));
      const firstSeq = nextSeq;
      nextSeq += count;
      await fleet.ask(() => ({ type: 'round', first: firstSeq, count }), 'round-ready', 10_000, 'round reset');
      const cpu = (): number | undefined => sum([cpuTimeMs(publisher.child.pid), cpuTimeMs(other.child.pid)]);
      const cpuBefore = cpu();
      const published = await publisher.publishRoom({ room: ROOM, rate: settings.rate, durationMs, firstSeq, payloadBytes: PAYLOAD_BYTES });
      if (published !== count) throw new Error(`${name}: ${published} messages published, ${count} expected`);
      const reports = await fleet.ask(() => ({ type: 'report', waitMs: 20_000 }), 'report', 40_000, 'round report');
      const cpuAfter = cpu();
      let deliveries = 0;
      const latencies: number[] = [];
      for (const report of reports) {
        if (report.delivered !== report.expected || report.outOfOrder > 0 || report.unexpected > 0) {
          throw new Error(
            `${name}: members got ${report.delivered} of ${report.expected} deliveries (${report.outOfOrder} out of order, ${report.unexpected} unexpected)`,
          );
        }
        deliveries += report.delivered;
        for (const value of report.latenciesUs) latencies.push(value);
      }
      if (deliveries !== count * settings.members) throw new Error(`${name}: ${deliveries} deliveries, ${count * settings.members} expected`);
      latencies.sort((a, b) => a - b);
      return {
        p50Ms: percentile(latencies, 0.5) / 1000,
        p99Ms: percentile(latencies, 0.99) / 1000,
        maxMs: latencies.at(-1)! / 1000,
        deliveries,
        serverCpuUs: cpuBefore === undefined || cpuAfter === undefined ? undefined : ((cpuAfter - cpuBefore) * 1000) / deliveries,
      };
    };

    for (const name of NAMES) await roundOf(name, settings.warmupMs);
    options.log(`warm-up done (${settings.warmupMs} ms each)`);
    const rounds: Record<Name, Measured[]> = { signal: [], peer: [], limit: [] };
    for (let round = 1; round <= settings.rounds; round++) {
      for (const name of NAMES) rounds[name].push(await roundOf(name, settings.roundMs));
      options.log(
        `round ${round}/${settings.rounds}: ` +
          NAMES.map((name) => {
            const last = rounds[name].at(-1)!;
            return `${name} p50 ${last.p50Ms.toFixed(2)} ms, p99 ${last.p99Ms.toFixed(2)} ms, max ${last.maxMs.toFixed(1)} ms`;
          }).join('; '),
      );
    }

    if (options.profileDir !== undefined) {
      for (const name of NAMES) {
        // Both instances: A publishes and fans out locally, B receives through Redis.
        const paths = ['a', 'b'].map((instance) => join(options.profileDir!, `${name}-room-fanout-${instance}.cpuprofile`));
        await Promise.all(instances[name].map((server) => server.profileStart()));
        await roundOf(name, settings.roundMs);
        await Promise.all(instances[name].map((server, index) => server.profileStop(paths[index]!)));
        options.log(`${name}: profiles of both instances over one round written to ${paths.join(', ')}`);
      }
    }

    const common = {
      members: settings.members,
      membersPerInstance: perInstance,
      roomMessagesPerSec: settings.rate,
      offeredDeliveriesPerSec: settings.rate * settings.members,
      payloadBytes: PAYLOAD_BYTES,
      roundMs: settings.roundMs,
      warmupMs: settings.warmupMs,
      rounds: settings.rounds,
      publishedThrough:
        'instance A: delivery.toRoom (signal) / io.to(room).emit (peer): local fan-out on A plus one Redis PUBLISH that B fans out',
      latency: 'from the message due time (open-loop schedule inside instance A) to decrypted and JSON-parsed (signal) / parsed (peer) in the member process, one monotonic clock',
      peer: 'Socket.IO 4.8 with @socket.io/redis-adapter 8 over ioredis, plaintext',
      deliveriesPerRound: rounds.signal.map((r) => r.deliveries),
      limit: 'bench/limit-server.ts with LIMIT_REDIS_URL: every connection a member, AES-256-GCM per member, the frame text on one Redis channel',
      serverCpuUsPerDelivery: Object.fromEntries(
        NAMES.map((name) => [name, significant(median(defined(rounds[name].map((r) => r.serverCpuUs)) ?? [Number.NaN]))]),
      ),
      maxMs: Object.fromEntries(NAMES.map((name) => [name, rounds[name].map((r) => significant(r.maxMs))])),
    };
    const figure = (metric: string, pick: (r: Measured) => number): ResultRow => {
      const values = { signal: rounds.signal.map(pick), peer: rounds.peer.map(pick), limit: rounds.limit.map(pick) };
      return threeWayRow(roomFanoutRedisScenario.name, metric, 'ms publish → decrypted (lower is better)', values, common);
    };
    return [figure('latency_p50', (r) => r.p50Ms), figure('latency_p99', (r) => r.p99Ms)];
  } finally {
    await Promise.allSettled(fleets.map((fleet) => fleet.close()));
    await Promise.allSettled(servers.map((server) => server.stop()));
    await redis?.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
}

/** `BENCH_FANOUT_RATE` (room messages/s) overrides the rate, to find where either system saturates. */
function applyOverrides(settings: Settings): Settings {
  const rate = Number(process.env.BENCH_FANOUT_RATE);
  return Number.isFinite(rate) && rate > 0 ? { ...settings, rate } : settings;
}

function percentile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) throw new RangeError('percentile of nothing');
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
}

function defined(values: ReadonlyArray<number | undefined>): number[] | undefined {
  return values.every((value) => value !== undefined) ? (values as number[]) : undefined;
}

function sum(values: ReadonlyArray<number | undefined>): number | undefined {
  return values.every((value) => value !== undefined) ? (values as number[]).reduce((a, b) => a + b, 0) : undefined;
}
