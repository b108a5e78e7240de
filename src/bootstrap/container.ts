import { Container } from 'inversify';
import { Delivery } from '../application/delivery.ts';
import { LocalConnections } from '../application/local-connections.ts';
import type { Clock } from '../application/ports/clock.port.ts';
import type { Logger } from '../application/ports/logger.port.ts';
import type { MembershipDirectory } from '../application/ports/membership-directory.port.ts';
import type { MessageBus } from '../application/ports/message-bus.port.ts';
import type { Metrics } from '../application/ports/metrics.port.ts';
import type { TokenVerifier } from '../application/ports/token-verifier.port.ts';
import { socketWrites } from '../adapters/ws/ws-gateway.ts';
import type { Config } from './config.ts';

/** Service identifiers: the only place the object graph is named. */
export const Tokens = {
  Config: Symbol('Config'),
  InstanceId: Symbol('InstanceId'),
  Logger: Symbol('Logger'),
  Clock: Symbol('Clock'),
  MessageBus: Symbol('MessageBus'),
  TokenVerifier: Symbol('TokenVerifier'),
  MembershipDirectory: Symbol('MembershipDirectory'),
  Metrics: Symbol('Metrics'),
  LocalConnections: Symbol('LocalConnections'),
  Delivery: Symbol('Delivery'),
} as const;

/** The adapters chosen by start-up (embedded twins or real services). */
export interface Adapters {
  config: Config;
  instanceId: string;
  logger: Logger;
  clock: Clock;
  bus: MessageBus;
  verifier: TokenVerifier;
  membership: MembershipDirectory;
  metrics: Metrics;
}

/**
 * Binds the chosen adapters and the application services. Domain and
 * application classes carry no decorators: they are built here by hand.
 */
export function buildContainer(adapters: Adapters): Container {
  const container = new Container({ defaultScope: 'Singleton' });
  container.bind<Config>(Tokens.Config).toConstantValue(adapters.config);
  container.bind<string>(Tokens.InstanceId).toConstantValue(adapters.instanceId);
  container.bind<Logger>(Tokens.Logger).toConstantValue(adapters.logger);
  container.bind<Clock>(Tokens.Clock).toConstantValue(adapters.clock);
  container.bind<MessageBus>(Tokens.MessageBus).toConstantValue(adapters.bus);
  container.bind<TokenVerifier>(Tokens.TokenVerifier).toConstantValue(adapters.verifier);
  container.bind<MembershipDirectory>(Tokens.MembershipDirectory).toConstantValue(adapters.membership);
  container.bind<Metrics>(Tokens.Metrics).toConstantValue(adapters.metrics);
  container.bind<LocalConnections>(Tokens.LocalConnections).toConstantValue(new LocalConnections());
  container
    .bind<Delivery>(Tokens.Delivery)
    .toDynamicValue(
      (context) =>
        new Delivery(context.get(Tokens.LocalConnections), context.get(Tokens.MessageBus), context.get(Tokens.Logger), context.get(Tokens.Metrics), {
          writes: socketWrites,
        }),
    );
  return container;
}
