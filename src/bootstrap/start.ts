import { randomUUID } from 'node:crypto';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import { toNodeHandler } from 'srvx/node';
import { ConnectionSession, type MessageHook, type SessionSettings } from '../application/connection-session.ts';
import type { Delivery } from '../application/delivery.ts';
import type { LocalConnections } from '../application/local-connections.ts';
import { isCloseable, isHealthReporter, type DependencyHealth } from '../application/ports/lifecycle.port.ts';
import type { Logger } from '../application/ports/logger.port.ts';
import type { MembershipDirectory } from '../application/ports/membership-directory.port.ts';
import type { MessageBus } from '../application/ports/message-bus.port.ts';
import type { TokenVerifier } from '../application/ports/token-verifier.port.ts';
import { Access } from '../application/access.ts';
import type { PermissionDirectory } from '../application/ports/permission-directory.port.ts';
import { clientSendRoutes } from '../adapters/http/client-routes.ts';
import { createHttpApp } from '../adapters/http/http-app.ts';
import { InMemoryPermissionDirectory } from '../adapters/memory/in-memory-permission-directory.ts';
import { DEV_ISSUER, DEV_ISSUER_ALGORITHM, DevIssuer } from '../adapters/jwks/dev-issuer.ts';
import { JwksTokenVerifier } from '../adapters/jwks/jwks-token-verifier.ts';
import { InMemoryBusHub, InMemoryMessageBus } from '../adapters/memory/in-memory-message-bus.ts';
import { InMemoryMembershipDirectory } from '../adapters/memory/in-memory-membership-directory.ts';
import { RedisMessageBus } from '../adapters/redis/redis-message-bus.ts';
import { SystemClock } from '../adapters/system/system-clock.ts';
import { WsGateway } from '../adapters/ws/ws-gateway.ts';
import { DEFAULT_MACHINE_SETTINGS } from '../domain/connection-machine.ts';
import { DEFAULT_ROOM_RULES } from '../domain/room-policy.ts';
import type { Config } from './config.ts';
import { buildContainer, Tokens } from './container.ts';
import { createLogger } from './logger.ts';

const MAX_BODY_BYTES = 1024 * 1024;

function refuseTooLarge(requestId: string | string[] | undefined, response: ServerResponse): void {
  const body = JSON.stringify({ code: 'PAYLOAD_TOO_LARGE', message: `request body over ${MAX_BODY_BYTES} bytes` });
  response.writeHead(413, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    'x-request-id': typeof requestId === 'string' && /^[A-Za-z0-9._:-]{1,128}$/.test(requestId) ? requestId : randomUUID(),
    connection: 'close',
  });
  response.end(body);
}

/** Replacements for tests: several instances in one process share a hub. */
export interface StartOverrides {
  logger?: Logger;
  hub?: InMemoryBusHub;
  verifier?: TokenVerifier;
  membership?: MembershipDirectory;
  permissions?: PermissionDirectory;
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
  readonly devIssuer?: DevIssuer;
  stop(): Promise<void>;
}

/**
 * Start-up, top to bottom: logger, adapters (embedded or real), container,
 * bus subscription, HTTP app, WebSocket gateway, listen. The bus is
 * subscribed before the port opens, so no accepted client can miss a message
 * that the cluster sends after it connected.
 */
