import type { Closeable } from '../../application/ports/lifecycle.port.ts';
import type { Logger } from '../../application/ports/logger.port.ts';
import { silentLogger } from '../../application/ports/logger.port.ts';
import type { BusHandler, BusMessage, MessageBus } from '../../application/ports/message-bus.port.ts';
import { busChannel, serializeBusMessage } from '../../domain/bus-payload.ts';
import { SignalError } from '../../domain/errors.ts';
import { BusPayloadReceiver } from '../payload-receivers.ts';

export type RawListener = (channel: string, text: string) => void;

interface HubSubscription {
  readonly channels: ReadonlySet<string>;
  readonly patterns: readonly RegExp[];
  readonly listener: RawListener;
}

interface PendingDelivery {
  readonly subscription: HubSubscription;
  readonly channel: string;
  readonly text: string;
}

/**
 * One in-process "cluster": what a Redis server is to several signal
 * instances. It carries serialized text on channel names, SUBSCRIBE-style
 * exact channels and PSUBSCRIBE-style glob patterns, so everything above the
 * wire (codec, channel naming, own-id and invalid-payload drops) runs exactly
 * as it does against Redis.
 *
 * Delivery is asynchronous (never inside the publishing call, as with a
 * network hop) and in global publish order. The receivers of a message are
 * fixed when it is published; one that leaves before delivery gets nothing.
 */
export class InMemoryBusHub {
  readonly #subscriptions = new Set<HubSubscription>();
  #queue: PendingDelivery[] = [];
  #scheduled = false;

  /** Publishes text as any publisher service would; returns the receiver count, as PUBLISH does. */
  publishRaw(channel: string, text: string): number {
    let receivers = 0;
    for (const subscription of this.#subscriptions) {
      // A channel matching an exact subscription and a pattern is delivered
      // once per match, as Redis does; the bus's channel sets never overlap.
      if (subscription.channels.has(channel)) {
        this.#queue.push({ subscription, channel, text });
        receivers += 1;
      }
      for (const pattern of subscription.patterns) {
        if (!pattern.test(channel)) continue;
        this.#queue.push({ subscription, channel, text });
        receivers += 1;
      }
    }
    if (receivers > 0) this.#schedule();
    return receivers;
  }

  /**
   * Registers a listener for exact channels and Redis glob patterns; returns
   * the function that removes it. Messages published after this returns
   * reach it.
   */
  subscribe(channels: readonly string[], patterns: readonly string[], listener: RawListener): () => void {
    const subscription: HubSubscription = {
      channels: new Set(channels),
      patterns: patterns.map(globToRegExp),
      listener,
    };
    this.#subscriptions.add(subscription);
    return () => {
      this.#subscriptions.delete(subscription);
    };
  }

  /** Sees every message published on the hub, on every channel, byte for byte. */
  tap(listener: RawListener): () => void {
    return this.subscribe([], ['*'], listener);
  }

  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(this.#drain);
  }

  readonly #drain = (): void => {
    this.#scheduled = false;
    // Messages published by a listener join the next batch, after everything
    // already queued, so global publish order holds.
    const batch = this.#queue;
    this.#queue = [];
    for (let index = 0; index < batch.length; index += 1) {
      const delivery = batch[index]!;
      if (!this.#subscriptions.has(delivery.subscription)) continue;
      try {
        delivery.subscription.listener(delivery.channel, delivery.text);
      } catch (error) {
        // A throwing listener must not swallow the rest of the queue: keep
        // the remainder first in line and let the error surface.
        this.#queue = batch.slice(index + 1).concat(this.#queue);
        if (this.#queue.length > 0) this.#schedule();
        throw error;
      }
    }
  };
}

/** Redis glob syntax: `*`, `?`, `[...]` (with `^` negation and ranges), `\` escapes. */
function globToRegExp(pattern: string): RegExp {
  let source = '';
  for (let index = 0; index < pattern.length; index += 1) {
    const char = pattern[index]!;
    if (char === '*') source += '.*';
    else if (char === '?') source += '.';
    else if (char === '\\' && index + 1 < pattern.length) source += escapeRegExp(pattern[++index]!);
    else if (char === '[') {
      const end = pattern.indexOf(']', index + 1);
      if (end === -1) {
        source += '\\[';
        continue;
      }
      let body = pattern.slice(index + 1, end);
      const negated = body.startsWith('^');
      if (negated) body = body.slice(1);
      source += `[${negated ? '^' : ''}${body.replace(/[\]\\^]/g, '\\$&')}]`;
      index = end;
    } else source += escapeRegExp(char);
  }
  return new RegExp(`^${source}$`, 's');
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&');
}

export interface InMemoryMessageBusOptions {
  serverId: string;
  logger?: Logger;
}

/**
 * The in-process twin of RedisMessageBus: same channels, same payload bytes,
 * same drops, same at-most-once and per-publisher ordering guarantees. The
 * hub plays the Redis server, so several instances built on one hub behave
 * as a cluster.
 */
export class InMemoryMessageBus implements MessageBus, Closeable {
  readonly serverId: string;
  readonly #hub: InMemoryBusHub;
  readonly #receiver: BusPayloadReceiver;
  #handler: BusHandler | undefined;
  #unsubscribe: (() => void) | undefined;
  #closed = false;

  constructor(hub: InMemoryBusHub, options: InMemoryMessageBusOptions) {
    this.#hub = hub;
    this.serverId = options.serverId;
    this.#receiver = new BusPayloadReceiver(this.serverId, options.logger ?? silentLogger);
  }

  async publish(message: BusMessage): Promise<void> {
    if (this.#closed) throw new SignalError('ERR_BUS_CLOSED', 'message bus is closed');
    // The bus stamps its own id so a forwarded message can never loop back
    // to every instance under a foreign id.
    const stamped: BusMessage = { ...message, serverId: this.serverId };
    this.#hub.publishRaw(busChannel(stamped), serializeBusMessage(stamped));
  }

  async subscribe(handler: BusHandler): Promise<void> {
    if (this.#closed) throw new SignalError('ERR_BUS_CLOSED', 'message bus is closed');
    if (this.#handler !== undefined) throw new SignalError('ERR_BUS_ALREADY_SUBSCRIBED', 'message bus already has a handler');
    this.#handler = handler;
    // The hub delivers nothing to a subscription once it is removed, so close() needs no check here.
    this.#unsubscribe = this.#hub.subscribe(['ws:broadcast'], ['ws:room:*', 'ws:client:*', 'ws:user:*'], (channel, text) =>
      this.#receiver.receive(channel, text, handler),
    );
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
  }
}
