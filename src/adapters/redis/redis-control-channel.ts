import type { ControlChannel, ControlCommand, ControlHandler } from '../../application/ports/control-channel.port.ts';
import { controlChannelName, serializeControlCommand } from '../../application/ports/control-channel.port.ts';
import type { Closeable, DependencyHealth, HealthReporter } from '../../application/ports/lifecycle.port.ts';
import type { Logger } from '../../application/ports/logger.port.ts';
import { silentLogger } from '../../application/ports/logger.port.ts';
import { SignalError } from '../../domain/errors.ts';
import { ControlPayloadReceiver } from '../payload-receivers.ts';
import type { RedisConnectionOptions } from './redis-connection.ts';
import { errorMessage } from './redis-connection.ts';
import { PubSubConnections } from './redis-pub-sub.ts';

/** Sending was refused because Redis is not reachable right now; the command is not queued. */
export class ControlUnavailableError extends SignalError {
  constructor(detail: string, options?: { cause?: unknown }) {
    super('ERR_CONTROL_UNAVAILABLE', `control channel unavailable: ${detail}`, options);
  }
}

export interface RedisControlChannelOptions extends RedisConnectionOptions {
  /** The bus's channel prefix, so one prefix isolates a deployment's traffic. */
  channelPrefix?: string;
  /** Only names the connections in CLIENT LIST and the log lines; `subscribe` says which commands to receive. */
  instanceId?: string;
  logger?: Logger;
}

/**
 * ControlChannel over Redis pub/sub on `<prefix>ws:control:<instanceId>`,
 * an exact channel (SUBSCRIBE, not a pattern), so glob characters in an
 * instance id are literal and the bus's patterns never match it.
 *
 * Built like RedisMessageBus and for the same reasons: a publisher and a
 * lazily connected subscriber, no offline queue and no resending, so a
 * command sent while Redis is down fails at once and is never delivered
 * twice; the subscription is (re)issued on every `ready` (PubSubConnections
 * holds both connections for the two), so health() knows whether commands
 * can currently arrive.
 */
export class RedisControlChannel implements ControlChannel, Closeable, HealthReporter {
  readonly #prefix: string;
  readonly #logger: Logger;
  readonly #redis: PubSubConnections;
  readonly #fields: Record<string, unknown>;
  readonly #receiver: ControlPayloadReceiver;

  #subscription: { instanceId: string; channel: string; handler: ControlHandler } | undefined;
  #firstAck: { resolve: () => void; reject: (error: unknown) => void } | undefined;
  #closing: Promise<void> | undefined;

  constructor(options: RedisControlChannelOptions = {}) {
    this.#prefix = options.channelPrefix ?? '';
    this.#logger = options.logger ?? silentLogger;
    this.#receiver = new ControlPayloadReceiver(this.#logger);
    this.#fields = { instanceId: options.instanceId };
    this.#redis = new PubSubConnections(options, {
      name: (role) => `signal-control-${role}-${options.instanceId ?? 'any'}`,
      logger: this.#logger,
      // Read at each event: the instance id may be learnt only at subscribe().
      fields: (role) => ({ ...this.#fields, connection: `control-${role}` }),
      closing: () => this.#closing !== undefined,
    });
    this.#redis.subscriber.on('message', (channel: string, text: string) => this.#onRaw(channel, text));
  }

  async send(instanceId: string, command: ControlCommand): Promise<void> {
    if (this.#closing !== undefined) throw new SignalError('ERR_CONTROL_CLOSED', 'control channel is closed');
    // Checked before any I/O: a malformed command is the caller's bug, not an outage.
    const channel = this.#prefix + controlChannelName(instanceId);
    const text = serializeControlCommand(command);
    if (this.#redis.publisher.status !== 'ready') await this.#redis.firstPublisherReady(ControlUnavailableError);
    try {
      await this.#redis.publisher.publish(channel, text);
    } catch (error) {
      throw new ControlUnavailableError(`send failed: ${errorMessage(error)}`, { cause: error });
    }
  }

  async subscribe(instanceId: string, handler: ControlHandler): Promise<void> {
    if (this.#closing !== undefined) throw new SignalError('ERR_CONTROL_CLOSED', 'control channel is closed');
    if (this.#subscription !== undefined) throw new SignalError('ERR_CONTROL_ALREADY_SUBSCRIBED', 'control channel already has a handler');
    const channel = this.#prefix + controlChannelName(instanceId);
    this.#subscription = { instanceId, channel, handler };
    this.#fields.instanceId = instanceId;
    const acknowledged = new Promise<void>((resolve, reject) => {
      this.#firstAck = { resolve, reject };
    });
    this.#redis.subscribe(
      () => this.#redis.subscriber.subscribe(channel),
      () => {
        const first = this.#firstAck;
        this.#firstAck = undefined;
        this.#logger.info({ ...this.#fields, connection: 'control-subscriber' }, first !== undefined ? 'control channel subscribed' : 'control channel resubscribed');
        first?.resolve();
      },
      (error) => this.#logger.warn({ ...this.#fields, err: errorMessage(error) }, 'control channel subscription failed'),
    );
    return acknowledged;
  }

  health(): DependencyHealth {
    if (this.#closing !== undefined) return { name: 'control', ready: false, detail: 'closed' };
    return this.#redis.health('control');
  }

  close(): Promise<void> {
    this.#closing ??= this.#shutdown();
    return this.#closing;
  }

  async #shutdown(): Promise<void> {
    this.#firstAck?.reject(new SignalError('ERR_CONTROL_CLOSED', 'control channel closed before subscribing'));
    this.#firstAck = undefined;
    await this.#redis.quit();
  }

  #onRaw(channel: string, text: string): void {
    const subscription = this.#subscription;
    if (subscription === undefined || channel !== subscription.channel || this.#closing !== undefined) return;
    // A throwing handler must not reach ioredis' parser, which would tear the connection down: the receiver logs it instead.
    this.#receiver.receive(channel, text, subscription.handler, this.#fields);
  }
}
