import { Redis } from 'ioredis';
import type { RedisOptions } from 'ioredis';
import type { ControlChannel, ControlCommand, ControlHandler } from '../../application/ports/control-channel.port.ts';
import { controlChannelName, parseControlCommand, serializeControlCommand } from '../../application/ports/control-channel.port.ts';
import type { Closeable, DependencyHealth, HealthReporter } from '../../application/ports/lifecycle.port.ts';
import type { Logger } from '../../application/ports/logger.port.ts';
import { silentLogger } from '../../application/ports/logger.port.ts';
import { SignalError } from '../../domain/errors.ts';

/** Sending was refused because Redis is not reachable right now; the command is not queued. */
export class ControlUnavailableError extends SignalError {
  constructor(detail: string, options?: { cause?: unknown }) {
    super('ERR_CONTROL_UNAVAILABLE', `control channel unavailable: ${detail}`, options);
  }
}

export interface RedisControlChannelOptions {
  /** `redis://[:password@]host:port[/db]`; `redisOptions` may add to or override it. */
  url?: string;
  redisOptions?: RedisOptions;
  /** The bus's channel prefix, so one prefix isolates a deployment's traffic. */
  channelPrefix?: string;
  /** Only names the connections in CLIENT LIST and the log lines; `subscribe` says which commands to receive. */
  instanceId?: string;
  logger?: Logger;
}

type Role = 'publisher' | 'subscriber';

const INVALID_PAYLOAD_LOG_INTERVAL_MS = 10_000;
const PAYLOAD_LOG_PREFIX_CHARS = 64;
const DEFAULT_COMMAND_TIMEOUT_MS = 2_000;
const STARTING_STATES: ReadonlySet<string> = new Set(['wait', 'connecting', 'connect']);

/**
 * ControlChannel over Redis pub/sub on `<prefix>ws:control:<instanceId>`,
 * an exact channel (SUBSCRIBE, not a pattern), so glob characters in an
 * instance id are literal and the bus's patterns never match it.
 *
 * Built like RedisMessageBus and for the same reasons: a publisher and a
 * lazily connected subscriber, no offline queue and no resending, so a
 * command sent while Redis is down fails at once and is never delivered
 * twice; the subscription is (re)issued by this class on every `ready`, so
 * health() knows whether commands can currently arrive.
 */
export class RedisControlChannel implements ControlChannel, Closeable, HealthReporter {
  readonly #prefix: string;
  readonly #logger: Logger;
  readonly #publisher: Redis;
  readonly #subscriber: Redis;
  readonly #commandTimeoutMs: number;
  readonly #fields: Record<string, unknown>;
  readonly #everReady: Record<Role, boolean> = { publisher: false, subscriber: false };
  readonly #connected: Record<Role, boolean> = { publisher: false, subscriber: false };
  readonly #errorLogged: Record<Role, boolean> = { publisher: false, subscriber: false };

  #subscription: { instanceId: string; channel: string; handler: ControlHandler } | undefined;
  /** Bumped on every subscriber disconnect so an acknowledgement from an older connection is ignored. */
  #subscriberEpoch = 0;
  #subscribingEpoch = -1;
  #subscribed = false;
  #firstAck: { resolve: () => void; reject: (error: unknown) => void } | undefined;
  #closing: Promise<void> | undefined;
  #droppedInvalid = 0;
  #lastInvalidLogAt = Number.NEGATIVE_INFINITY;

  constructor(options: RedisControlChannelOptions = {}) {
    this.#prefix = options.channelPrefix ?? '';
    this.#logger = options.logger ?? silentLogger;
    this.#commandTimeoutMs = options.redisOptions?.commandTimeout ?? DEFAULT_COMMAND_TIMEOUT_MS;
    this.#fields = { instanceId: options.instanceId };
    const name = (options.instanceId ?? 'any').replace(/\s/g, '_');
    const make = (role: Role, lazyConnect: boolean): Redis => {
      const redisOptions: RedisOptions = {
        connectionName: `signal-control-${role}-${name}`,
        ...options.redisOptions,
        commandTimeout: this.#commandTimeoutMs,
        enableOfflineQueue: false,
        maxRetriesPerRequest: 0,
        autoResendUnfulfilledCommands: false,
        autoResubscribe: false,
        lazyConnect,
      };
      return options.url === undefined ? new Redis(redisOptions) : new Redis(options.url, redisOptions);
    };
    this.#publisher = make('publisher', false);
    // Connects only once someone subscribes: a send-only user needs one connection.
    this.#subscriber = make('subscriber', true);
    this.#watch('publisher', this.#publisher);
    this.#watch('subscriber', this.#subscriber);
    this.#subscriber.on('ready', () => this.#issueSubscription());
    this.#subscriber.on('message', (channel: string, text: string) => this.#onRaw(channel, text));
  }