export async function start(config: Config, overrides: StartOverrides = {}): Promise<Running> {
  const instanceId = randomUUID();
  const logger = overrides.logger ?? createLogger(config.logLevel, instanceId);
  const clock = new SystemClock();

  const bus: MessageBus =
    config.redis !== undefined
      ? new RedisMessageBus({
          url: config.redis.url,
          redisOptions: { host: config.redis.host, port: config.redis.port, password: config.redis.password, db: config.redis.db },
          channelPrefix: config.channelPrefix,
          serverId: instanceId,
          logger,
        })
      : new InMemoryMessageBus(overrides.hub ?? new InMemoryBusHub(), { serverId: instanceId, logger });

  let devIssuer: DevIssuer | undefined;
  let verifier = overrides.verifier;
  if (verifier === undefined) {
    const common = {
      algorithms: config.jwt.algorithms,
      issuer: config.jwt.issuer,
      audience: config.jwt.audience,
    };
    if (config.jwt.jwksUrl !== undefined) {
      verifier = new JwksTokenVerifier({ ...common, jwksUrl: config.jwt.jwksUrl });
    } else {
      // The dev issuer signs with one ES256 key under its own issuer name.
      devIssuer = await DevIssuer.loadOrCreate(resolve(config.dataDir));
      verifier = new JwksTokenVerifier({ localJwks: devIssuer.jwks(), algorithms: [DEV_ISSUER_ALGORITHM], issuer: DEV_ISSUER });
    }
  }

  const container = buildContainer({
    config,
    instanceId,
    logger,
    clock,
    bus,
    verifier,
    membership: overrides.membership ?? new InMemoryMembershipDirectory(),
  });
  const connections = container.get<LocalConnections>(Tokens.LocalConnections);
  const delivery = container.get<Delivery>(Tokens.Delivery);

  await bus.subscribe((message) => delivery.receive(message));

  const settings: SessionSettings = {
    machine: { ...DEFAULT_MACHINE_SETTINGS, requireEncryption: config.ws.requireEncryption, ...overrides.session },
    ecdhInfo: config.ws.ecdhInfo,
    roomRules: { ...DEFAULT_ROOM_RULES, allowPatterns: config.ws.roomAllowPatterns },
    maxRoomsPerConnection: 100,
    maxRoomsPerFrame: 50,
    maxBufferedBytes: config.ws.maxBufferedBytes,
  };
  const sessionDeps = {
    connections,
    verifier,
    membership: container.get<MembershipDirectory>(Tokens.MembershipDirectory),
    clock,
    logger,
    settings,
    onMessage: overrides.onMessage,
  };

  const access = new Access(verifier, overrides.permissions ?? new InMemoryPermissionDirectory(), config.basicAuthUsers, clock);

  const readiness = (): DependencyHealth[] => (isHealthReporter(bus) ? [bus.health()] : []);
  const app = createHttpApp({
    basePath: config.basePath,
    instanceId,
    logger,
    readiness,
    connections: () => connections.size,
    instances: async () => 1,
    plugins: [clientSendRoutes({ access, delivery })],
    dev:
      devIssuer === undefined
        ? undefined
        : { jwks: () => devIssuer.jwks(), sign: (input) => devIssuer.sign(input) },
  });
  const handler = toNodeHandler(app.fetch);
  const server = createServer((request, response) => {
    // Refused before any byte of the body is read or parsed.
    const length = Number(request.headers['content-length'] ?? 0);
    if (length > MAX_BODY_BYTES) return refuseTooLarge(request.headers['x-request-id'], response);
    // srvx types the request for HTTP/2 as well; a node:http request is what it handles here.
    void handler(request as never, response as never);
  });

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
  );
  gateway.attach(server);

  await new Promise<void>((resolveListen, rejectListen) => {
    server.once('error', rejectListen);
    server.listen(config.port, config.host, () => {
      server.off('error', rejectListen);
      resolveListen();
    });
  });
  const port = (server.address() as AddressInfo).port;
  logger.info({ port, host: config.host, path: config.ws.path, basePath: config.basePath, devIssuer: devIssuer !== undefined }, 'listening');

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      logger.info({}, 'shutting down');
      await gateway.close();
      server.closeAllConnections();
      await new Promise<void>((resolveClose) => server.close(() => resolveClose()));
      if (isCloseable(bus)) await bus.close();
      logger.info({}, 'stopped');
    })();
    return stopping;
  };

  return { instanceId, port, server, delivery, connections, devIssuer, stop };
}
