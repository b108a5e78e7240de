import type { ControlHandler } from '../application/ports/control-channel.port.ts';
import { parseControlCommand } from '../application/ports/control-channel.port.ts';
import type { Logger } from '../application/ports/logger.port.ts';
import type { BusHandler } from '../application/ports/message-bus.port.ts';
import { parseBusMessage } from '../domain/bus-payload.ts';

/*
 * What a receiver does with each payload the transport hands it, shared by
 * the Redis adapters and their in-memory twins so the twins drop and log
 * exactly what production does. Both run on the transport's delivery path
 * (ioredis' parser, the hub's drain), so nothing here may throw: a payload
 * that does not parse is dropped with a rate-limited warning, and a
 * throwing handler is logged, never let back into the transport.
 */

const INVALID_PAYLOAD_LOG_INTERVAL_MS = 10_000;
const PAYLOAD_LOG_PREFIX_CHARS = 64;

/**
 * At most one warning per interval, carrying how many payloads were
 * dropped since the last one and the start of the latest, so a publisher
 * stuck on a bad format cannot flood the log.
 */
class InvalidPayloadLog {
  readonly #logger: Logger;
  readonly #message: string;
  #dropped = 0;
  #lastLogAt = Number.NEGATIVE_INFINITY;

  constructor(logger: Logger, message: string) {
    this.#logger = logger;
    this.#message = message;
  }

  drop(fields: Record<string, unknown>, channel: string, text: string): void {
    this.#dropped += 1;
    const now = Date.now();
    if (now - this.#lastLogAt < INVALID_PAYLOAD_LOG_INTERVAL_MS) return;
    this.#lastLogAt = now;
    this.#logger.warn(
      { ...fields, channel, dropped: this.#dropped, payloadPrefix: text.slice(0, PAYLOAD_LOG_PREFIX_CHARS) },
      this.#message,
    );
    this.#dropped = 0;
  }
}

/** One bus instance's inbound side: invalid payloads and the instance's own messages are dropped. */
export class BusPayloadReceiver {
  readonly #serverId: string;
  readonly #ownPrefix: string;
  readonly #logger: Logger;
  readonly #invalid: InvalidPayloadLog;

  constructor(serverId: string, logger: Logger) {
    this.#serverId = serverId;
    this.#ownPrefix = `{"serverId":${JSON.stringify(serverId)},`;
    this.#logger = logger;
    this.#invalid = new InvalidPayloadLog(logger, 'dropped invalid bus payload');
  }

  /** Routing uses the payload only; the channel is kept for the log line. */
  receive(channel: string, text: string, handler: BusHandler): void {
    // Pub/sub hands every instance its own publishes back. serializeBusMessage
    // writes serverId first, so those are recognised without parsing the
    // whole payload (a notification's data can be kilobytes).
    if (text.startsWith(this.#ownPrefix)) return;
    const message = parseBusMessage(text);
    if (message === null) {
      this.#invalid.drop({ instanceId: this.#serverId }, channel, text);
      return;
    }
    if (message.serverId === this.#serverId) return;
    try {
      handler(message);
    } catch (error) {
      this.#logger.error({ instanceId: this.#serverId, event: message.event, err: errorMessage(error) }, 'bus handler threw');
    }
  }
}

/** One control channel's inbound side: invalid payloads are dropped. */
export class ControlPayloadReceiver {
  readonly #logger: Logger;
  readonly #invalid: InvalidPayloadLog;

  constructor(logger: Logger) {
    this.#logger = logger;
    this.#invalid = new InvalidPayloadLog(logger, 'dropped invalid control payload');
  }

  /** `fields` (the receiving instance's id) lead every line logged about this payload. */
  receive(channel: string, text: string, handler: ControlHandler, fields: Record<string, unknown>): void {
    const command = parseControlCommand(text);
    if (command === null) {
      this.#invalid.drop(fields, channel, text);
      return;
    }
    try {
      handler(command);
    } catch (error) {
      this.#logger.error({ ...fields, clientId: command.clientId, err: errorMessage(error) }, 'control handler threw');
    }
  }
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