  async send(instanceId: string, command: ControlCommand): Promise<void> {
    if (this.#closing !== undefined) throw new SignalError('ERR_CONTROL_CLOSED', 'control channel is closed');
    // Checked before any I/O: a malformed command is the caller's bug, not an outage.
    const channel = this.#prefix + controlChannelName(instanceId);
    const text = serializeControlCommand(command);
    const status = this.#publisher.status;
    if (status !== 'ready') {
      if (this.#everReady.publisher || !STARTING_STATES.has(status)) throw new ControlUnavailableError(`redis publisher ${status}`);
      await this.#awaitFirstPublisherReady();
    }
    try {
      await this.#publisher.publish(channel, text);
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
    if (this.#subscriber.status === 'wait') {
      // Failures of this attempt are reported through 'error' and retried by ioredis.
      this.#subscriber.connect().catch(() => {});
    } else if (this.#subscriber.status === 'ready') {
      this.#issueSubscription();
    }
    return acknowledged;
  }

  health(): DependencyHealth {
    if (this.#closing !== undefined) return { name: 'control', ready: false, detail: 'closed' };
    if (this.#publisher.status !== 'ready') return { name: 'control', ready: false, detail: `publisher ${this.#publisher.status}` };
    if (this.#subscription !== undefined && !this.#subscribed) {
      const status = this.#subscriber.status;
      return { name: 'control', ready: false, detail: status === 'ready' ? 'subscribing' : `subscriber ${status}` };
    }
    return { name: 'control', ready: true };
  }

  close(): Promise<void> {
    this.#closing ??= this.#shutdown();
    return this.#closing;
  }

  async #shutdown(): Promise<void> {
    this.#subscribed = false;
    this.#firstAck?.reject(new SignalError('ERR_CONTROL_CLOSED', 'control channel closed before subscribing'));
    this.#firstAck = undefined;
    await Promise.all([quit(this.#publisher), quit(this.#subscriber)]);
  }

  #watch(role: Role, client: Redis): void {
    const fields = (): Record<string, unknown> => ({ ...this.#fields, connection: `control-${role}` });
    client.on('ready', () => {
      this.#connected[role] = true;
      this.#errorLogged[role] = false;
      if (this.#closing === undefined && role === 'publisher') {
        this.#logger.info(fields(), this.#everReady.publisher ? 'redis reconnected' : 'redis connected');
      }
      this.#everReady[role] = true;
    });
    client.on('close', () => {
      if (role === 'subscriber') {
        this.#subscriberEpoch += 1;
        this.#subscribed = false;
      }
      if (!this.#connected[role]) return;
      this.#connected[role] = false;
      if (this.#closing === undefined) this.#logger.warn(fields(), 'redis disconnected');
    });
    client.on('error', (error: unknown) => {
      if (this.#closing !== undefined || this.#errorLogged[role]) return;
      this.#errorLogged[role] = true;
      this.#logger.warn({ ...fields(), err: errorMessage(error) }, 'redis connection error');
    });
  }

  #issueSubscription(): void {
    const subscription = this.#subscription;
    if (subscription === undefined || this.#closing !== undefined) return;
    const epoch = this.#subscriberEpoch;
    if (this.#subscribingEpoch === epoch) return;
    this.#subscribingEpoch = epoch;
    this.#subscriber.subscribe(subscription.channel).then(
      () => {
        if (epoch !== this.#subscriberEpoch || this.#closing !== undefined) return;
        this.#subscribed = true;
        const first = this.#firstAck;
        this.#firstAck = undefined;
        this.#logger.info({ ...this.#fields, connection: 'control-subscriber' }, first !== undefined ? 'control channel subscribed' : 'control channel resubscribed');
        first?.resolve();
      },
      (error: unknown) => {
        if (epoch !== this.#subscriberEpoch || this.#closing !== undefined) return;
        // Connected but not subscribed (a command timeout): reconnect, whose
        // 'ready' tries again, rather than silently missing commands.
        this.#logger.warn({ ...this.#fields, err: errorMessage(error) }, 'control channel subscription failed');
        this.#subscriber.disconnect(true);
      },
    );
  }

  #onRaw(channel: string, text: string): void {
    const subscription = this.#subscription;
    if (subscription === undefined || channel !== subscription.channel || this.#closing !== undefined) return;
    const command = parseControlCommand(text);
    if (command === null) {
      this.#warnInvalid(channel, text);
      return;
    }
    try {
      subscription.handler(command);
    } catch (error) {
      // A throwing handler must not reach ioredis' parser, which would tear the connection down.
      this.#logger.error({ ...this.#fields, clientId: command.clientId, err: errorMessage(error) }, 'control handler threw');
    }
  }

  #warnInvalid(channel: string, text: string): void {
    this.#droppedInvalid += 1;
    const now = Date.now();
    if (now - this.#lastInvalidLogAt < INVALID_PAYLOAD_LOG_INTERVAL_MS) return;
    this.#lastInvalidLogAt = now;
    this.#logger.warn(
      { ...this.#fields, channel, dropped: this.#droppedInvalid, payloadPrefix: text.slice(0, PAYLOAD_LOG_PREFIX_CHARS) },
      'dropped invalid control payload',
    );
    this.#droppedInvalid = 0;
  }

  /** Bounded wait for the first connection; rejects on the first failed attempt. */
  #awaitFirstPublisherReady(): Promise<void> {
    const publisher = this.#publisher;
    return new Promise<void>((resolve, reject) => {
      const settle = (error?: unknown): void => {
        clearTimeout(timer);
        publisher.off('ready', onReady);
        publisher.off('error', onFailure);
        publisher.off('close', onFailure);
        if (error === undefined) resolve();
        else reject(new ControlUnavailableError(`redis not connected: ${errorMessage(error)}`, { cause: error }));
      };
      const onReady = (): void => settle();
      const onFailure = (error?: unknown): void => settle(error ?? new Error('connection closed'));
      const timer = setTimeout(() => settle(new Error('connect timeout')), this.#commandTimeoutMs);
      publisher.on('ready', onReady);
      publisher.on('error', onFailure);
      publisher.on('close', onFailure);
    });
  }
}

async function quit(client: Redis): Promise<void> {
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

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
