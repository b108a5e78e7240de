import type { BusMessage } from '../domain/bus-payload.ts';
import { serializeFrame } from '../domain/protocol.ts';
import { FanOut, type FanOutOptions } from './fan-out.ts';
import type { LocalConnections } from './local-connections.ts';
import type { Logger } from './ports/logger.port.ts';
import type { MessageBus } from './ports/message-bus.port.ts';
import { noopMetrics, type Metrics } from './ports/metrics.port.ts';

export interface DeliveryReport {
  /** Connections on this instance the frame was handed to. */
  local: number;
  /** Whether the message went out to the other instances (false: not needed, or the bus failed). */
  published: boolean;
}

export interface SendOptions {
  /** Client ids that must not receive it (room and broadcast only). */
  exclude?: readonly string[];
}

/**
 * Routes a message to a client, a user, a room or everyone, on this
 * instance directly and on the others through the bus. The frame is
 * serialised once per send; each recipient encrypts it with its own key.
 *
 * A send that needs the bus is published before the local fan-out starts,
 * so the other instances work on it while this one does. Local fan-out goes
 * through one FanOut queue: large sends are handed out in slices between
 * which the event loop runs, and every connection sees sends in call order.
 */
export class Delivery {
  private readonly fanOut: FanOut;

  constructor(
    private readonly connections: LocalConnections,
    private readonly bus: MessageBus,
    private readonly logger: Logger,
    /** Counted once per send, with the number of local connections reached. */
    private readonly metrics: Metrics = noopMetrics,
    fanOut: Omit<FanOutOptions, 'onError'> = {},
  ) {
    this.fanOut = new FanOut({
      ...fanOut,
      onError: (error) => this.logger.error({ err: error }, 'delivery to a connection failed'),
    });
  }

  /** Local deliveries accepted but still waiting for their slice. */
  get pendingDeliveries(): number {
    return this.fanOut.pending;
  }

  /** A local client is reached without a bus round trip; otherwise its owner delivers. */
  async toClient(clientId: string, event: string, data: unknown): Promise<DeliveryReport> {
    const connection = this.connections.get(clientId);
    if (connection !== undefined) {
      this.fanOut.one(connection, serializeFrame(event, data));
      this.metrics.delivered('client', 1);
      return { local: 1, published: false };
    }
    return { local: 0, published: await this.publish({ type: 'client', target: clientId, event, data }) };
  }

  async toUser(userId: string, event: string, data: unknown): Promise<DeliveryReport> {
    const text = serializeFrame(event, data);
    const published = this.publish({ type: 'user', target: userId, event, data });
    const local = this.fanOut.many(this.connections.ofUser(userId), text);
    this.metrics.delivered('user', local);
    return { local, published: await published };
  }

  async toRoom(room: string, event: string, data: unknown, options: SendOptions = {}): Promise<DeliveryReport> {
    const text = serializeFrame(event, data);
    const published = this.publish({ type: 'room', target: room, event, data, exclude: options.exclude });
    const local = this.fanOut.many(this.connections.inRoom(room), text, excludeSet(options.exclude));
    this.metrics.delivered('room', local);
    return { local, published: await published };
  }

  async broadcast(event: string, data: unknown, options: SendOptions = {}): Promise<DeliveryReport> {
    const text = serializeFrame(event, data);
    const published = this.publish({ type: 'broadcast', event, data, exclude: options.exclude });
    const local = this.fanOut.many(this.connections.all(), text, excludeSet(options.exclude));
    this.metrics.delivered('broadcast', local);
    return { local, published: await published };
  }

  /** Delivers a message that came from the bus to this instance's clients only. */
  receive(message: BusMessage): number {
    const count = this.receiveLocally(message);
    this.metrics.delivered(message.type, count);
    return count;
  }

  private receiveLocally(message: BusMessage): number {
    const exclude = excludeSet(message.exclude);
    switch (message.type) {
      case 'client': {
        const connection = this.connections.get(message.target ?? '');
        if (connection === undefined) return 0;
        this.fanOut.one(connection, serializeFrame(message.event, message.data));
        return 1;
      }
      case 'user':
        return this.fanOut.many(this.connections.ofUser(message.target ?? ''), serializeFrame(message.event, message.data));
      case 'room': {
        const target = message.target ?? '';
        // Older instances address a remote client as a room named by its id.
        const direct = this.connections.get(target);
        if (direct !== undefined && exclude?.has(direct.id) !== true) {
          this.fanOut.one(direct, serializeFrame(message.event, message.data));
          return 1;
        }
        return this.fanOut.many(this.connections.inRoom(target), serializeFrame(message.event, message.data), exclude);
      }
      case 'broadcast':
        return this.fanOut.many(this.connections.all(), serializeFrame(message.event, message.data), exclude);
    }
  }

  private async publish(message: Outgoing): Promise<boolean> {
    const full: BusMessage = { serverId: this.bus.serverId, type: message.type, event: message.event, data: message.data };
    if (message.target !== undefined) full.target = message.target;
    if (message.exclude !== undefined && message.exclude.length > 0) full.exclude = [...message.exclude];
    try {
      await this.bus.publish(full);
      return true;
    } catch (error) {
      this.logger.warn(
        { event: message.event, type: message.type, target: message.target, code: (error as { code?: string }).code },
        'bus not ready: message delivered locally only',
      );
      return false;
    }
  }
}

type Outgoing = Omit<BusMessage, 'serverId' | 'exclude'> & { exclude?: readonly string[] };

function excludeSet(exclude: readonly string[] | undefined): ReadonlySet<string> | undefined {
  return exclude === undefined || exclude.length === 0 ? undefined : new Set(exclude);
}
