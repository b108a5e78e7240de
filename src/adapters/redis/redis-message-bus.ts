import { Redis } from 'ioredis';
import type { RedisOptions } from 'ioredis';
import type { Closeable, DependencyHealth, HealthReporter } from '../../application/ports/lifecycle.port.ts';
import type { Logger } from '../../application/ports/logger.port.ts';
import { silentLogger } from '../../application/ports/logger.port.ts';
import type { BusHandler, BusMessage, MessageBus } from '../../application/ports/message-bus.port.ts';
import { busChannel, parseBusMessage, serializeBusMessage } from '../../domain/bus-payload.ts';
import { SignalError } from '../../domain/errors.ts';

/** Publishing was refused because Redis is not reachable right now; the message is not queued. */
export class BusUnavailableError extends SignalError {
  constructor(detail: string, options?: { cause?: unknown }) {
    super('ERR_BUS_UNAVAILABLE', `message bus unavailable: ${detail}`, options);
  }
}

export interface RedisMessageBusOptions {
  /** `redis://[:password@]host:port[/db]`; `redisOptions` may add to or override it. */
  url?: string;
  redisOptions?: RedisOptions;
  /** Isolates deployments (and test suites) sharing one Redis; prepended to every channel. */
  channelPrefix?: string;
  serverId: string;
  logger?: Logger;
}

type Role = 'publisher' | 'subscriber';

const INVALID_PAYLOAD_LOG_INTERVAL_MS = 10_000;
const PAYLOAD_LOG_PREFIX_CHARS = 64;
/** How long a publish issued during start-up may wait for the very first connection. */
const DEFAULT_COMMAND_TIMEOUT_MS = 2_000;
/** States in which ioredis is still making its first attempt, not recovering from a loss. */
const STARTING_STATES: ReadonlySet<string> = new Set(['wait', 'connecting', 'connect']);

/**
 * MessageBus over Redis pub/sub (protocol §7), wire-compatible with the
 * publishers' emitter.
 *
 * Two connections, because a subscribed connection cannot PUBLISH. Neither
 * has an offline queue and neither resends after a reconnect: a publish
 * while Redis is down fails at once instead of piling up in memory or being
 * delivered twice later, which is what at-most-once promises. The
 * subscriber's channels are (re)issued by this class on every `ready`, so it
 * knows when Redis has acknowledged them and can report that in health().
 */
export class RedisMessageBus implements MessageBus, Closeable, HealthReporter {
  readonly serverId: string;
  readonly #prefix: string;
  readonly #logger: Logger;
  readonly #publisher: Redis;
  readonly #subscriber: Redis;
  readonly #commandTimeoutMs: number;
  readonly #everReady: Record<Role, boolean> = { publisher: false, subscriber: false };
  readonly #connected: Record<Role, boolean> = { publisher: false, subscriber: false };
  /** Whether an 'error' was already logged for the current outage of each connection. */
  readonly #errorLogged: Record<Role, boolean> = { publisher: false, subscriber: false };

  #handler: BusHandler | undefined;
  /** Bumped on every subscriber disconnect so an acknowledgement from an older connection is ignored. */
  #subscriberEpoch = 0;
  #subscribingEpoch = -1;
  #subscribed = false;
  #resubscriptions = 0;
  #firstSubscription: Deferred | undefined;
  #closing: Promise<void> | undefined;
  #droppedInvalid = 0;
  #lastInvalidLogAt = Number.NEGATIVE_INFINITY;

