import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DevIssuer } from '../../src/adapters/jwks/dev-issuer.ts';
import { ClientPool, type RoundResult } from '../lib/client-pool.ts';
import type { ResultRow, Scenario, ScenarioOptions } from '../lib/results.ts';
import { cpuTimeMs } from '../lib/processes.ts';
import { startBenchServer, type BenchServer } from '../lib/server-handle.ts';
import { median, significant } from '../lib/stats.ts';
import { threeWayRow } from '../lib/three-way-row.ts';
import { ECDH_INFO, signalServerEnv } from '../lib/signal-env.ts';

/**
 * Encrypted broadcast to every connected client of one instance: the
 * edge's widest fan-out. signal runs its real start-up in its own process
 * and is triggered through `delivery.broadcast`; the limit is a bare ws
 * server doing one serialise per message and one AES-256-GCM seal per
 * client; the peer is a Socket.IO 4 server doing `io.emit` (plaintext: it
 * has no per-connection encryption). All three are driven the same way, with
 * the same number of clients, in alternating rounds.
 */
const PAYLOAD_BYTES = 200;

interface Settings {
  clients: number;
  broadcasts: number;
  warmup: number;
  rounds: number;
  /** Broadcasts in flight (sent, not yet decrypted by every client). */
  window: number;
  workersPerFleet: number;
}

const QUICK: Settings = { clients: 400, broadcasts: 30, warmup: 10, rounds: 2, window: 16, workersPerFleet: 1 };
const FULL: Settings = { clients: 2_000, broadcasts: 300, warmup: 60, rounds: 5, window: 16, workersPerFleet: 2 };

interface Measured extends RoundResult {
  /** Server process CPU (user + system) per delivery, µs; undefined without /proc. */
  serverCpuUs: number | undefined;
  /** All client workers' CPU per delivery, µs. */
  clientCpuUs: number | undefined;
}

/** The JSON text of broadcast `seq`'s data: exactly PAYLOAD_BYTES bytes, the same for both servers. */
export function payloadText(seq: number): string {
  const bare = JSON.stringify({ seq, pad: '' });
  return JSON.stringify({ seq, pad: 'x'.repeat(PAYLOAD_BYTES - bare.length) });
}

type Name = 'signal' | 'limit' | 'peer';
const NAMES: readonly Name[] = ['signal', 'limit', 'peer'];

export const broadcastScenario: Scenario = {
  name: 'broadcast-2000',
  summary: `one ${PAYLOAD_BYTES}-byte event broadcast, encrypted per client, to 2,000 local clients: deliveries/s decrypted by the clients, and the server's CPU time per delivery; peer: Socket.IO 4 io.emit (plaintext)`,
  run,
};

