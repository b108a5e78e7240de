import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Access } from '../application/access.ts';
import { ConnectionSession, type MessageHook, type SessionSettings } from '../application/connection-session.ts';
import type { Delivery } from '../application/delivery.ts';
import type { LocalConnections } from '../application/local-connections.ts';
import { NotificationPipeline } from '../application/notification-pipeline.ts';
import { isCloseable, isHealthReporter, type DependencyHealth } from '../application/ports/lifecycle.port.ts';
import type { Logger } from '../application/ports/logger.port.ts';
import type { MembershipDirectory } from '../application/ports/membership-directory.port.ts';
import { noopMetrics, type Metrics } from '../application/ports/metrics.port.ts';
import type { NotificationStore } from '../application/ports/notification-store.port.ts';
import type { PermissionDirectory } from '../application/ports/permission-directory.port.ts';
import type { TokenVerifier } from '../application/ports/token-verifier.port.ts';
import { apiDocs } from '../adapters/http/api-docs.ts';
import { bodyLimitListener } from '../adapters/http/body-limit.ts';
import { clientRoutes } from '../adapters/http/client-routes.ts';
import { countRequests, createHttpApp, unscopedPaths } from '../adapters/http/http-app.ts';
import { requestHandlers } from '../adapters/http/node-handler.ts';
import { notificationRoutes } from '../adapters/http/notification-routes.ts';
import { requestScopedLogger } from '../adapters/http/request-scope.ts';
import { playgroundRoutes } from '../adapters/http/playground/playground-routes.ts';
import type { DevIssuer } from '../adapters/jwks/dev-issuer.ts';
import { KafkaActivityConsumer } from '../adapters/kafka/kafka-activity-consumer.ts';
import { KafkaLagProbe } from '../adapters/metrics/kafka-lag-probe.ts';
import { MeteredMessageBus } from '../adapters/metrics/metered-message-bus.ts';
import { countConnections, PrometheusMetrics } from '../adapters/metrics/prometheus-metrics.ts';
import { UNMATCHED_ROUTE } from '../adapters/metrics/route-label.ts';
import { SystemClock } from '../adapters/system/system-clock.ts';
import { WsGateway } from '../adapters/ws/ws-gateway.ts';
import { DEFAULT_MACHINE_SETTINGS } from '../domain/connection-machine.ts';
import { DEFAULT_ROOM_RULES } from '../domain/room-policy.ts';
import { SnowflakeGenerator } from '../domain/snowflake.ts';
import { ClientDirectory } from '../application/client-directory.ts';
import {
  createCluster,
  createVerifier,
  embeddedHubs,
  memoryPersistence,
  openPersistence,
  packageVersion,
  type EmbeddedHubs,
  type Persistence,
} from './adapters.ts';
import type { Config } from './config.ts';
import { buildContainer, Tokens } from './container.ts';
import { createLogger } from './logger.ts';

/** Replacements for tests: several instances in one process share a hub. */
export interface StartOverrides {
  logger?: Logger;
  /** In-process stand-ins for Redis; instances given the same hubs form one cluster. */
  hubs?: EmbeddedHubs;
  verifier?: TokenVerifier;
  /** `memory`: in-process twins instead of a database (edge tests that need none). */
  persistence?: 'memory' | 'database';
  membership?: MembershipDirectory;
  permissions?: PermissionDirectory;
  store?: NotificationStore;
  /** Lifecycle timings and rate limits, for tests that must not wait 5 s. */
  session?: Partial<SessionSettings['machine']>;
  onMessage?: MessageHook;
}

export interface Running {
  readonly instanceId: string;
  readonly port: number;
  readonly server: Server;
  readonly delivery: Delivery;
  readonly connections: LocalConnections;
  readonly directory: ClientDirectory;
  readonly pipeline: NotificationPipeline;
  readonly store: NotificationStore;
  readonly devIssuer?: DevIssuer;
  /** Absent when APP_ENV_METRICS_ENABLED is false. */
  readonly metrics?: PrometheusMetrics;
  stop(): Promise<void>;
}


/**
 * Start-up, top to bottom: logger; adapters (embedded or real); database
 * migrations; container; bus subscription; HTTP app and WebSocket gateway;
 * listen; then the Kafka consumer. The bus is subscribed before the port
 * opens, so an accepted client cannot miss what the cluster sends after it
 * connected; Kafka starts last, once pushes have somewhere to go.
 */
