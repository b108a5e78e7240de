import type { Redis } from 'ioredis';
import type { DependencyHealth } from '../../application/ports/lifecycle.port.ts';
import type { Logger } from '../../application/ports/logger.port.ts';
import type { RedisConnectionOptions, WatchedConnection } from './redis-connection.ts';
import { DEFAULT_COMMAND_TIMEOUT_MS, STARTING_STATES, awaitFirstReady, errorMessage, openConnection, quit, watchConnection } from './redis-connection.ts';

export type PubSubRole = 'publisher' | 'subscriber';

export interface PubSubSettings {
  /** The connection's name in CLIENT LIST, so operators can tell the two apart. */
  name: (role: PubSubRole) => string;
  logger: Logger;
  /** The fields of a connection's log lines; read at each event, so they may change. */
  fields: (role: PubSubRole) => Record<string, unknown>;
  /** True once the owner is closing. */
  closing: () => boolean;
}

interface Subscription {
  readonly send: () => Promise<unknown>;
  readonly onAcknowledged: () => void;
  readonly onFailed: (error: unknown) => void;
}

/**
 * The two connections of a pub/sub adapter, since a subscribed connection
 * cannot PUBLISH: a publisher that connects at once (a publish may wait for
 * its first connection), and a subscriber that connects only once someone
 * subscribes (a publish-only user needs one connection, not two). Neither
 * queues nor resends (see openConnection).
 *
 * The subscriptions are (re)issued here on every 'ready' of the subscriber
 * rather than by ioredis, and only the acknowledgement of the current
 * connection counts, since one from a connection that has dropped since
 * says nothing about this one. So health() knows whether anything can
 * currently arrive.
 */
export class PubSubConnections {
  readonly publisher: Redis;
  readonly subscriber: Redis;
  readonly #commandTimeoutMs: number;
  readonly #closing: () => boolean;
  readonly #publisherState: WatchedConnection;
  #subscription: Subscription | undefined;
  /** Bumped on every subscriber disconnect so an acknowledgement from an older connection is ignored. */
  #epoch = 0;
  #issuedEpoch = -1;
  #subscribed = false;

  constructor(options: RedisConnectionOptions, settings: PubSubSettings) {
    this.#commandTimeoutMs = options.redisOptions?.commandTimeout ?? DEFAULT_COMMAND_TIMEOUT_MS;
    this.#closing = settings.closing;
    this.publisher = openConnection(options, settings.name('publisher'), this.#commandTimeoutMs, false);
    this.subscriber = openConnection(options, settings.name('subscriber'), this.#commandTimeoutMs, true);
    // Listeners are attached once, here, never per connection, so reconnects
    // cannot accumulate them.
    const watch = (client: Redis, role: PubSubRole): WatchedConnection =>
      watchConnection(client, {
        logger: settings.logger,
        fields: () => settings.fields(role),
        closing: settings.closing,
        // The owner logs the subscriber's line once its channels are acknowledged.
        announceReady: role === 'publisher',
      });
    this.#publisherState = watch(this.publisher, 'publisher');
    watch(this.subscriber, 'subscriber');
    this.subscriber.on('ready', () => this.#issue());
    this.subscriber.on('close', () => {
      this.#epoch += 1;
      this.#subscribed = false;
    });
  }

  /**
   * Call only while the publisher is not ready. Waits for its very first
   * connection (a publish right after start-up), for at most the command
   * timeout; once it was up, not ready means down, so this fails at once.
   * Either refusal is an `Unavailable` (the owner's error class).
   */
  async firstPublisherReady(Unavailable: new (detail: string, options?: { cause?: unknown }) => Error): Promise<void> {
    const status = this.publisher.status;
    if (this.#publisherState.everReady || !STARTING_STATES.has(status)) throw new Unavailable(`redis publisher ${status}`);
    await awaitFirstReady(this.publisher, this.#commandTimeoutMs).catch((error: unknown) => {
      throw new Unavailable(`redis not connected: ${errorMessage(error)}`, { cause: error });
    });
  }

  /**
   * Keeps `send` subscribed from now on (call once). Each acknowledgement
   * calls `onAcknowledged`. A failure while still connected (a command
   * timeout) calls `onFailed` and drops the subscriber, whose next 'ready'
   * tries again, rather than leaving it connected and deaf. Neither is
   * called for a connection that has dropped since, or once the owner is
   * closing.
   */
  subscribe(send: () => Promise<unknown>, onAcknowledged: () => void, onFailed: (error: unknown) => void): void {
    this.#subscription = { send, onAcknowledged, onFailed };
    if (this.subscriber.status === 'wait') {
      // Failures of this first attempt are reported through 'error' and
      // retried by ioredis; the promise itself carries nothing more.
      this.subscriber.connect().catch(() => {});
    } else if (this.subscriber.status === 'ready') {
      this.#issue();
    }
    // Otherwise the next 'ready' issues them.
  }

  /** Ready while the publisher is and, once someone subscribed, while the subscriptions are acknowledged. */
  health(name: string): DependencyHealth {
    if (this.publisher.status !== 'ready') return { name, ready: false, detail: `publisher ${this.publisher.status}` };
    if (this.#subscription !== undefined && !this.#subscribed) {
      const status = this.subscriber.status;
      return { name, ready: false, detail: status === 'ready' ? 'subscribing' : `subscriber ${status}` };
    }
    return { name, ready: true };
  }

  async quit(): Promise<void> {
    await Promise.all([quit(this.publisher), quit(this.subscriber)]);
  }

  #issue(): void {
    const subscription = this.#subscription;
    if (subscription === undefined || this.#closing()) return;
    const epoch = this.#epoch;
    if (this.#issuedEpoch === epoch) return;
    this.#issuedEpoch = epoch;
    subscription.send().then(
      () => {
        if (epoch !== this.#epoch || this.#closing()) return;
        this.#subscribed = true;
        subscription.onAcknowledged();
      },
      (error: unknown) => {
        if (epoch !== this.#epoch || this.#closing()) return;
        subscription.onFailed(error);
        this.subscriber.disconnect(true);
      },
    );
  }
}