async function run(options: ScenarioOptions): Promise<ResultRow[]> {
  const settings = options.quick ? QUICK : FULL;
  const dataDir = await mkdtemp(join(tmpdir(), 'signal-bench-'));
  const servers: BenchServer[] = [];
  const pools: ClientPool[] = [];
  try {
    // The key file must exist before signal starts, or both would create one.
    const issuer = await DevIssuer.loadOrCreate(dataDir);
    const launch = async (spec: Parameters<typeof startBenchServer>[0]): Promise<BenchServer> => {
      const server = await startBenchServer(spec);
      servers.push(server);
      return server;
    };
    const [tokens, signal, limit, peer] = await Promise.all([
      Promise.all(
        Array.from({ length: settings.clients }, (_, index) => issuer.sign({ userId: `bench-${index}`, expiresInSec: 4 * 3600 })),
      ),
      launch({
        name: 'signal',
        script: 'bench/signal-server.ts',
        sockets: settings.clients,
        env: signalServerEnv(dataDir),
      }),
      launch({ name: 'limit', script: 'bench/limit-server.ts', sockets: settings.clients, env: { PORT: '0', HOST: '127.0.0.1' } }),
      launch({ name: 'peer', script: 'bench/peer-server.ts', sockets: settings.clients, env: { PORT: '0', HOST: '127.0.0.1', PEER_REDIS_URL: '', PEER_JWKS: '' } }),
    ]);
    options.log(`servers up, ${tokens.length} dev tokens signed`);

    const urls: Record<Name, string> = {
      signal: `ws://127.0.0.1:${signal.port}/stream`,
      limit: `ws://127.0.0.1:${limit.port}/`,
      peer: `http://127.0.0.1:${peer.port}`,
    };
    const fleet = async (target: Name): Promise<ClientPool> => {
      const started = performance.now();
      const pool = await ClientPool.open({
        target,
        url: urls[target],
        clients: settings.clients,
        workers: settings.workersPerFleet,
        tokens: target === 'signal' ? tokens : [],
        ecdhInfo: ECDH_INFO,
        connectTimeoutMs: 60_000,
      });
      pools.push(pool);
      options.log(`${target}: ${settings.clients} clients connected in ${Math.round(performance.now() - started)} ms`);
      return pool;
    };
    const [signalPool, limitPool, peerPool] = await Promise.all([fleet('signal'), fleet('limit'), fleet('peer')]);
    const fleets: Record<Name, [ClientPool, BenchServer]> = { signal: [signalPool, signal], limit: [limitPool, limit], peer: [peerPool, peer] };

    const roundOf = async (pool: ClientPool, server: BenchServer, count: number): Promise<Measured> => {
      const cpu = (): { server: number | undefined; clients: number | undefined } => ({
        server: cpuTimeMs(server.child.pid),
        clients: sum(pool.pids.map(cpuTimeMs)),
      });
      const before = cpu();
      const result = await pool.round(count, settings.window, (seq) => server.broadcast(payloadText(seq)), 30_000 + (count * settings.clients) / 5);
      const after = cpu();
      const perDelivery = (start: number | undefined, end: number | undefined): number | undefined =>
        start === undefined || end === undefined ? undefined : ((end - start) * 1000) / result.delivered;
      return { ...result, serverCpuUs: perDelivery(before.server, after.server), clientCpuUs: perDelivery(before.clients, after.clients) };
    };

    for (const name of NAMES) await roundOf(...fleets[name], settings.warmup);
    options.log(`warm-up done (${settings.warmup} broadcasts each)`);

    const rounds: Record<Name, Measured[]> = { signal: [], limit: [], peer: [] };
    for (let round = 1; round <= settings.rounds; round++) {
      for (const name of NAMES) rounds[name].push(await roundOf(...fleets[name], settings.broadcasts));
      options.log(
        `round ${round}/${settings.rounds}: ` +
          NAMES.map((name) => {
            const last = rounds[name].at(-1)!;
            return `${name} ${Math.round(last.deliveriesPerSec)}/s (server ${last.serverCpuUs?.toFixed(1)} µs CPU/delivery)`;
          }).join(', '),
      );
    }
    const [signalRounds, limitRounds, peerRounds] = [rounds.signal, rounds.limit, rounds.peer];

    if (options.profileDir !== undefined) {
      // Separate rounds, so that profiling never slows a measured one.
      for (const name of NAMES) {
        const [pool, server] = fleets[name];
        const path = join(options.profileDir, `${name}-broadcast.cpuprofile`);
        await server.profileStart();
        const profiled = await roundOf(pool, server, settings.broadcasts);
        await server.profileStop(path);
        options.log(`${name}: profile of one round (${Math.round(profiled.deliveriesPerSec)}/s under the profiler) written to ${path}`);
      }
    }

    const common = {
      clients: settings.clients,
      payloadBytes: PAYLOAD_BYTES,
      broadcastsPerRound: settings.broadcasts,
      warmupBroadcasts: settings.warmup,
      rounds: settings.rounds,
      window: settings.window,
      clientWorkersPerFleet: settings.workersPerFleet,
      trigger: 'stdin line -> delivery.broadcast (signal) / broadcast() (limit) / io.emit (peer); no Redis',
      peer: 'Socket.IO 4 (socket.io 4.8, default adapter), plaintext; clients: socket.io-client, websocket transport only, one Manager each',
      limitCoalescesWrites: process.env.BENCH_LIMIT_CORK !== '0',
    };
    const rows = [
      row(
        'deliveries_per_sec',
        'deliveries/s',
        signalRounds.map((r) => r.deliveriesPerSec),
        limitRounds.map((r) => r.deliveriesPerSec),
        peerRounds.map((r) => r.deliveriesPerSec),
        common,
      ),
    ];
    const signalCpu = defined(signalRounds.map((r) => r.serverCpuUs));
    const limitCpu = defined(limitRounds.map((r) => r.serverCpuUs));
    const peerCpu = defined(peerRounds.map((r) => r.serverCpuUs));
    if (signalCpu !== undefined && limitCpu !== undefined && peerCpu !== undefined) {
      const fleetCpu = (list: Measured[]): number => significant(median(defined(list.map((r) => r.clientCpuUs)) ?? [Number.NaN]));
      rows.push(
        row('server_cpu_per_delivery', 'µs CPU/delivery (lower is better)', signalCpu, limitCpu, peerCpu, {
          ...common,
          clientCpuUsPerDelivery: { signalFleet: fleetCpu(signalRounds), limitFleet: fleetCpu(limitRounds), peerFleet: fleetCpu(peerRounds) },
        }),
      );
    }
    return rows;
  } finally {
    await Promise.allSettled(pools.map((pool) => pool.close()));
    await Promise.allSettled(servers.map((server) => server.stop()));
    await rm(dataDir, { recursive: true, force: true });
  }
}

function row(
  metric: string,
  unit: string,
  signal: number[],
  limit: number[],
  peer: number[],
  params: Record<string, unknown>,
): ResultRow {
  return threeWayRow(broadcastScenario.name, metric, unit, { signal, peer, limit }, params);
}

function defined(values: ReadonlyArray<number | undefined>): number[] | undefined {
  return values.every((value) => value !== undefined) ? (values as number[]) : undefined;
}

function sum(values: ReadonlyArray<number | undefined>): number | undefined {
  return values.every((value) => value !== undefined) ? (values as number[]).reduce((a, b) => a + b, 0) : undefined;
}
