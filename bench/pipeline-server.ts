import { loadConfig } from '../src/bootstrap/config.ts';
import { start } from '../src/bootstrap/start.ts';
import { reply, serveCommands } from './lib/server-commands.ts';

/**
 * signal as the pipeline bench runs it: the production start() with the
 * production configuration loader and real adapters, i.e. PostgreSQL at
 * APP_ENV_DB_URL and the Kafka consumer at APP_ENV_KAFKA_BROKERS, exactly as
 * `npm start` would run it. The only addition is the bench's stdin control
 * channel (quit, profiler); events arrive through Kafka, not through stdin.
 */
const running = await start(loadConfig(process.env));

serveCommands({
  broadcast() {
    reply({ bench: 'error', message: 'the pipeline server takes its events from Kafka' });
  },
  stop: () => running.stop(),
});

reply({ bench: 'ready', port: running.port });
