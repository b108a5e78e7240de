import type { ControlChannel, ControlCommand, ControlHandler } from '../../application/ports/control-channel.port.ts';
import { controlChannelName, parseControlCommand, serializeControlCommand } from '../../application/ports/control-channel.port.ts';
import type { Closeable } from '../../application/ports/lifecycle.port.ts';
import type { Logger } from '../../application/ports/logger.port.ts';
import { silentLogger } from '../../application/ports/logger.port.ts';
import { SignalError } from '../../domain/errors.ts';
import type { InMemoryBusHub } from './in-memory-message-bus.ts';

export interface InMemoryControlChannelOptions {
  logger?: Logger;
}

const INVALID_PAYLOAD_LOG_INTERVAL_MS = 10_000;
const PAYLOAD_LOG_PREFIX_CHARS = 64;

/**
 * The in-process twin of RedisControlChannel. It rides on the same
 * InMemoryBusHub as the in-memory bus, with the same channel names and
 * payload bytes, as both ride on one Redis in production; so the bus's
 * patterns are shown not to pick up control traffic here too.
 */
export class InMemoryControlChannel implements ControlChannel, Closeable {
  readonly #hub: InMemoryBusHub;
  readonly #logger: Logger;
  #instanceId: string | undefined;
  #handler: ControlHandler | undefined;
  #unsubscribe: (() => void) | undefined;
  #closed = false;
  #droppedInvalid = 0;
  #lastInvalidLogAt = Number.NEGATIVE_INFINITY;

  constructor(hub: InMemoryBusHub, options: InMemoryControlChannelOptions = {}) {
    this.#hub = hub;
    this.#logger = options.logger ?? silentLogger;
  }

  async send(instanceId: string, command: ControlCommand): Promise<void> {
    if (this.#closed) throw new SignalError('ERR_CONTROL_CLOSED', 'control channel is closed');
    this.#hub.publishRaw(controlChannelName(instanceId), serializeControlCommand(command));
  }

  async subscribe(instanceId: string, handler: ControlHandler): Promise<void> {
    if (this.#closed) throw new SignalError('ERR_CONTROL_CLOSED', 'control channel is closed');
    if (this.#handler !== undefined) throw new SignalError('ERR_CONTROL_ALREADY_SUBSCRIBED', 'control channel already has a handler');
    const channel = controlChannelName(instanceId);
    this.#instanceId = instanceId;
    this.#handler = handler;
    this.#unsubscribe = this.#hub.subscribe([channel], [], this.#onRaw);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
  }

  readonly #onRaw = (channel: string, text: string): void => {
    const handler = this.#handler;
    if (handler === undefined || this.#closed) return;
    const command = parseControlCommand(text);
    if (command === null) {
      this.#warnInvalid(channel, text);
      return;
    }
    try {
      handler(command);
    } catch (error) {
      this.#logger.error(
        { instanceId: this.#instanceId, clientId: command.clientId, err: error instanceof Error ? error.message : String(error) },
        'control handler threw',
      );
    }
  };

  #warnInvalid(channel: string, text: string): void {
    this.#droppedInvalid += 1;
    const now = Date.now();
    if (now - this.#lastInvalidLogAt < INVALID_PAYLOAD_LOG_INTERVAL_MS) return;
    this.#lastInvalidLogAt = now;
    this.#logger.warn(
      { instanceId: this.#instanceId, channel, dropped: this.#droppedInvalid, payloadPrefix: text.slice(0, PAYLOAD_LOG_PREFIX_CHARS) },
      'dropped invalid control payload',
    );
    this.#droppedInvalid = 0;
  }
}
