import type { ControlChannel, ControlCommand, ControlHandler } from '../../application/ports/control-channel.port.ts';
import { controlChannelName, serializeControlCommand } from '../../application/ports/control-channel.port.ts';
import type { Closeable } from '../../application/ports/lifecycle.port.ts';
import type { Logger } from '../../application/ports/logger.port.ts';
import { silentLogger } from '../../application/ports/logger.port.ts';
import { SignalError } from '../../domain/errors.ts';
import { ControlPayloadReceiver } from '../payload-receivers.ts';
import type { InMemoryBusHub } from './in-memory-message-bus.ts';

export interface InMemoryControlChannelOptions {
  logger?: Logger;
}

/**
 * The in-process twin of RedisControlChannel. It rides on the same
 * InMemoryBusHub as the in-memory bus, with the same channel names and
 * payload bytes, as both ride on one Redis in production; so the bus's
 * patterns are shown not to pick up control traffic here too.
 */
export class InMemoryControlChannel implements ControlChannel, Closeable {
  readonly #hub: InMemoryBusHub;
  readonly #receiver: ControlPayloadReceiver;
  #handler: ControlHandler | undefined;
  #unsubscribe: (() => void) | undefined;
  #closed = false;

  constructor(hub: InMemoryBusHub, options: InMemoryControlChannelOptions = {}) {
    this.#hub = hub;
    this.#receiver = new ControlPayloadReceiver(options.logger ?? silentLogger);
  }

  async send(instanceId: string, command: ControlCommand): Promise<void> {
    if (this.#closed) throw new SignalError('ERR_CONTROL_CLOSED', 'control channel is closed');
    this.#hub.publishRaw(controlChannelName(instanceId), serializeControlCommand(command));
  }

  async subscribe(instanceId: string, handler: ControlHandler): Promise<void> {
    if (this.#closed) throw new SignalError('ERR_CONTROL_CLOSED', 'control channel is closed');
    if (this.#handler !== undefined) throw new SignalError('ERR_CONTROL_ALREADY_SUBSCRIBED', 'control channel already has a handler');
    const channel = controlChannelName(instanceId);
    this.#handler = handler;
    // The hub delivers nothing to a subscription once it is removed, so close() needs no check here.
    this.#unsubscribe = this.#hub.subscribe([channel], [], (delivered, text) =>
      this.#receiver.receive(delivered, text, handler, { instanceId }),
    );
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
  }
}
