import type { Closeable, DependencyHealth, HealthReporter } from '../../application/ports/lifecycle.port.ts';
import type { Logger } from '../../application/ports/logger.port.ts';
import { silentLogger } from '../../application/ports/logger.port.ts';
import type { BusHandler, BusMessage, MessageBus } from '../../application/ports/message-bus.port.ts';
import { busChannel, serializeBusMessage } from '../../domain/bus-payload.ts';
import { SignalError } from '../../domain/errors.ts';
import { BusPayloadReceiver } from '../payload-receivers.ts';
import type { RedisConnectionOptions } from './redis-connection.ts';
import { errorMessage } from './redis-connection.ts';
import { PubSubConnections } from './redis-pub-sub.ts';

/** Publishing was refused because Redis is not reachable right now; the message is not queued. */
export class BusUnavailableError extends SignalError {
  constructor(detail: string, options?: { cause?: unknown }) {
    super('ERR_BUS_UNAVAILABLE', `message bus unavailable: ${detail}`, options);
  }
}

export interface RedisMessageBusOptions extends RedisConnectionOptions {
  /** Isolates deployments (and test suites) sharing one Redis; prepended to every channel. */
  channelPrefix?: string;
  serverId: string;
  logger?: Logger;
}

/**
 * MessageBus over Redis pub/sub (protocol §7), wire-compatible with the
 * publishers' emitter.
 *
 * Two connections, because a subscribed connection cannot PUBLISH. Neither
 * has an offline queue and neither resends after a reconnect: a publish
 * while Redis is down fails at once instead of piling up in memory or being
 * delivered twice later, which is what at-most-once promises. The
 * subscriber's channels are (re)issued on every `ready` by PubSubConnections,
 * not by ioredis, so it knows when Redis has acknowledged them and can report
 * that in health().
 */
export class RedisMessageBus implements MessageBus, Closeable, HealthReporter {
  readonly serverId: string;
  readonly #prefix: string;
  readonly #logger: Logger;
  readonly #redis: PubSubConnections;
  readonly #receiver: BusPayloadReceiver;

  #handler: BusHandler | undefined;
  #resubscriptions = 0;
  #firstSubscription: Deferred | undefined;
  #closing: Promise<void> | undefined;

  constructor(options: RedisMessageBusOptions) {
    this.serverId = options.serverId;
    this.#prefix = options.channelPrefix ?? '';
    this.#logger = options.logger ?? silentLogger;
    this.#receiver = new BusPayloadReceiver(this.serverId, this.#logger);
    this.#redis = new PubSubConnections(options, {
      name: (role) => `signal-${role}-${this.serverId}`,
      logger: this.#logger,
      fields: (role) => ({ instanceId: this.serverId, connection: role }),
      closing: () => this.#closing !== undefined,
    });
    this.#redis.subscriber.on('message', (channel: string, text: string) => this.#onRaw(channel, text));
    this.#redis.subscriber.on('pmessage', (_pattern: string, channel: string, text: string) => this.#onRaw(channel, text));
  }

  async publish(message: BusMessage): Promise<void> {
    if (this.#closing !== undefined) throw new SignalError('ERR_BUS_CLOSED', 'message bus is closed');
    // Only the very first connection is worth waiting for (a publish right
    // after start-up); once it was up, not ready means down: fail fast.
    if (this.#redis.publisher.status !== 'ready') await this.#redis.firstPublisherReady(BusUnavailableError);
    // The bus stamps its own id so a forwarded message can never loop back
    // to every instance under a foreign id.
    const stamped: BusMessage = { ...message, serverId: this.serverId };
    // Serialized outside the try: data JSON cannot hold is the caller's bug, not an outage.
    const text = serializeBusMessage(stamped);
    try {
      await this.#redis.publisher.publish(this.#prefix + busChannel(stamped), text);
    } catch (error) {
      throw new BusUnavailableError(`publish failed: ${errorMessage(error)}`, { cause: error });
    }
  }

  async subscribe(handler: BusHandler): Promise<void> {
    if (this.#closing !== undefined) throw new SignalError('ERR_BUS_CLOSED', 'message bus is closed');
    if (this.#handler !== undefined) throw new SignalError('ERR_BUS_ALREADY_SUBSCRIBED', 'message bus already has a handler');
    this.#handler = handler;
    const first = new Deferred();
    this.#firstSubscription = first;
    const pattern = escapeGlob(this.#prefix);
    const fields = { instanceId: this.serverId, connection: 'subscriber' };
    this.#redis.subscribe(
      () =>
        Promise.all([
          this.#redis.subscriber.subscribe(`${this.#prefix}ws:broadcast`),
          this.#redis.subscriber.psubscribe(`${pattern}ws:room:*`, `${pattern}ws:client:*`, `${pattern}ws:user:*`),
        ]),
      () => {
        if (this.#firstSubscription !== undefined) {
          this.#logger.info(fields, 'redis bus subscribed');
          this.#firstSubscription.resolve();
          this.#firstSubscription = undefined;
        } else {
          this.#resubscriptions += 1;
          this.#logger.info({ ...fields, resubscriptions: this.#resubscriptions }, 'redis bus resubscribed');
        }
      },
      (error) => this.#logger.warn({ instanceId: this.serverId, err: errorMessage(error) }, 'redis bus subscription failed'),
    );
    return first.promise;
  }

  health(): DependencyHealth {
    if (this.#closing !== undefined) return { name: 'redis', ready: false, detail: 'closed' };
    return this.#redis.health('redis');
  }

  close(): Promise<void> {
    this.#closing ??= this.#shutdown();
    return this.#closing;
  }

  async #shutdown(): Promise<void> {
    this.#firstSubscription?.reject(new SignalError('ERR_BUS_CLOSED', 'message bus closed before subscribing'));
    await this.#redis.quit();
  }

  #onRaw(channel: string, text: string): void {
    const handler = this.#handler;
    if (handler === undefined || this.#closing !== undefined) return;
    // Routing uses the payload only; older instances put messages for a
    // client on a room channel, and the payload is what they meant. A
    // throwing handler must not reach ioredis' parser, which would tear the
    // connection down: the receiver logs it instead.
    this.#receiver.receive(channel, text, handler);
  }
}

/** Redis glob metacharacters in the prefix are matched literally. */
export function escapeGlob(text: string): string {
  return text.replace(/[\\*?[\]]/g, '\\$&');
}

class Deferred {
  readonly promise: Promise<void>;
  resolve!: () => void;
  reject!: (error: unknown) => void;

  constructor() {
    this.promise = new Promise<void>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
  }
}
