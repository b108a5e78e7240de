import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Closeable, DependencyHealth, HealthReporter } from '../application/ports/lifecycle.port.ts';
import type { Logger } from '../application/ports/logger.port.ts';
import type { MembershipDirectory } from '../application/ports/membership-directory.port.ts';
import type { MessageBus } from '../application/ports/message-bus.port.ts';
import type { NotificationStore } from '../application/ports/notification-store.port.ts';
import type { PermissionDirectory } from '../application/ports/permission-directory.port.ts';
import type { ControlChannel } from '../application/ports/control-channel.port.ts';
import type { PresenceRegistry } from '../application/ports/presence-registry.port.ts';
import type { TokenVerifier } from '../application/ports/token-verifier.port.ts';
import { InMemoryControlChannel } from '../adapters/memory/in-memory-control-channel.ts';
import { InMemoryPresenceHub, InMemoryPresenceRegistry } from '../adapters/memory/in-memory-presence-registry.ts';
import { RedisControlChannel } from '../adapters/redis/redis-control-channel.ts';
import { RedisPresenceRegistry } from '../adapters/redis/redis-presence-registry.ts';
import { DEV_ISSUER, DEV_ISSUER_ALGORITHM, DevIssuer } from '../adapters/jwks/dev-issuer.ts';
import { JwksTokenVerifier } from '../adapters/jwks/jwks-token-verifier.ts';
import { InMemoryBusHub, InMemoryMessageBus } from '../adapters/memory/in-memory-message-bus.ts';
import { InMemoryMembershipDirectory } from '../adapters/memory/in-memory-membership-directory.ts';
import { InMemoryNotificationStore } from '../adapters/memory/in-memory-notification-store.ts';
import { InMemoryPermissionDirectory } from '../adapters/memory/in-memory-permission-directory.ts';
import { openDatabase, type Database } from '../adapters/postgres/database.ts';
import { startEmbeddedPostgres, type EmbeddedPostgres } from '../adapters/postgres/embedded-postgres.ts';
import { PostgresMembershipDirectory } from '../adapters/postgres/postgres-membership-directory.ts';
import { PostgresNotificationStore } from '../adapters/postgres/postgres-notification-store.ts';
import { PostgresPermissionDirectory } from '../adapters/postgres/postgres-permission-directory.ts';
import { RedisMessageBus } from '../adapters/redis/redis-message-bus.ts';
import type { Config } from './config.ts';

/**
 * Which adapter serves each port: the embedded twin when its setting is
 * absent, the real service when present. Nothing here starts serving.
 */

export function packageVersion(): string {
  try {
    const text = readFileSync(resolve(import.meta.dirname, '../../package.json'), 'utf8');
    return (JSON.parse(text) as { version?: string }).version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}

/** One process-wide set of in-memory hubs stands in for Redis when none is configured. */
export interface EmbeddedHubs {
  bus: InMemoryBusHub;
  presence: InMemoryPresenceHub;
}

export function embeddedHubs(): EmbeddedHubs {
  return { bus: new InMemoryBusHub(), presence: new InMemoryPresenceHub() };
}

export interface Cluster {
  bus: MessageBus;
  presence: PresenceRegistry;
  control: ControlChannel;
}

/** The bus, the presence registry and the control channel: Redis, or in-process hubs. */
export function createCluster(config: Config, instanceId: string, logger: Logger, hubs: EmbeddedHubs): Cluster {
  if (config.redis === undefined) {
    return {
      bus: new InMemoryMessageBus(hubs.bus, { serverId: instanceId, logger }),
      presence: new InMemoryPresenceRegistry(hubs.presence, { ttlMs: config.ws.presenceTtlMs }),
      control: new InMemoryControlChannel(hubs.bus, { logger }),
    };
  }
  const connection = {
    url: config.redis.url,
    redisOptions: { host: config.redis.host, port: config.redis.port, password: config.redis.password, db: config.redis.db },
    channelPrefix: config.channelPrefix,
    logger,
  };
  return {
    bus: new RedisMessageBus({ ...connection, serverId: instanceId }),
    presence: new RedisPresenceRegistry({ ...connection, instanceId, ttlMs: config.ws.presenceTtlMs }),
    control: new RedisControlChannel({ ...connection, instanceId }),
  };
}

export async function createVerifier(config: Config): Promise<{ verifier: TokenVerifier; devIssuer?: DevIssuer }> {
  if (config.jwt.jwksUrl !== undefined) {
    return {
      verifier: new JwksTokenVerifier({
        jwksUrl: config.jwt.jwksUrl,
        algorithms: config.jwt.algorithms,
        issuer: config.jwt.issuer,
        audience: config.jwt.audience,
      }),
    };
  }
  // The dev issuer signs with one ES256 key under its own issuer name.
  const devIssuer = await DevIssuer.loadOrCreate(resolve(config.dataDir));
  return {
    verifier: new JwksTokenVerifier({ localJwks: devIssuer.jwks(), algorithms: [DEV_ISSUER_ALGORITHM], issuer: DEV_ISSUER }),
    devIssuer,
  };
}

export interface Persistence extends Closeable {
  store: NotificationStore;
  membership: MembershipDirectory;
  permissions: PermissionDirectory;
  health(): DependencyHealth[];
}

/** In-process twins, for tests of the edge that need no database. */
export function memoryPersistence(): Persistence {
  return {
    store: new InMemoryNotificationStore(),
    membership: new InMemoryMembershipDirectory(),
    permissions: new InMemoryPermissionDirectory(),
    health: () => [],
    close: async () => undefined,
  };
}

/**
 * PostgreSQL at APP_ENV_DB_URL, or the embedded one under the data dir;
 * migrations and seeds are applied before anything is served.
 */
export async function openPersistence(config: Config, logger: Logger): Promise<Persistence> {
  let embedded: EmbeddedPostgres | undefined;
  let database: Database;
  if (config.databaseUrl !== undefined) {
    database = await openDatabase(config.databaseUrl, { logger });
  } else {
    const started = await startEmbeddedPostgres(resolve(config.dataDir), logger);
    embedded = started;
    database = await openDatabase(started.url, { logger, poolMax: 1 }).catch(async (error: unknown) => {
      await started.close();
      throw error;
    });
  }
  try {
    await database.migrate();
  } catch (error) {
    await database.close();
    await embedded?.close();
    throw error;
  }
  const reporter: HealthReporter = database;
  return {
    store: new PostgresNotificationStore(database.orm),
    membership: new PostgresMembershipDirectory(database.orm),
    permissions: new PostgresPermissionDirectory(database.orm),
    health: () => [reporter.health()],
    close: async () => {
      await database.close();
      await embedded?.close();
    },
  };
}
