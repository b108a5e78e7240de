import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import kafkajs from 'kafkajs';
import { DevIssuer } from '../../src/adapters/jwks/dev-issuer.ts';
import { spawnFakeKafkaBroker, type FakeKafkaBrokerProcess } from '../../test/fixtures/fake-kafka/broker-process.ts';
import type { FromLimit, ToLimit } from '../pipeline-limit.ts';
import { createBenchDatabase, type BenchDatabase } from '../lib/bench-database.ts';
import { absoluteNow } from '../lib/client-messages.ts';
import { IpcChild } from '../lib/ipc-child.ts';
import { allDefined, pairedRow, sumDefined } from '../lib/paired-row.ts';
import { eventId, MEMBER_COUNT, memberIds, MERCHANT_ID, paymentEvent } from '../lib/pipeline-events.ts';
import { cpuTimeMs, isRunning, withTimeout } from '../lib/processes.ts';
import type { FromPushWorker, ToPushWorker } from '../lib/push-clients.ts';
import type { ResultRow, Scenario, ScenarioOptions } from '../lib/results.ts';
import { startBenchServer, type BenchServer } from '../lib/server-handle.ts';
import { median, significant } from '../lib/stats.ts';

const { Kafka, Partitioners, logLevel } = kafkajs;

/**
 * Notification pipeline throughput for one merchant of 50 members, through
 * the real path: a Kafka broker in its own process (the wire-protocol fake
 * from the test fixtures) → signal's consumer (real start(), real
 * PostgreSQL) → 50 rows per event → a push to each member, 10 of whom are
 * connected and decrypt every push in another process. The limit, in
 * alternating rounds on the same table, is the database's floor for the
 * same rows: one plain 50-row INSERT per event, sequential, one connection.
 */
const NAME = 'pipeline-merchant-50';
const TOPIC = 'bench.activity';
const GROUP_ID = 'signal-bench';
const ECDH_INFO = 'ignis-ecdh-p256-aes-256-gcm-v1';
const BASE_PATH = '/v1/api/signal';
const PRODUCE_BATCH = 100;
const POLL_MS = 10;

interface Settings {
  events: number;
  warmup: number;
  rounds: number;
  /** Members connected with encrypted clients (of the 50). */
  pushClients: number;
  maxWaitMs: number;
}

const QUICK: Settings = { events: 60, warmup: 10, rounds: 2, pushClients: 5, maxWaitMs: 20 };
const FULL: Settings = { events: 2_000, warmup: 200, rounds: 5, pushClients: 10, maxWaitMs: 20 };

interface Measured {
  eventsPerSec: number;
  elapsedMs: number;
  /** CPU (ms) per event of each process that did work, when /proc is there. */
  cpuMsPerEvent: Record<string, number | undefined>;
  /** signal only: when the last push was decrypted / the last offset seen committed, ms after the first produce. */
  lastPushMs?: number;
  committedMs?: number;
}

export const pipelineScenario: Scenario = {
  name: NAME,
  summary:
    'activity events for a merchant of 50 members through Kafka → signal → PostgreSQL (50 rows each) → pushes to 10 encrypted clients: events/s, against 50-row INSERTs of the same rows over one connection',
  run,
};

