/**
 * Publishes deliveries onto the Redis bus for publisher services (sale,
 * payment, outreach, ...) that are not signal instances themselves. The
 * payloads and channels are byte-for-byte those of protocol §7, so every
 * signal instance (and any older instance still running) routes them.
 *
 * No routing happens here: an instance owning the target delivers it.
 * Delivery is at-most-once, as for everything on the bus.
 */
import { busChannel, serializeBusMessage } from '../../domain/bus-payload.ts';
import type { BusMessage } from '../../domain/bus-payload.ts';

/** The one method used; an ioredis client (not in subscriber mode) fits as is. */
export interface BusPublisher {
  publish(channel: string, message: string): Promise<unknown>;
}

export interface SignalEmitterOptions {
  publisher: BusPublisher;
  /**
   * Prepended to every channel; must match the instances' prefix. Empty by
   * default, which is what the existing instances and publishers use.
   */
  channelPrefix?: string;
  /**
   * Stamped as `serverId`. Instances drop messages carrying their own id,
   * so this must never equal an instance's id; `emitter` is what the
   * existing publishers send.
   */
  serverId?: string;
}

export interface ExcludeOptions {
  /** Client ids that must not receive the message. */
  exclude?: string[];
}

export class SignalEmitter {
  private readonly publisher: BusPublisher;
  private readonly channelPrefix: string;
  private readonly serverId: string;

  constructor(options: SignalEmitterOptions) {
    this.publisher = options.publisher;
    this.channelPrefix = options.channelPrefix ?? '';
    this.serverId = options.serverId ?? 'emitter';
  }

  /** To one connection, wherever it lives. */
  toClient(clientId: string, event: string, data: unknown): Promise<unknown> {
    return this.publish({ serverId: this.serverId, type: 'client', target: clientId, event, data });
  }

  /** To every connection of one user, on every instance. */
  toUser(userId: string, event: string, data: unknown): Promise<unknown> {
    return this.publish({ serverId: this.serverId, type: 'user', target: userId, event, data });
  }

  /** To every member of a room, on every instance, except the excluded clients. */
  toRoom(room: string, event: string, data: unknown, options?: ExcludeOptions): Promise<unknown> {
    return this.publish(withExclude({ serverId: this.serverId, type: 'room', target: room, event, data }, options));
  }

  /** To every connection on every instance, except the excluded clients. */
  broadcast(event: string, data: unknown, options?: ExcludeOptions): Promise<unknown> {
    return this.publish(withExclude({ serverId: this.serverId, type: 'broadcast', event, data }, options));
  }

  private publish(message: BusMessage): Promise<unknown> {
    return this.publisher.publish(this.channelPrefix + busChannel(message), serializeBusMessage(message));
  }
}

/**
 * `exclude` goes on the wire only when the caller gave one: the captured
 * publisher payloads have no `exclude` key at all, and consumers must keep
 * seeing exactly those bytes.
 */
function withExclude(message: BusMessage, options: ExcludeOptions | undefined): BusMessage {
  if (options?.exclude === undefined) return message;
  return { ...message, exclude: options.exclude };
}