export async function start(config: Config, overrides: StartOverrides = {}): Promise<Running> {
  const instanceId = randomUUID();
  const logger = requestScopedLogger(overrides.logger ?? createLogger(config.logLevel, instanceId));
  const clock = new SystemClock();
  const prometheus = config.metricsEnabled ? new PrometheusMetrics() : undefined;
  const metrics: Metrics = prometheus ?? noopMetrics;
  const { bus, presence, control } = createCluster(config, instanceId, logger, overrides.hubs ?? embeddedHubs());
  // What the application publishes and receives goes through the counted bus; health and close stay with `bus`.
  const meteredBus = prometheus === undefined ? bus : new MeteredMessageBus(bus, prometheus);
  const { verifier, devIssuer } = overrides.verifier === undefined ? await createVerifier(config) : { verifier: overrides.verifier };
  const persistence: Persistence =
    overrides.persistence === 'memory' ? memoryPersistence() : await openPersistence(config, logger);
  const store = overrides.store ?? persistence.store;
  const membership = overrides.membership ?? persistence.membership;
  const permissions = overrides.permissions ?? persistence.permissions;

  const container = buildContainer({ config, instanceId, logger, clock, bus: meteredBus, verifier, membership, metrics });
  const connections = container.get<LocalConnections>(Tokens.LocalConnections);
  const delivery = container.get<Delivery>(Tokens.Delivery);
  const pipeline = new NotificationPipeline(store, membership, delivery, new SnowflakeGenerator(config.nodeId), clock, logger, metrics);
  const access = new Access(verifier, permissions, config.basicAuthUsers, clock);
  const directory = new ClientDirectory(presence, control, connections, instanceId, clock, logger);
  connections.observe(directory);

  await meteredBus.subscribe((message) => delivery.receive(message));
  await directory.start(Math.floor(config.ws.presenceTtlMs / 3));

  const consumer =
    config.kafka === undefined
      ? undefined
      : new KafkaActivityConsumer({ ...config.kafka, handler: pipeline, logger });
  const lagProbe =
    config.kafka === undefined || prometheus === undefined
      ? undefined
      : new KafkaLagProbe({ ...config.kafka, dlqTopic: `${config.kafka.topic}.dlq`, logger });

  const readiness = (): DependencyHealth[] => [
    ...[bus, presence, control].flatMap((adapter) => (isHealthReporter(adapter) ? [adapter.health()] : [])),
    ...persistence.health(),
    ...(consumer === undefined ? [] : [consumer.health()]),
  ];
  const app = createHttpApp({
    basePath: config.basePath,
    instanceId,
    logger,
    readiness,
    connections: () => connections.size,
    instances: () => directory.instanceCount(),
    exposition: prometheus,
    plugins: [
      clientRoutes({ access, delivery, directory }),
      notificationRoutes({ access, store, clock }),
      apiDocs({ basePath: config.basePath, version: packageVersion(), wsPath: config.ws.path }),
      playgroundRoutes({ basePath: config.basePath, wsPath: config.ws.path, ecdhInfo: config.ws.ecdhInfo, devRoutes: devIssuer !== undefined, logger }),
    ],
    dev:
      devIssuer === undefined
        ? undefined
        : {
            jwks: () => devIssuer.jwks(),
            sign: (input) => devIssuer.sign(input),
            submitActivity: (text) => pipeline.submit(text),
          },
  });
  const handlers = requestHandlers(app.fetch, {
    unscopedPaths: unscopedPaths(app, config.basePath),
    answered: prometheus === undefined ? undefined : countRequests(prometheus, config.basePath),
  });
  const server = createServer(
    bodyLimitListener({
      streamed: handlers.node,
      fetch: handlers.fetch,
      refused: (method, status) => metrics.httpRequest(UNMATCHED_ROUTE, method, status, 0),
    }),
  );

  const settings: SessionSettings = {
    machine: { ...DEFAULT_MACHINE_SETTINGS, requireEncryption: config.ws.requireEncryption, ...overrides.session },
    ecdhInfo: config.ws.ecdhInfo,
    roomRules: { ...DEFAULT_ROOM_RULES, allowPatterns: config.ws.roomAllowPatterns },
    maxRoomsPerConnection: 100,
    maxRoomsPerFrame: 50,
    maxBufferedBytes: config.ws.maxBufferedBytes,
  };
  const sessionDeps = { connections, verifier, membership, clock, logger, settings, onMessage: overrides.onMessage, metrics };
  const gateway = new WsGateway(
    {
      path: config.ws.path,
      maxPayloadBytes: config.ws.maxFrameBytes,
      allowedOrigins: config.ws.allowedOrigins,
      maxConnections: config.ws.maxConnections,
      pingIntervalMs: 30_000,
    },
    (clientId, transport) => new ConnectionSession(clientId, transport, sessionDeps),
    logger,
    metrics,
  );
  gateway.attach(server);
  if (prometheus !== undefined) {
    prometheus.watchConnections(() => countConnections(connections.all(), gateway.openSockets));
    prometheus.watchReadiness(readiness);
    if (consumer !== undefined && config.kafka !== undefined) prometheus.watchKafka(config.kafka.topic, () => consumer.stats());
    if (lagProbe !== undefined) prometheus.watchKafkaLag(() => lagProbe.snapshot());
  }

  await new Promise<void>((resolveListen, rejectListen) => {
    server.once('error', rejectListen);
    server.listen(config.port, config.host, () => {
      server.off('error', rejectListen);
      resolveListen();
    });
  });
  const port = (server.address() as AddressInfo).port;
  logger.info({ port, host: config.host, path: config.ws.path, basePath: config.basePath, devIssuer: devIssuer !== undefined }, 'listening');
  await consumer?.start();
  lagProbe?.start();

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      logger.info({}, 'shutting down');
      // Stop taking work first: no new events, no new clients.
      await consumer?.close();
      await lagProbe?.close();
      await gateway.close();
      directory.stop();
      server.closeAllConnections();
      await new Promise<void>((resolveClose) => server.close(() => resolveClose()));
      for (const adapter of [presence, control, bus]) if (isCloseable(adapter)) await adapter.close();
      await persistence.close();
      logger.info({}, 'stopped');
    })();
    return stopping;
  };

  return { instanceId, port, server, delivery, connections, directory, pipeline, store, devIssuer, metrics: prometheus, stop };
}

