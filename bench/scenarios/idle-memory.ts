import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { DevIssuer } from '../../src/adapters/jwks/dev-issuer.ts';
import { loopbackSources, openLimit, openPeer, openSignal, type Target } from '../lib/client-connect.ts';
import { ClientPool } from '../lib/client-pool.ts';
import { fdLimits, FD_HEADROOM } from '../lib/processes.ts';
import type { ResultRow, Scenario, ScenarioOptions } from '../lib/results.ts';
import type { MemorySample } from '../lib/server-commands.ts';
import { startBenchServer, type BenchServer } from '../lib/server-handle.ts';
import { median, significant } from '../lib/stats.ts';
import { threeWayRow } from '../lib/three-way-row.ts';
import { ECDH_INFO, signalServerEnv } from '../lib/signal-env.ts';

/**
 * What an idle connection costs the server: a fresh server process (run
 * with --expose-gc) takes a small warm-up batch of connections and lets
 * them go, collects garbage and reports its RSS (the baseline); then N
 * clients connect and finish their handshakes (signal: authenticated and
 * encrypted, in its two default rooms), everything settles, garbage is
 * collected again and RSS is read. (RSS after − baseline) / N.
 *
 * RSS after a collection still holds pages the process used before and
 * freed (V8 keeps freed heap pages for reuse, malloc keeps its arenas), so
 * a server with a big start-up begins with slack that its first
 * connections fill without growing RSS. The JS heap growth per connection
 * (V8's own count of live bytes) is therefore reported next to the RSS
 * figure: it has no such slack, but leaves out native memory.
 *
 * Peer: Socket.IO 4 with plain connected sockets. Limit: bare `ws` holding
 * a 32-byte key per socket (bench/limit-server.ts).
 *
 * One process cannot hold more sockets than its hard fd limit allows, so
 * N is 20,000 or the hard limit minus the process's own descriptors,
 * whichever is smaller; the figure used is in the row's params.
 */
const WARMUP_CONNECTIONS = 100;

interface Settings {
  connections: number;
  rounds: number;
  workers: number;
  /** Idle time before each sample, for in-flight frames and timers to settle. */
  settleMs: number;
}

const QUICK: Settings = { connections: 1_000, rounds: 1, workers: 1, settleMs: 1_000 };
const FULL: Settings = { connections: 20_000, rounds: 2, workers: 4, settleMs: 1_000 };

type Name = Target;
const NAMES: readonly Name[] = ['signal', 'peer', 'limit'];

interface Measured {
  rssKiB: number;
  heapKiB: number;
  /** Memory outside the JS heap that V8 knows about (Buffers, ArrayBuffers), per connection. */
  externalKiB: number;
  baselineRssMiB: number;
  connectMs: number;
}

export const idleMemoryScenario: Scenario = {
  name: 'idle-memory-20k',
  summary:
    'server memory per idle connection with 20,000 connected clients (signal: authenticated and encrypted): RSS after GC minus the baseline, over N; peer: Socket.IO 4; limit: bare ws with a 32-byte key per socket',
  run,
};

