import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { HttpLoad } from './lib/http-load.ts';
import { cpuTimesMs } from './lib/processes.ts';
import { startBenchServer, type BenchServer } from './lib/server-handle.ts';
import { signalServerEnv } from './lib/signal-env.ts';
import { median } from './lib/stats.ts';

/**
 * A/B diagnostic for the REST path (not part of `npm run bench`): signal
 * servers from any checkouts side by side with the bare node:http limit, in
 * many short alternating rounds, reporting each server's figures as the
 * median of its per-round ratios to the limit's round next to it. On a
 * shared machine whose speed drifts by tens of percent within a minute,
 * those paired ratios separate changes of a few percent where absolute
 * figures cannot; user and system CPU are reported apart, since the
 * system share follows the load generator's wake-ups more than the server.
 *
 *   npx tsx bench/rest-ab.ts [name=path/to/bench/signal-server.ts ...]
 *   ROUNDS=24 DURATION_MS=1000 npx tsx bench/rest-ab.ts before=/tmp/base/bench/signal-server.ts after=bench/signal-server.ts
 *
 * With no argument it measures this checkout's signal. A checkout elsewhere
 * needs this one's node_modules linked in (ln -s).
 */
const STATUS_PATH = '/v1/api/signal/socket/websocket/clients/status';
const CONNECTIONS = 50;
const rounds = Number(process.env.ROUNDS ?? 24);
const durationMs = Number(process.env.DURATION_MS ?? 1_000);
const specs = process.argv.slice(2).length > 0 ? process.argv.slice(2) : ['signal=bench/signal-server.ts'];

interface Round {
  rps: number;
  userUs: number;
  systemUs: number;
}

/** CPU time (µs) the process has used so far; bench runs need /proc. */
function cpuUs(pid: number): { user: number; system: number } {
  const times = cpuTimesMs(pid);
  if (times === undefined) throw new Error(`no CPU times for pid ${pid} (needs /proc)`);
  return { user: times.user * 1000, system: times.system * 1000 };
}

const dataDir = await mkdtemp(join(tmpdir(), 'signal-rest-ab-'));
const servers: BenchServer[] = [];
let load: HttpLoad | undefined;
try {
  const signalEnv = signalServerEnv(dataDir, { APP_ENV_BASE_PATH: '', APP_ENV_METRICS_ENABLED: '' });
  for (const spec of specs) {
    const at = spec.indexOf('=');
    if (at < 1) throw new Error(`expected name=script, got ${spec}`);
    servers.push(await startBenchServer({ name: spec.slice(0, at), script: resolve(spec.slice(at + 1)), sockets: CONNECTIONS, env: signalEnv }));
  }
  const limit = await startBenchServer({ name: 'limit', script: 'bench/rest-limit-server.ts', sockets: CONNECTIONS, env: { PORT: '0', HOST: '127.0.0.1' } });
  servers.push(limit);
  load = HttpLoad.start(CONNECTIONS);
  const generator = load;

  const roundOf = async (server: BenchServer, ms: number): Promise<Round> => {
    const before = cpuUs(server.child.pid!);
    const report = await generator.round({ host: '127.0.0.1', port: server.port, path: STATUS_PATH, connections: CONNECTIONS, durationMs: ms, graceMs: 5_000, expectPrefix: '{"status":"ok"' });
    const after = cpuUs(server.child.pid!);
    return { rps: report.requestsPerSec, userUs: (after.user - before.user) / report.requests, systemUs: (after.system - before.system) / report.requests };
  };

  for (const server of servers) await roundOf(server, 2_000);
  const measured = new Map<string, Round[]>(servers.map((server) => [server.name, []]));
  for (let round = 0; round < rounds; round++) {
    // Alternate the order so that no server always follows the same one.
    for (const server of round % 2 === 0 ? servers : [...servers].reverse()) measured.get(server.name)!.push(await roundOf(server, durationMs));
  }

  const reference = measured.get('limit')!;
  const paired = (rows: Round[], pick: (row: Round) => number): string => median(rows.map((row, i) => pick(row) / pick(reference[i]!))).toFixed(3);
  console.log(`${rounds} rounds of ${durationMs} ms, ${CONNECTIONS} keep-alive connections; median of per-round ratios to the limit, then median absolute figures`);
  for (const [name, rows] of measured) {
    console.log(
      `${name.padEnd(12)} requests/s ${paired(rows, (r) => r.rps)}  user CPU ${paired(rows, (r) => r.userUs)}  user+system ${paired(rows, (r) => r.userUs + r.systemUs)}` +
        `   |  ${Math.round(median(rows.map((r) => r.rps)))} req/s, ${median(rows.map((r) => r.userUs)).toFixed(1)} + ${median(rows.map((r) => r.systemUs)).toFixed(1)} µs CPU/request`,
    );
  }
} finally {
  await load?.close();
  await Promise.allSettled(servers.map((server) => server.stop()));
  await rm(dataDir, { recursive: true, force: true });
}
