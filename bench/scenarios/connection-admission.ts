import { createECDH } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEV_ISSUER, DevIssuer } from '../../src/adapters/jwks/dev-issuer.ts';
import { cpuTimeMs } from '../lib/processes.ts';
import type { ResultRow, Scenario, ScenarioOptions } from '../lib/results.ts';
import { startBenchServer, type BenchServer } from '../lib/server-handle.ts';
import { median, significant } from '../lib/stats.ts';
import { threeWayRow } from '../lib/three-way-row.ts';
import { WorkerFleet } from '../lib/worker-fleet.ts';
import type { AdmissionTarget, FromAdmissionWorker, ToAdmissionWorker } from '../lib/worker-messages.ts';
import { ECDH_INFO, signalServerEnv } from '../lib/signal-env.ts';

/**
 * How fast a fresh connection becomes usable: connect, authenticate with
 * an ES256 JWT, and (signal) the ECDH P-256 handshake, until `connected`
 * with the session key derived on both sides; then the client closes and
 * its lane opens the next one. Clients run in separate processes, several
 * lanes each, every one generating its own key pair and deriving its key.
 *
 * Peer: Socket.IO 4 whose `io.use` middleware verifies the same tokens with
 * jose (ES256) and that has no key exchange. Limit: bench/handshake-limit.ts,
 * the server-side verify + keygen + derive + HKDF in a tight loop in one
 * process, with no network at all.
 */
const TOKENS = 64;

interface Settings {
  roundMs: number;
  warmupMs: number;
  rounds: number;
  workers: number;
  lanesPerWorker: number;
}

const QUICK: Settings = { roundMs: 1_000, warmupMs: 200, rounds: 1, workers: 1, lanesPerWorker: 4 };
const FULL: Settings = { roundMs: 8_000, warmupMs: 2_000, rounds: 5, workers: 2, lanesPerWorker: 8 };

type Name = AdmissionTarget | 'limit';
const NAMES: readonly Name[] = ['signal', 'peer', 'limit'];

interface Measured {
  perSec: number;
  /** The server's (or the limit process's) CPU per admitted connection, µs. */
  serverCpuUs: number | undefined;
  /** The client processes' CPU per admitted connection, µs (not for the limit). */
  clientCpuUs?: number | undefined;
  /** Connect → connected, ms (not for the limit). */
  p50Ms?: number;
  p99Ms?: number;
}

export const connectionAdmissionScenario: Scenario = {
  name: 'connection-admission',
  summary:
    'connections per second until `connected` (connect + ES256 JWT verify + ECDH P-256 handshake, both sides deriving the key), clients in separate processes; peer: Socket.IO 4 with a jose JWT middleware and no key exchange; limit: the server-side crypto alone in a tight loop',
  run,
};