async function run(options: ScenarioOptions): Promise<ResultRow[]> {
  const settings = options.quick ? QUICK : FULL;
  const logLevelSetting = process.env.BENCH_PIPELINE_LOG_LEVEL ?? 'info';
  const runId = randomBytes(3).toString('hex');
  const dataDir = await mkdtemp(join(tmpdir(), 'signal-bench-pipeline-'));
  let database: BenchDatabase | undefined;
  let broker: FakeKafkaBrokerProcess | undefined;
  let service: BenchServer | undefined;
  let pushes: IpcChild<ToPushWorker, FromPushWorker> | undefined;
  let limit: IpcChild<ToLimit, FromLimit> | undefined;
  const kafkaClients: Array<{ disconnect(): Promise<void> }> = [];
  try {
    const issuer = await DevIssuer.loadOrCreate(dataDir);
    const members = memberIds();
    // Both are kept as soon as they exist, so that a failure of one still cleans up the other.
    const started = await Promise.allSettled([
      createBenchDatabase('pipeline').then((created) => (database = created)),
      spawnFakeKafkaBroker({ topics: { [TOPIC]: 1 }, timeoutMs: 30_000 }).then((spawned) => (broker = spawned)),
    ]);
    for (const outcome of started) if (outcome.status === 'rejected') throw outcome.reason;
    const db = database!;
    const kafkaBroker = broker!;
    await db.execute(
      `insert into "PolicyDefinition" (variant, subject_type, subject_id, target_type, target_id, created_at)
       select 'g', 'user', member, 'merchant', ?, now() from jsonb_array_elements_text(?::jsonb) as member`,
      [MERCHANT_ID, JSON.stringify(members)],
    );
    options.log(`database ${db.name} migrated, ${members.length} members; fake Kafka broker at ${kafkaBroker.brokerAddress}`);

    service = await startBenchServer({
      name: 'signal',
      script: 'bench/pipeline-server.ts',
      sockets: 64,
      startTimeoutMs: 90_000,
      env: {
        PORT: '0',
        HOST: '127.0.0.1',
        APP_ENV_DATA_DIR: dataDir,
        APP_ENV_LOG_LEVEL: logLevelSetting,
        APP_ENV_NODE_ID: '1',
        APP_ENV_DB_URL: db.url,
        APP_ENV_KAFKA_BROKERS: kafkaBroker.brokerAddress,
        APP_ENV_KAFKA_TOPIC: TOPIC,
        APP_ENV_KAFKA_GROUP_ID: GROUP_ID,
        APP_ENV_KAFKA_CLIENT_ID: 'signal-bench',
        APP_ENV_KAFKA_MAX_WAIT_MS: String(settings.maxWaitMs),
        APP_ENV_WEBSOCKET_ECDH_INFO: ECDH_INFO,
        APP_ENV_BASE_PATH: '',
        APP_ENV_WEBSOCKET_REDIS_URL: '',
        APP_ENV_WEBSOCKET_REDIS_HOST: '',
        APP_ENV_JWKS_URL: '',
        APP_ENV_METRICS_ENABLED: '',
      },
    });
    const signal = service;
    await waitReady(signal.port, 60_000);
    options.log(`signal up on port ${signal.port} and in the consumer group`);

    const kafka = new Kafka({ clientId: 'signal-bench-producer', brokers: [kafkaBroker.brokerAddress], logLevel: logLevel.NOTHING });
    const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner, allowAutoTopicCreation: false });
    const admin = kafka.admin();
    await Promise.all([producer.connect(), admin.connect()]);
    kafkaClients.push(producer, admin);

    pushes = IpcChild.spawn<ToPushWorker, FromPushWorker>('push clients', 'bench/lib/push-client-worker.ts', settings.pushClients);
    limit = IpcChild.spawn<ToLimit, FromLimit>('limit', 'bench/pipeline-limit.ts', 4);
    const pushClients = pushes;
    const limitProcess = limit;
    const connectedMembers = members.slice(0, settings.pushClients);
    const tokens = await Promise.all(connectedMembers.map(async (userId) => ({ userId, token: await issuer.sign({ userId, expiresInSec: 4 * 3600 }) })));
    const [, limitConnected] = await Promise.all([
      pushClients.request({ type: 'connect', url: `ws://127.0.0.1:${signal.port}/stream`, ecdhInfo: ECDH_INFO, members: tokens }, 'connected', 30_000),
      limitProcess.request({ type: 'connect', url: db.url }, 'connected', 30_000),
    ]);
    options.log(`${settings.pushClients} members connected (encrypted); limit connected (backend ${limitConnected.backendPid})`);

    const brokerPid = kafkaBroker.child.pid;
    const serviceBackends = async (): Promise<number[]> =>
      (
        await db.execute<{ pid: number }>(`select pid from pg_stat_activity where datname = current_database() and application_name = 'signal'`)
      ).map((row) => Number(row.pid));
    const backendCpu = (pids: readonly number[]): Map<number, number | undefined> => new Map(pids.map((pid) => [pid, cpuTimeMs(pid)]));
    // A backend that appeared during the round started from zero; one that
    // closed during it (the pool's idle timeout) is left out: it was idle.
    const backendDelta = (before: Map<number, number | undefined>, after: Map<number, number | undefined>): number | undefined => {
      const live = [...after].filter(([, end]) => end !== undefined);
      return live.length === 0 ? undefined : sumDefined(live.map(([pid, end]) => end! - (before.has(pid) ? (before.get(pid) ?? Number.NaN) : 0)));
    };
    const perEvent = (start: number | undefined, end: number | undefined, count: number): number | undefined =>
      start === undefined || end === undefined || Number.isNaN(start) || Number.isNaN(end) ? undefined : (end - start) / count;

    const rowSizes: Record<string, unknown> = {};
    const checkRows = async (label: string, prefix: string, count: number, side: 'signal' | 'limit'): Promise<void> => {
      const [counts] = await db.execute<{ rows: number; events: number; foreign: number }>(
        `select count(*)::int as rows, count(distinct event_id)::int as events,
                count(*) filter (where left(event_id, ?::int) <> ?::text)::int as foreign
           from "ActivityNotification"`,
        [prefix.length, prefix],
      );
      if (counts?.rows !== count * MEMBER_COUNT || counts.events !== count || counts.foreign !== 0) {
        throw new Error(`${side} ${label}: ${JSON.stringify(counts)} rows/events/foreign, expected ${count * MEMBER_COUNT}/${count}/0`);
      }
      if (rowSizes[side] === undefined) {
        const [sizes] = await db.execute(
          `select avg(octet_length(title))::int as title, avg(octet_length(content))::int as content,
                  avg(octet_length(html))::int as html, avg(octet_length(metadata::text))::int as metadata
             from "ActivityNotification"`,
        );
        rowSizes[side] = sizes;
      }
      await db.execute(`truncate "ActivityNotification"`);
    };

    const committedOffset = async (): Promise<bigint> => {
      const [topic] = await admin.fetchOffsets({ groupId: GROUP_ID, topics: [TOPIC] });
      const offset = topic?.partitions.find((partition) => partition.partition === 0)?.offset ?? '-1';
      return BigInt(offset);
    };

    const signalRound = async (label: string, count: number): Promise<Measured> => {
      const prefix = `${runId}-${label}-`;
      await pushClients.request({ type: 'round', prefix, count }, 'round-ready', 10_000);
      const [end] = await admin.fetchTopicOffsets(TOPIC);
      const target = BigInt(end!.high) + BigInt(count);
      const timeoutMs = 60_000 + count * 100;
      const pushed = pushClients.next('done', timeoutMs, `${count} pushes to each member`);
      pushed.catch(() => undefined);
      const pids = await serviceBackends();
      const before = { service: cpuTimeMs(signal.child.pid), broker: cpuTimeMs(brokerPid), pushClients: cpuTimeMs(pushClients.pid), db: backendCpu(pids) };

      const startedAt = absoluteNow();
      for (let first = 0; first < count; first += PRODUCE_BATCH) {
        const messages = [];
        for (let index = first; index < Math.min(count, first + PRODUCE_BATCH); index++) {
          messages.push({ key: MERCHANT_ID, value: JSON.stringify(paymentEvent(eventId(prefix, index), index)) });
        }
        await producer.send({ topic: TOPIC, acks: -1, messages });
      }
      // The offset is committed after the rows were stored and pushed: it
      // reaching the target means every event went through.
      let committedAt = 0;
      await withTimeout(
        (async () => {
          for (;;) {
            if (!isRunning(signal.child)) throw new Error('signal exited during the round');
            pushClients.check();
            if ((await committedOffset()) >= target) return void (committedAt = absoluteNow());
            await new Promise((resolveTick) => setTimeout(resolveTick, POLL_MS));
          }
        })(),
        timeoutMs,
        () => `signal round ${label}: committed offset to reach ${target}`,
      );
      const { at: lastPushAt } = await pushed;
      const after = {
        service: cpuTimeMs(signal.child.pid),
        broker: cpuTimeMs(brokerPid),
        pushClients: cpuTimeMs(pushClients.pid),
        db: backendCpu([...new Set([...pids, ...(await serviceBackends())])]),
      };
      await checkRows(label, prefix, count, 'signal');
      const elapsedMs = Math.max(committedAt, lastPushAt) - startedAt;
      return {
        eventsPerSec: (count * 1000) / elapsedMs,
        elapsedMs,
        committedMs: committedAt - startedAt,
        lastPushMs: lastPushAt - startedAt,
        cpuMsPerEvent: {
          service: perEvent(before.service, after.service, count),
          broker: perEvent(before.broker, after.broker, count),
          pushClients: perEvent(before.pushClients, after.pushClients, count),
          dbBackends: perEvent(0, backendDelta(before.db, after.db), count),
        },
      };
    };

    const limitRound = async (label: string, count: number): Promise<Measured> => {
      const prefix = `${runId}-${label}-`;
      const backend = limitConnected.backendPid;
      const before = { limit: cpuTimeMs(limitProcess.pid), db: cpuTimeMs(backend) };
      const done = await limitProcess.request({ type: 'round', prefix, count }, 'done', 60_000 + count * 100);
      const after = { limit: cpuTimeMs(limitProcess.pid), db: cpuTimeMs(backend) };
      if (done.rows !== count * MEMBER_COUNT) throw new Error(`limit ${label}: ${done.rows} rows inserted, expected ${count * MEMBER_COUNT}`);
      await checkRows(label, prefix, count, 'limit');
      const elapsedMs = done.endedAt - done.startedAt;
      return {
        eventsPerSec: (count * 1000) / elapsedMs,
        elapsedMs,
        // The limit process also built the rows before the clock started; its CPU is an upper bound.
        cpuMsPerEvent: { limitProcess: perEvent(before.limit, after.limit, count), dbBackends: perEvent(before.db, after.db, count) },
      };
    };

    const warm = [await signalRound('warmup', settings.warmup), await limitRound('warmup', settings.warmup)];
    options.log(`warm-up done (${settings.warmup} events each: signal ${Math.round(warm[0]!.eventsPerSec)}/s, limit ${Math.round(warm[1]!.eventsPerSec)}/s)`);

    const signalRounds: Measured[] = [];
    const limitRounds: Measured[] = [];
    for (let round = 1; round <= settings.rounds; round++) {
      signalRounds.push(await signalRound(`r${round}`, settings.events));
      limitRounds.push(await limitRound(`r${round}`, settings.events));
      const [s, l] = [signalRounds.at(-1)!, limitRounds.at(-1)!];
      options.log(
        `round ${round}/${settings.rounds}: signal ${Math.round(s.eventsPerSec)} events/s (service ${s.cpuMsPerEvent.service?.toFixed(2)} ms CPU/event, ` +
          `db ${s.cpuMsPerEvent.dbBackends?.toFixed(2)}), limit ${Math.round(l.eventsPerSec)} events/s (db ${l.cpuMsPerEvent.dbBackends?.toFixed(2)} ms CPU/event)`,
      );
    }

    if (options.profileDir !== undefined) {
      const path = join(options.profileDir, 'signal-pipeline.cpuprofile');
      await signal.profileStart();
      const profiled = await signalRound('profile', settings.events);
      await signal.profileStop(path);
      options.log(`signal: profile of one round (${Math.round(profiled.eventsPerSec)} events/s under the profiler) written to ${path}`);
    }

    const cpuMedians = (rounds: Measured[]): Record<string, number | null> => {
      const keys = Object.keys(rounds[0]!.cpuMsPerEvent);
      return Object.fromEntries(
        keys.map((key) => {
          const values = allDefined(rounds.map((r) => r.cpuMsPerEvent[key]));
          return [key, values === undefined ? null : significant(median(values))];
        }),
      );
    };
    return [
      pairedRow(NAME, 'events_per_sec', 'events/s', signalRounds.map((r) => r.eventsPerSec), limitRounds.map((r) => r.eventsPerSec), {
        eventsPerRound: settings.events,
        warmupEvents: settings.warmup,
        rounds: settings.rounds,
        merchantMembers: MEMBER_COUNT,
        rowsPerEvent: MEMBER_COUNT,
        pushClientsConnected: settings.pushClients,
        pushClientsNote: 'members connected over the encrypted handshake in a separate process; every push decrypted, checked and counted',
        topicPartitions: 1,
        producerBatch: PRODUCE_BATCH,
        kafka: 'fake wire-protocol broker (test/fixtures/fake-kafka) in its own process; kafkajs on both sides',
        kafkaMaxWaitMs: settings.maxWaitMs,
        bus: 'in-process (no Redis); each push is still published on it, as for a cluster',
        serviceLogLevel: logLevelSetting,
        database: 'PostgreSQL (local server), a fresh database per run; the table is truncated after every round',
        signalEnd: 'time of the later of: committed offset seen at the last event (polled every 10 ms), last push decrypted',
        limit: 'one plain INSERT of 50 rows per event (pg driver, 550 parameters), sequential, one connection, autocommit; rows built before the clock',
        rowBytes: rowSizes,
        medianCommittedMs: significant(median(signalRounds.map((r) => r.committedMs!))),
        medianLastPushMs: significant(median(signalRounds.map((r) => r.lastPushMs!))),
        cpuMsPerEvent: { signal: cpuMedians(signalRounds), limit: cpuMedians(limitRounds) },
      }),
    ];
  } finally {
    await Promise.allSettled(kafkaClients.map((client) => client.disconnect()));
    await Promise.allSettled([pushes?.close({ type: 'close' }), limit?.close({ type: 'close' })]);
    await service?.stop().catch((error: unknown) => options.log(`signal stop: ${(error as Error).message}`));
    if (broker !== undefined) {
      const { child } = broker;
      await withTimeout(broker.stop(), 10_000, 'fake Kafka broker stopping').catch(() => child.kill('SIGKILL'));
    }
    await database?.drop();
    await rm(dataDir, { recursive: true, force: true });
  }
}

/** Polls `/ready` until every dependency (database, Kafka group membership and first fetch) is ready; bounded. */
async function waitReady(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    try {
      const response = await fetch(`http://127.0.0.1:${port}${BASE_PATH}/ready`, { signal: AbortSignal.timeout(5_000) });
      last = await response.text();
      if (response.status === 200) return;
    } catch (error) {
      last = (error as Error).message;
    }
    await new Promise((resolveTick) => setTimeout(resolveTick, 100));
  }
  throw new Error(`signal not ready after ${timeoutMs} ms: ${last}`);
}