async function run(options: ScenarioOptions): Promise<ResultRow[]> {
  const base = options.quick ? QUICK : FULL;
  // The server holds every socket in one process: it must fit under the hard fd limit.
  const settings = { ...base, connections: Math.min(base.connections, fdLimits().hard - FD_HEADROOM) };
  const n = settings.connections;
  const dataDir = await mkdtemp(join(tmpdir(), 'signal-bench-'));
  try {
    const issuer = await DevIssuer.loadOrCreate(dataDir);
    const tokens = await Promise.all(Array.from({ length: n }, (_, index) => issuer.sign({ userId: `idle-${index}`, expiresInSec: 4 * 3600 })));
    options.log(`${n} dev tokens signed${n < base.connections ? ` (N lowered from ${base.connections}: hard fd limit ${fdLimits().hard})` : ''}`);

    const envOf: Record<Name, Record<string, string>> = {
      signal: signalServerEnv(dataDir),
      peer: { PORT: '0', HOST: '127.0.0.1', PEER_REDIS_URL: '', PEER_JWKS: '' },
      limit: { PORT: '0', HOST: '127.0.0.1' },
    };
    const scripts: Record<Name, string> = { signal: 'bench/signal-server.ts', peer: 'bench/peer-server.ts', limit: 'bench/limit-server.ts' };
    const urlOf = (name: Name, server: BenchServer): string =>
      name === 'signal' ? `ws://127.0.0.1:${server.port}/stream` : name === 'peer' ? `http://127.0.0.1:${server.port}` : `ws://127.0.0.1:${server.port}/`;

    /**
     * The code paths of accepting and handshaking are loaded and compiled
     * before the baseline: a short burst of connections from the bench
     * process itself (no worker to start), closed again.
     */
    const warmUp = async (name: Name, url: string): Promise<void> => {
      const closers: Array<() => void> = [];
      let next = 0;
      const lane = async (): Promise<void> => {
        while (next < WARMUP_CONNECTIONS) {
          const index = next++;
          if (name === 'peer') {
            const socket = await openPeer({ url });
            closers.push(() => socket.close());
          } else {
            const client = name === 'signal' ? await openSignal({ url, token: tokens[index]!, ecdhInfo: ECDH_INFO }) : await openLimit({ url });
            closers.push(() => client.ws.terminate());
          }
        }
      };
      try {
        await Promise.all(Array.from({ length: 8 }, lane));
      } finally {
        for (const close of closers) close();
      }
    };

    const measure = async (name: Name, server: BenchServer): Promise<Measured> => {
      let pool: ClientPool | undefined;
      try {
        await warmUp(name, urlOf(name, server));
        await sleep(settings.settleMs);
        const before = await settledMemory(server);
        const started = performance.now();
        pool = await ClientPool.open({
          target: name,
          url: urlOf(name, server),
          clients: n,
          workers: settings.workers,
          tokens: name === 'signal' ? tokens : [],
          ecdhInfo: ECDH_INFO,
          connectTimeoutMs: 300_000,
          localAddresses: loopbackSources(n),
        });
        const connectMs = performance.now() - started;
        await sleep(settings.settleMs);
        const after = await settledMemory(server);
        if (!after.collected) throw new Error(`${name} server was not started with --expose-gc`);
        return perConnection(before, after, n, connectMs);
      } finally {
        await pool?.close();
        await server.stop().catch(() => undefined);
      }
    };

    const rounds: Record<Name, Measured[]> = { signal: [], peer: [], limit: [] };
    for (let round = 1; round <= settings.rounds; round++) {
      // Fresh servers each round, started together (start-up is most of the wait); measured one after the other.
      const started = await Promise.allSettled(
        NAMES.map((name) => startBenchServer({ name, script: scripts[name], sockets: n, env: envOf[name], nodeArgs: ['--expose-gc'], startTimeoutMs: 120_000 })),
      );
      const failed = started.find((result) => result.status === 'rejected');
      if (failed !== undefined) {
        await Promise.allSettled(started.flatMap((result) => (result.status === 'fulfilled' ? [result.value.stop()] : [])));
        throw (failed as PromiseRejectedResult).reason;
      }
      const servers = started.map((result) => (result as PromiseFulfilledResult<BenchServer>).value);
      try {
        for (const [index, name] of NAMES.entries()) rounds[name].push(await measure(name, servers[index]!));
      } finally {
        await Promise.allSettled(servers.map((server) => server.stop()));
      }
      options.log(
        `round ${round}/${settings.rounds}: ` +
          NAMES.map((name) => {
            const last = rounds[name].at(-1)!;
            return `${name} ${last.rssKiB.toFixed(2)} KiB RSS (heap ${last.heapKiB.toFixed(2)}, external ${last.externalKiB.toFixed(2)}) per connection, ${n} connected in ${Math.round(last.connectMs)} ms`;
          }).join('; '),
      );
    }

    const common = {
      connections: n,
      requestedConnections: base.connections,
      hardFdLimit: fdLimits().hard,
      rounds: settings.rounds,
      clientWorkers: settings.workers,
      warmupConnections: WARMUP_CONNECTIONS,
      settleMs: settings.settleMs,
      method: 'fresh server per round, --expose-gc; warm-up batch connected and closed; gc twice and read RSS, again every 0.5 s until it falls by less than 1 % (at most 6 reads): the baseline; N clients connect (loopback sources 127.0.0.x); settle; the same settled reading again',
      signalState: 'authenticated, encrypted (AES key per connection), in ws-default and ws-notification, presence registered (in-process registry)',
      peer: 'Socket.IO 4.8 default settings, websocket transport, connected sockets',
      limit: 'bench/limit-server.ts: ws + a 32-byte key per socket',
      baselineRssMiB: Object.fromEntries(NAMES.map((name) => [name, rounds[name].map((r) => significant(r.baselineRssMiB))])),
      connectMs: Object.fromEntries(NAMES.map((name) => [name, rounds[name].map((r) => Math.round(r.connectMs))])),
    };
    return [
      row('rss_per_connection', 'KiB RSS/connection (lower is better)', rounds, (r) => r.rssKiB, common),
      row('heap_per_connection', 'KiB JS heap/connection (lower is better)', rounds, (r) => r.heapKiB, {
        ...common,
        externalKiBPerConnection: Object.fromEntries(NAMES.map((name) => [name, significant(median(rounds[name].map((r) => r.externalKiB)))])),
        rssMinusHeapKiBPerConnection: Object.fromEntries(
          NAMES.map((name) => [name, significant(median(rounds[name].map((r) => r.rssKiB - r.heapKiB)))]),
        ),
      }),
    ];
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
}

/**
 * A memory sample once RSS has stopped falling: after the collections the
 * allocator and V8 go on handing freed pages back for a while (the warm-up
 * sockets' buffers, start-up garbage), and a baseline read in the middle of
 * that is too high. With 1,000 connections (quick mode) the bare limit's
 * figure once came out negative that way. Reads every 0.5 s until RSS falls
 * by less than 1 % from one read to the next, at most 6 reads.
 */
async function settledMemory(server: BenchServer): Promise<MemorySample> {
  let sample = await server.memory();
  for (let reads = 1; reads < 6; reads++) {
    await sleep(500);
    const next = await server.memory();
    const falling = next.rss < sample.rss * 0.99;
    sample = next;
    if (!falling) break;
  }
  return sample;
}

function perConnection(before: MemorySample, after: MemorySample, n: number, connectMs: number): Measured {
  const kib = (bytes: number): number => bytes / 1024 / n;
  return {
    rssKiB: kib(after.rss - before.rss),
    heapKiB: kib(after.heapUsed - before.heapUsed),
    externalKiB: kib(after.external - before.external),
    baselineRssMiB: before.rss / 2 ** 20,
    connectMs,
  };
}

function row(
  metric: string,
  unit: string,
  rounds: Record<Name, Measured[]>,
  pick: (r: Measured) => number,
  params: Record<string, unknown>,
): ResultRow {
  const values = { signal: rounds.signal.map(pick), peer: rounds.peer.map(pick), limit: rounds.limit.map(pick) };
  return threeWayRow(idleMemoryScenario.name, metric, unit, values, params);
}
