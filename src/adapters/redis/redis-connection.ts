import { Redis } from 'ioredis';
import type { RedisOptions } from 'ioredis';
import type { Logger } from '../../application/ports/logger.port.ts';

/*
 * The connection bookkeeping the Redis adapters share: how a connection is
 * opened (fail fast, never replay), how long a call may wait for the very
 * first connection, and what is logged about a connection's ups and downs.
 * The pub/sub adapters build their pair of connections from these in
 * redis-pub-sub.ts.
 */

/** How long a call issued during start-up may wait for the very first connection. */
export const DEFAULT_COMMAND_TIMEOUT_MS = 2_000;
/** States in which ioredis is still making its first attempt, not recovering from a loss. */
export const STARTING_STATES: ReadonlySet<string> = new Set(['wait', 'connecting', 'connect']);

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

export interface RedisConnectionOptions {
  /** `redis://[:password@]host:port[/db]`; `redisOptions` may add to or override it. */
  url?: string;
  redisOptions?: RedisOptions;
}

/**
 * A connection without an offline queue that never resends: a command
 * while Redis is down fails at once instead of piling up in memory, and
 * whatever is in flight when the connection drops is rejected rather than
 * held for the next connection and maybe sent twice. Subscriptions are not
 * restored by ioredis either; the owner re-issues them (see PubSubConnections).
 * `name` shows in CLIENT LIST unless `redisOptions` names the connection.
 */
export function openConnection(options: RedisConnectionOptions, name: string, commandTimeout: number, lazyConnect: boolean): Redis {
  const redisOptions: RedisOptions = {
    ...options.redisOptions,
    // Names cannot hold spaces.
    connectionName: options.redisOptions?.connectionName ?? name.replace(/\s/g, '_'),
    commandTimeout,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    autoResubscribe: false,
    lazyConnect,
  };
  return options.url === undefined ? new Redis(redisOptions) : new Redis(options.url, redisOptions);
}

export interface ConnectionLogOptions {
  logger: Logger;
  /** The fields of every line, read at each event, so they may change (an instance id known only once subscribed). */
  fields: () => Record<string, unknown>;
  /** True once the owner is closing: its own disconnects are not news then. */
  closing: () => boolean;
  /**
   * Logs 'redis connected' / 'redis reconnected' on ready; off where the
   * owner logs its own line (a subscriber, once its channels are acknowledged).
   */
  announceReady: boolean;
}

export interface WatchedConnection {
  /** Whether the connection was ready at least once: from then on, not ready means down. */
  readonly everReady: boolean;
}

/**
 * Logs a connection going up and down, once per transition, and the first
 * error of each outage. Attach it once per client, never per connection,
 * so reconnects cannot accumulate listeners. Without an 'error' listener
 * ioredis prints every failed reconnect attempt to stderr; the first error
 * of an outage is enough for operators.
 */
export function watchConnection(client: Redis, options: ConnectionLogOptions): WatchedConnection {
  const { logger, fields, closing } = options;
  const state = { everReady: false };
  let connected = false;
  let errorLogged = false;
  client.on('ready', () => {
    connected = true;
    errorLogged = false;
    if (options.announceReady && !closing()) logger.info(fields(), state.everReady ? 'redis reconnected' : 'redis connected');
    state.everReady = true;
  });
  client.on('close', () => {
    if (!connected) return;
    connected = false;
    if (!closing()) logger.warn(fields(), 'redis disconnected');
  });
  client.on('error', (error: unknown) => {
    if (closing() || errorLogged) return;
    errorLogged = true;
    logger.warn({ ...fields(), err: errorMessage(error) }, 'redis connection error');
  });
  return state;
}

/**
 * Bounded wait for the first connection: resolves on 'ready', rejects with
 * the cause on the first failed attempt or after `timeoutMs`. The caller
 * wraps the cause in its own unavailable error.
 */
export function awaitFirstReady(client: Redis, timeoutMs: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const settle = (error?: unknown): void => {
      clearTimeout(timer);
      client.off('ready', onReady);
      client.off('error', onFailure);
      client.off('close', onFailure);
      if (error === undefined) resolve();
      else reject(error);
    };
    const onReady = (): void => settle();
    const onFailure = (error?: unknown): void => settle(error ?? new Error('connection closed'));
    const timer = setTimeout(() => settle(new Error('connect timeout')), timeoutMs);
    client.on('ready', onReady);
    client.on('error', onFailure);
    client.on('close', onFailure);
  });
}

export async function quit(client: Redis): Promise<void> {
  if (client.status === 'ready') {
    try {
      await client.quit();
      return;
    } catch {
      // Fall through: the connection died while quitting.
    }
  }
  client.disconnect();
}