  constructor(options: RedisMessageBusOptions) {
    this.serverId = options.serverId;
    this.#prefix = options.channelPrefix ?? '';
    this.#logger = options.logger ?? silentLogger;
    this.#commandTimeoutMs = options.redisOptions?.commandTimeout ?? DEFAULT_COMMAND_TIMEOUT_MS;
    const base: RedisOptions = {
      ...options.redisOptions,
      commandTimeout: this.#commandTimeoutMs,
      enableOfflineQueue: false,
      // Reject whatever is in flight when a connection drops, rather than
      // holding it for the next connection and maybe publishing it twice.
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
      autoResubscribe: false,
    };
    const make = (role: Role, extra: RedisOptions): Redis => {
      // Named so operators can tell the two apart in CLIENT LIST; names cannot hold spaces.
      const connectionName = base.connectionName ?? `signal-${role}-${this.serverId.replace(/\s/g, '_')}`;
      const redisOptions: RedisOptions = { ...base, ...extra, connectionName };
      return options.url === undefined ? new Redis(redisOptions) : new Redis(options.url, redisOptions);
    };
    // publish() may wait for the first connection, so it must start now.
    this.#publisher = make('publisher', { lazyConnect: false });
    // The subscriber connects only once someone subscribes: a publish-only
    // user (a tool, a script) needs one connection, not two.
    this.#subscriber = make('subscriber', { lazyConnect: true });
    // Listeners are attached once, here, never per connection, so reconnects
    // cannot accumulate them.
    this.#watch('publisher', this.#publisher);
    this.#watch('subscriber', this.#subscriber);
    this.#subscriber.on('ready', () => this.#issueSubscriptions());
    this.#subscriber.on('message', (channel: string, text: string) => this.#onRaw(channel, text));
    this.#subscriber.on('pmessage', (_pattern: string, channel: string, text: string) => this.#onRaw(channel, text));
  }

