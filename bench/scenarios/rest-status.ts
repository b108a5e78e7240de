import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HttpLoad, type LoadReport } from '../lib/http-load.ts';
import { allDefined, pairedRow } from '../lib/paired-row.ts';
import { cpuTimeMs } from '../lib/processes.ts';
import type { ResultRow, Scenario, ScenarioOptions } from '../lib/results.ts';
import { startBenchServer, type BenchServer } from '../lib/server-handle.ts';
import { signalServerEnv } from '../lib/signal-env.ts';
import { median, significant } from '../lib/stats.ts';

/**
 * `GET /v1/api/signal/socket/websocket/clients/status` over keep-alive
 * HTTP/1.1 at a fixed concurrency: signal's Elysia app (served by
 * node:http through srvx, started by its real start()) against a bare
 * node:http server returning the same JSON. One load-generator process
 * drives both, in alternating rounds of fixed duration.
 */
const NAME = 'rest-status';
const STATUS_PATH = '/v1/api/signal/socket/websocket/clients/status';
const EXPECT_PREFIX = '{"status":"ok","instanceId":"';

interface Settings {
  connections: number;
  durationMs: number;
  warmupMs: number;
  rounds: number;
}

const QUICK: Settings = { connections: 20, durationMs: 1_000, warmupMs: 300, rounds: 2 };
const FULL: Settings = { connections: 50, durationMs: 10_000, warmupMs: 3_000, rounds: 5 };

interface Measured extends LoadReport {
  /** Server CPU (user + system) per request, µs; undefined without /proc. */
  serverCpuUs: number | undefined;
  loadCpuUs: number | undefined;
}

export const restStatusScenario: Scenario = {
  name: NAME,
  summary: 'GET of the clients-status route over 50 keep-alive connections: requests/s, and server CPU per request, against a bare node:http server returning the same JSON',
  run,
};

