import { ConfigError } from '../domain/errors.ts';
import { loadConfig, type Config } from './config.ts';
import { flushLogs } from './logger.ts';
import { start } from './start.ts';

/**
 * The `npm start` entry point: configuration, start-up, signals. Stops on
 * SIGTERM/SIGINT with every client closed 1001 and exits 0; a second signal
 * or a stuck shutdown forces the exit.
 */
async function main(): Promise<void> {
  let config: Config;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`signal: invalid configuration: ${error.message}\n`);
      process.exit(1);
    }
    throw error;
  }

  const running = await start(config);
  printBanner(config, running.port, running.devIssuer !== undefined);

  let signalled = false;
  const shutdown = (signal: string): void => {
    if (signalled) process.exit(1);
    signalled = true;
    const force = setTimeout(() => {
      process.stderr.write(`signal: shutdown after ${signal} took too long; exiting\n`);
      process.exit(1);
    }, 10_000);
    force.unref();
    running.stop().then(
      () => flushLogs().then(() => process.exit(0)),
      (error: unknown) => {
        process.stderr.write(`signal: shutdown failed: ${(error as Error).message}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

/** For people, on stderr: stdout stays one JSON object per line for log shippers. */
function printBanner(config: Config, port: number, devIssuer: boolean): void {
  const host = config.host === '0.0.0.0' || config.host === '::' ? 'localhost' : config.host;
  const base = `http://${host}:${port}${config.basePath}`;
  const lines = [
    `signal is listening on port ${port}`,
    `  WebSocket   ws://${host}:${port}${config.ws.path}`,
    `  REST        ${base}/health`,
    `  Message bus ${config.redis === undefined ? 'in-process (single instance)' : 'Redis'}`,
  ];
  if (devIssuer) {
    lines.push(
      '  Tokens      embedded dev issuer (no APP_ENV_JWKS_URL): dev routes are enabled',
      `  JWKS        ${base}/dev/jwks.json`,
      `  Playground  ${base}/playground`,
      '  Get a token npm run token -- --user u1 [--role ADMIN]',
    );
  }
  process.stderr.write(`${lines.join('\n')}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`signal: failed to start: ${(error as Error).message}\n`);
  process.exit(1);
});