  async publish(message: BusMessage): Promise<void> {
    if (this.#closing !== undefined) throw new SignalError('ERR_BUS_CLOSED', 'message bus is closed');
    const status = this.#publisher.status;
    if (status !== 'ready') {
      // Only the very first connection is worth waiting for (a publish right
      // after start-up); once it was up, not ready means down: fail fast.
      if (this.#everReady.publisher || !STARTING_STATES.has(status)) {
        throw new BusUnavailableError(`redis publisher ${status}`);
      }
      await this.#awaitFirstPublisherReady();
    }
    // The bus stamps its own id so a forwarded message can never loop back
    // to every instance under a foreign id.
    const stamped: BusMessage = { ...message, serverId: this.serverId };
    // Serialized outside the try: data JSON cannot hold is the caller's bug, not an outage.
    const text = serializeBusMessage(stamped);
    try {
      await this.#publisher.publish(this.#prefix + busChannel(stamped), text);
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
    if (this.#subscriber.status === 'wait') {
      // Failures of this first attempt are reported through 'error' and
      // retried by ioredis; the promise itself carries nothing more.
      this.#subscriber.connect().catch(() => {});
    } else if (this.#subscriber.status === 'ready') {
      this.#issueSubscriptions();
    }
    // Otherwise the next 'ready' issues them.
    return first.promise;
  }

  health(): DependencyHealth {
    if (this.#closing !== undefined) return { name: 'redis', ready: false, detail: 'closed' };
    if (this.#publisher.status !== 'ready') {
      return { name: 'redis', ready: false, detail: `publisher ${this.#publisher.status}` };
    }
    if (this.#handler !== undefined && !this.#subscribed) {
      const status = this.#subscriber.status;
      return { name: 'redis', ready: false, detail: status === 'ready' ? 'subscribing' : `subscriber ${status}` };
    }
    return { name: 'redis', ready: true };
  }

  close(): Promise<void> {
    this.#closing ??= this.#shutdown();
    return this.#closing;
  }

  async #shutdown(): Promise<void> {
    this.#subscribed = false;
    this.#firstSubscription?.reject(new SignalError('ERR_BUS_CLOSED', 'message bus closed before subscribing'));
    await Promise.all([quit(this.#publisher), quit(this.#subscriber)]);
  }

  #watch(role: Role, client: Redis): void {
    const fields = { instanceId: this.serverId, connection: role };
    client.on('ready', () => {
      this.#connected[role] = true;
      this.#errorLogged[role] = false;
      if (this.#closing !== undefined) return;
      // The subscriber logs its own line once its channels are acknowledged.
      if (role === 'publisher') {
        this.#logger.info(fields, this.#everReady.publisher ? 'redis reconnected' : 'redis connected');
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
      if (this.#closing === undefined) this.#logger.warn(fields, 'redis disconnected');
    });
    // Without an 'error' listener ioredis prints every failed reconnect
    // attempt to stderr; the first error of an outage is enough for operators.
    client.on('error', (error: unknown) => {
      if (this.#closing !== undefined || this.#errorLogged[role]) return;
      this.#errorLogged[role] = true;
      this.#logger.warn({ ...fields, err: errorMessage(error) }, 'redis connection error');
    });
  }

  #issueSubscriptions(): void {
    if (this.#handler === undefined || this.#closing !== undefined) return;
    const epoch = this.#subscriberEpoch;
    if (this.#subscribingEpoch === epoch) return;
    this.#subscribingEpoch = epoch;
    const pattern = escapeGlob(this.#prefix);
    Promise.all([
      this.#subscriber.subscribe(`${this.#prefix}ws:broadcast`),
      this.#subscriber.psubscribe(`${pattern}ws:room:*`, `${pattern}ws:client:*`, `${pattern}ws:user:*`),
    ]).then(
      () => {
        if (epoch !== this.#subscriberEpoch || this.#closing !== undefined) return;
        this.#subscribed = true;
        const fields = { instanceId: this.serverId, connection: 'subscriber' as Role };
        if (this.#firstSubscription !== undefined) {
          this.#logger.info(fields, 'redis bus subscribed');
          this.#firstSubscription.resolve();
          this.#firstSubscription = undefined;
        } else {
          this.#resubscriptions += 1;
          this.#logger.info({ ...fields, resubscriptions: this.#resubscriptions }, 'redis bus resubscribed');
        }
      },
      (error: unknown) => {
        if (epoch !== this.#subscriberEpoch || this.#closing !== undefined) return;
        // Still connected but not subscribed (a command timeout): reconnect,
        // whose 'ready' tries again, instead of staying deaf.
        this.#logger.warn({ instanceId: this.serverId, err: errorMessage(error) }, 'redis bus subscription failed');
        this.#subscriber.disconnect(true);
      },
    );
  }

  #onRaw(channel: string, text: string): void {
    const handler = this.#handler;
    if (handler === undefined || this.#closing !== undefined) return;
    // Routing uses the payload only; older instances put messages for a
    // client on a room channel, and the payload is what they meant.
    const message = parseBusMessage(text);
    if (message === null) {
      this.#warnInvalid(channel, text);
      return;
    }
    if (message.serverId === this.serverId) return;
    try {
      handler(message);
    } catch (error) {
      // A throwing handler must not reach ioredis' parser, which would
      // tear the connection down.
      this.#logger.error({ instanceId: this.serverId, event: message.event, err: errorMessage(error) }, 'bus handler threw');
    }
  }

  #warnInvalid(channel: string, text: string): void {
    this.#droppedInvalid += 1;
    const now = Date.now();
    if (now - this.#lastInvalidLogAt < INVALID_PAYLOAD_LOG_INTERVAL_MS) return;
    this.#lastInvalidLogAt = now;
    this.#logger.warn(
      {
        instanceId: this.serverId,
        channel,
        dropped: this.#droppedInvalid,
        payloadPrefix: text.slice(0, PAYLOAD_LOG_PREFIX_CHARS),
      },
      'dropped invalid bus payload',
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
        else reject(new BusUnavailableError(`redis not connected: ${errorMessage(error)}`, { cause: error }));
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

/** Redis glob metacharacters in the prefix are matched literally. */
export function escapeGlob(text: string): string {
  return text.replace(/[\\*?[\]]/g, '\\$&');
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
