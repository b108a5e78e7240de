import { loadConfig } from '../src/bootstrap/config.ts';
import { start } from '../src/bootstrap/start.ts';
import { BENCH_EVENT, reply, serveCommands } from './lib/server-commands.ts';

/**
 * signal as the bench runs it: the production start() with the production
 * configuration loader (PORT, APP_ENV_DATA_DIR, … from the environment),
 * plus a stdin trigger that calls `delivery.broadcast` exactly as the REST
 * broadcast route or a bus message would. No Redis hop: this is the edge
 * alone; with APP_ENV_WEBSOCKET_REDIS_URL set, `publish-room` goes through
 * `delivery.toRoom`, which fans out locally and publishes for the other
 * instances. The database is the in-process twin, as in the edge tests: nothing
 * on the broadcast path touches it, and an embedded PostgreSQL would only
 * add start-up time.
 */
const running = await start(loadConfig(process.env), { persistence: 'memory' });

serveCommands({
  broadcast(data) {
    // broadcast() fans out synchronously before its first await; the promise
    // only carries the bus publish, which the bench does not wait on.
    running.delivery.broadcast(BENCH_EVENT, data).catch((error: unknown) => {
      reply({ bench: 'error', message: (error as Error).message });
    });
  },
  toRoom(room, data) {
    running.delivery.toRoom(room, BENCH_EVENT, data).catch((error: unknown) => {
      reply({ bench: 'error', message: (error as Error).message });
    });
  },
  stop: () => running.stop(),
});

reply({ bench: 'ready', port: running.port });