async function run(options: ScenarioOptions): Promise<ResultRow[]> {
  const settings = options.quick ? QUICK : FULL;
  const dataDir = await mkdtemp(join(tmpdir(), 'signal-bench-rest-'));
  const servers: BenchServer[] = [];
  let load: HttpLoad | undefined;
  try {
    const launch = async (spec: Parameters<typeof startBenchServer>[0]): Promise<BenchServer> => {
      const server = await startBenchServer(spec);
      servers.push(server);
      return server;
    };
    const [signal, limit] = await Promise.all([
      launch({
        name: 'signal',
        // The same process the broadcast scenario measures: start() with the
        // in-process twins, since the status route touches no database.
        script: 'bench/signal-server.ts',
        sockets: settings.connections,
        env: signalServerEnv(dataDir, { APP_ENV_BASE_PATH: '', APP_ENV_METRICS_ENABLED: '' }),
      }),
      launch({ name: 'limit', script: 'bench/rest-limit-server.ts', sockets: settings.connections, env: { PORT: '0', HOST: '127.0.0.1' } }),
    ]);
    load = HttpLoad.start(settings.connections);
    const generator = load;

    // Both answer the same document (values differ: instance ids).
    const bodies = await Promise.all([signal, limit].map((server) => statusBody(server.port)));
    const shapes = bodies.map((body) => Object.keys(JSON.parse(body) as object).join(','));
    if (shapes[0] !== shapes[1]) throw new Error(`status bodies differ in shape: signal ${bodies[0]}, limit ${bodies[1]}`);
    options.log(`servers up; status body ${bodies[0]!.length} bytes (signal), ${bodies[1]!.length} bytes (limit)`);

    const roundOf = async (server: BenchServer, durationMs: number): Promise<Measured> => {
      const cpu = (): { server: number | undefined; load: number | undefined } => ({
        server: cpuTimeMs(server.child.pid),
        load: cpuTimeMs(generator.pid),
      });
      const before = cpu();
      const report = await generator.round({
        host: '127.0.0.1',
        port: server.port,
        path: STATUS_PATH,
        connections: settings.connections,
        durationMs,
        graceMs: 5_000,
        expectPrefix: EXPECT_PREFIX,
      });
      const after = cpu();
      const perRequest = (start: number | undefined, end: number | undefined): number | undefined =>
        start === undefined || end === undefined || report.requests === 0 ? undefined : ((end - start) * 1000) / report.requests;
      if (report.requests === 0) throw new Error(`${server.name}: no response within ${durationMs} ms`);
      return { ...report, serverCpuUs: perRequest(before.server, after.server), loadCpuUs: perRequest(before.load, after.load) };
    };

    await roundOf(signal, settings.warmupMs);
    await roundOf(limit, settings.warmupMs);
    options.log(`warm-up done (${settings.warmupMs} ms each)`);

    const signalRounds: Measured[] = [];
    const limitRounds: Measured[] = [];
    for (let round = 1; round <= settings.rounds; round++) {
      signalRounds.push(await roundOf(signal, settings.durationMs));
      limitRounds.push(await roundOf(limit, settings.durationMs));
      const [s, l] = [signalRounds.at(-1)!, limitRounds.at(-1)!];
      options.log(
        `round ${round}/${settings.rounds}: signal ${Math.round(s.requestsPerSec)} req/s (server ${s.serverCpuUs?.toFixed(1)} µs CPU/request, p99 ${s.latencyMs.p99.toFixed(1)} ms), ` +
          `limit ${Math.round(l.requestsPerSec)} req/s (server ${l.serverCpuUs?.toFixed(1)} µs CPU/request, p99 ${l.latencyMs.p99.toFixed(1)} ms)`,
      );
    }

    if (options.profileDir !== undefined) {
      for (const server of [signal, limit]) {
        const path = join(options.profileDir, `${server.name}-rest-status.cpuprofile`);
        await server.profileStart();
        const profiled = await roundOf(server, settings.durationMs);
        await server.profileStop(path);
        options.log(`${server.name}: profile of one round (${Math.round(profiled.requestsPerSec)} req/s under the profiler) written to ${path}`);
      }
    }

    const latency = (rounds: Measured[]): Record<string, number> => ({
      p50: significant(median(rounds.map((r) => r.latencyMs.p50))),
      p90: significant(median(rounds.map((r) => r.latencyMs.p90))),
      p99: significant(median(rounds.map((r) => r.latencyMs.p99))),
    });
    const common = {
      route: `GET ${STATUS_PATH}`,
      connections: settings.connections,
      inFlightPerConnection: 1,
      roundDurationMs: settings.durationMs,
      warmupMs: settings.warmupMs,
      rounds: settings.rounds,
      loadGenerator: 'one process, raw keep-alive HTTP/1.1 over node:net, status + content-length + body prefix checked on every response',
      signalPersistence: 'memory (the route reads no database)',
      signalMetricsEnabled: true,
      responseBodyBytes: { signal: signalRounds[0]!.bodyBytes, limit: limitRounds[0]!.bodyBytes },
      medianLatencyMs: { signal: latency(signalRounds), limit: latency(limitRounds) },
    };
    const rows = [
      pairedRow(NAME, 'requests_per_sec', 'requests/s', signalRounds.map((r) => r.requestsPerSec), limitRounds.map((r) => r.requestsPerSec), common),
    ];
    const signalCpu = allDefined(signalRounds.map((r) => r.serverCpuUs));
    const limitCpu = allDefined(limitRounds.map((r) => r.serverCpuUs));
    if (signalCpu !== undefined && limitCpu !== undefined) {
      const loadCpu = (rounds: Measured[]): number | null => {
        const values = allDefined(rounds.map((r) => r.loadCpuUs));
        return values === undefined ? null : significant(median(values));
      };
      rows.push(
        pairedRow(NAME, 'server_cpu_per_request', 'µs CPU/request (lower is better)', signalCpu, limitCpu, {
          ...common,
          loadGeneratorCpuUsPerRequest: { againstSignal: loadCpu(signalRounds), againstLimit: loadCpu(limitRounds) },
        }),
      );
    }
    return rows;
  } finally {
    await load?.close();
    await Promise.allSettled(servers.map((server) => server.stop()));
    await rm(dataDir, { recursive: true, force: true });
  }
}

async function statusBody(port: number): Promise<string> {
  const response = await fetch(`http://127.0.0.1:${port}${STATUS_PATH}`, { signal: AbortSignal.timeout(10_000) });
  const body = await response.text();
  if (response.status !== 200 || !body.startsWith(EXPECT_PREFIX)) throw new Error(`status route on port ${port}: HTTP ${response.status} ${body.slice(0, 200)}`);
  return body;
}