async function run(options: ScenarioOptions): Promise<ResultRow[]> {
  const settings = options.quick ? QUICK : FULL;
  const dataDir = await mkdtemp(join(tmpdir(), 'signal-bench-'));
  const servers: BenchServer[] = [];
  const fleets: Array<WorkerFleet<ToAdmissionWorker, FromAdmissionWorker>> = [];
  try {
    const issuer = await DevIssuer.loadOrCreate(dataDir);
    const tokens = await Promise.all(
      Array.from({ length: TOKENS }, (_, index) => issuer.sign({ userId: `admit-${index}`, expiresInSec: 4 * 3600 })),
    );
    const clientKeys = Array.from({ length: TOKENS }, () => {
      const ecdh = createECDH('prime256v1');
      ecdh.generateKeys();
      return ecdh.getPublicKey('base64', 'uncompressed');
    });
    const launch = async (spec: Parameters<typeof startBenchServer>[0]): Promise<BenchServer> => {
      const server = await startBenchServer({ startTimeoutMs: 120_000, ...spec });
      servers.push(server);
      return server;
    };
    const lanes = settings.workers * settings.lanesPerWorker;
    const [signal, peer, limit] = await Promise.all([
      launch({
        name: 'signal',
        script: 'bench/signal-server.ts',
        sockets: lanes * 4,
        env: signalServerEnv(dataDir),
      }),
      launch({
        name: 'peer',
        script: 'bench/peer-server.ts',
        sockets: lanes * 4,
        env: { PORT: '0', HOST: '127.0.0.1', PEER_REDIS_URL: '', PEER_JWKS: JSON.stringify(issuer.jwks()), PEER_JWT_ISSUER: DEV_ISSUER },
      }),
      launch({
        name: 'handshake-limit',
        script: 'bench/handshake-limit.ts',
        sockets: 0,
        env: {
          BENCH_JWKS: JSON.stringify(issuer.jwks()),
          BENCH_ISSUER: DEV_ISSUER,
          BENCH_TOKENS: JSON.stringify(tokens),
          BENCH_CLIENT_KEYS: JSON.stringify(clientKeys),
          BENCH_ECDH_INFO: ECDH_INFO,
        },
      }),
    ]);
    options.log(`servers up; ${settings.workers} client workers × ${settings.lanesPerWorker} lanes`);

    const fleet = WorkerFleet.spawn<ToAdmissionWorker, FromAdmissionWorker>(
      'admission clients',
      'bench/lib/admission-worker.ts',
      Array.from({ length: settings.workers }, () => settings.lanesPerWorker * 4),
    );
    fleets.push(fleet);
    const urls: Record<AdmissionTarget, string> = {
      signal: `ws://127.0.0.1:${signal.port}/stream`,
      peer: `http://127.0.0.1:${peer.port}`,
    };
    const serverOf: Record<Name, BenchServer> = { signal, peer, limit };

    const roundOf = async (name: Name, durationMs: number, warmup = false): Promise<Measured> => {
      const server = serverOf[name];
      const cpuBefore = cpuTimeMs(server.child.pid);
      const clientsCpu = (): number | undefined => {
        const times = fleet.pids.map(cpuTimeMs);
        return times.some((time) => time === undefined) ? undefined : times.reduce((a, b) => a! + b!, 0);
      };
      if (name === 'limit') {
        const { result } = await server.command(`run ${durationMs}`, 'result', durationMs + 30_000);
        const cpuAfter = cpuTimeMs(server.child.pid);
        const count = result!.count!;
        return {
          perSec: (count * 1000) / result!.elapsedMs!,
          serverCpuUs: cpuBefore === undefined || cpuAfter === undefined ? undefined : ((cpuAfter - cpuBefore) * 1000) / count,
        };
      }
      const clientsBefore = clientsCpu();
      const results = await fleet.ask(
        () => ({ type: 'run', target: name, url: urls[name], tokens, ecdhInfo: ECDH_INFO, lanes: settings.lanesPerWorker, durationMs }),
        'result',
        durationMs + 60_000,
        `${name} admission run`,
      );
      const cpuAfter = cpuTimeMs(server.child.pid);
      const clientsAfter = clientsCpu();
      let completed = 0;
      const latencies: number[] = [];
      for (const result of results) {
        if (result.failed > 0) throw new Error(`${name}: ${result.failed} connections failed (first: ${result.firstError})`);
        completed += result.completed;
        for (const value of result.latenciesMs) latencies.push(value);
      }
      // A warm-up only has to run: on a busy machine (quick runs side by side) it may complete nothing.
      if (completed === 0 && !warmup) throw new Error(`${name}: no connection completed in ${durationMs} ms`);
      latencies.sort((a, b) => a - b);
      return {
        perSec: (completed * 1000) / durationMs,
        serverCpuUs: cpuBefore === undefined || cpuAfter === undefined ? undefined : ((cpuAfter - cpuBefore) * 1000) / completed,
        clientCpuUs: clientsBefore === undefined || clientsAfter === undefined ? undefined : ((clientsAfter - clientsBefore) * 1000) / completed,
        p50Ms: latencies[Math.floor(latencies.length / 2)],
        p99Ms: latencies[Math.min(latencies.length - 1, Math.ceil(latencies.length * 0.99) - 1)],
      };
    };

    for (const name of NAMES) await roundOf(name, settings.warmupMs, true);
    options.log(`warm-up done (${settings.warmupMs} ms each)`);
    const rounds: Record<Name, Measured[]> = { signal: [], peer: [], limit: [] };
    for (let round = 1; round <= settings.rounds; round++) {
      for (const name of NAMES) rounds[name].push(await roundOf(name, settings.roundMs));
      options.log(
        `round ${round}/${settings.rounds}: ` +
          NAMES.map((name) => {
            const last = rounds[name].at(-1)!;
            const clients = last.clientCpuUs === undefined ? '' : `, clients ${last.clientCpuUs.toFixed(0)} µs`;
            return `${name} ${Math.round(last.perSec)}/s (${last.serverCpuUs?.toFixed(0)} µs CPU each${clients})`;
          }).join(', '),
      );
    }

    if (options.profileDir !== undefined) {
      const path = join(options.profileDir, 'signal-admission.cpuprofile');
      await signal.profileStart();
      await roundOf('signal', settings.roundMs);
      await signal.profileStop(path);
      options.log(`signal: profile of one admission round written to ${path}`);
    }

    // Per-step costs, measured in the limit process after the rounds (never during one).
    const { result: steps } = await limit.command(`breakdown ${options.quick ? 100 : 500}`, 'result', 60_000);

    // What the machine's cores allow when the clients share them with the
    // server: even a server that cost only the limit's CPU per connection
    // could not admit more than cores / (its CPU + the clients' CPU).
    const medianOf = (name: Name, pick: (r: Measured) => number | undefined): number | undefined => {
      const values = rounds[name].map(pick);
      return values.every((value) => value !== undefined) ? median(values as number[]) : undefined;
    };
    const cores = availableParallelism();
    const clientCpu = { signal: medianOf('signal', (r) => r.clientCpuUs), peer: medianOf('peer', (r) => r.clientCpuUs) };
    const limitServerCpu = medianOf('limit', (r) => r.serverCpuUs);
    const machineBound =
      clientCpu.signal === undefined || limitServerCpu === undefined
        ? undefined
        : {
            cores,
            signalClientCpuUs: significant(clientCpu.signal),
            limitServerCpuUs: significant(limitServerCpu),
            connectionsPerSec: significant((cores * 1e6) / (clientCpu.signal + limitServerCpu)),
            note: 'cores × 1e6 / (signal clients\' CPU per connection + the limit\'s server CPU per connection): the most any server doing the limit\'s work could admit with these clients on these cores',
          };

    const common = {
      roundMs: settings.roundMs,
      warmupMs: settings.warmupMs,
      rounds: settings.rounds,
      clientWorkers: settings.workers,
      lanesPerWorker: settings.lanesPerWorker,
      tokens: TOKENS,
      signalPath: 'ws connect → authenticate {Bearer ES256 JWT, fresh P-256 public key} → connected {serverPublicKey, salt} → client derives key → close 1000',
      peerPath: 'socket.io-client (websocket only) connect with auth.token → io.use jose jwtVerify ES256 → connect → disconnect',
      limitPath: 'one process, no network: JWT split + node:crypto ES256 verify (sync) + claims, client point decode, ECDH keygen + computeSecret, 32-byte salt, HKDF-SHA-256',
      latencyMs: Object.fromEntries(
        (['signal', 'peer'] as const).map((name) => [
          name,
          { p50: significant(median(rounds[name].map((r) => r.p50Ms!))), p99: significant(median(rounds[name].map((r) => r.p99Ms!))) },
        ]),
      ),
      stepCostsUs: steps,
      clientCpuUsPerConnection: {
        signal: clientCpu.signal === undefined ? null : significant(clientCpu.signal),
        peer: clientCpu.peer === undefined ? null : significant(clientCpu.peer),
      },
      machineBound: machineBound ?? null,
    };
    const rows = [row('connections_per_sec', 'connections/s', rounds, (r) => r.perSec, common)];
    if (NAMES.every((name) => rounds[name].every((r) => r.serverCpuUs !== undefined))) {
      rows.push(row('server_cpu_per_connection', 'µs CPU/connection (lower is better)', rounds, (r) => r.serverCpuUs!, common));
    }
    return rows;
  } finally {
    await Promise.allSettled(fleets.map((fleet) => fleet.close()));
    await Promise.allSettled(servers.map((server) => server.stop()));
    await rm(dataDir, { recursive: true, force: true });
  }
}

function row(
  metric: string,
  unit: string,
  rounds: Record<Name, Measured[]>,
  pick: (r: Measured) => number,
  params: Record<string, unknown>,
): ResultRow {
  const values = { signal: rounds.signal.map(pick), peer: rounds.peer.map(pick), limit: rounds.limit.map(pick) };
  return threeWayRow(connectionAdmissionScenario.name, metric, unit, values, params);
}
