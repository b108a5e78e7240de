import { parseJsonObject } from '../../domain/bus-payload.ts';
import { SignalError } from '../../domain/errors.ts';

/** Closes the client with 4008 on the instance holding it; others ignore it. */
export type ControlCommand = { type: 'disconnect'; clientId: string; requestedBy?: string };

export type ControlHandler = (command: ControlCommand) => void;

/**
 * Commands from one signal instance to another, addressed by instance id:
 * a REST call landing on instance A asks instance B, which holds the
 * socket, to act on it.
 *
 * Delivery is at-most-once, like the bus: a command sent while the target
 * is not subscribed (down, restarting, disconnected from the transport) is
 * lost, never queued or replayed, and never delivered twice. `send`
 * resolves once the transport took the command, not once anyone acted on
 * it; it rejects promptly when the transport is unreachable. Commands from
 * one sender to one target arrive in order. An instance receives only the
 * commands addressed to its own id, including ones it sent itself. A
 * payload that is not a valid command is dropped (and logged) by the
 * receiver. Nobody retries: the caller checks the outcome (presence) if it
 * needs to know.
 */
export interface ControlChannel {
  /** Sends a command to the instance with this id. */
  send(instanceId: string, command: ControlCommand): Promise<void>;
  /**
   * Registers the one handler for commands addressed to `instanceId` and
   * resolves once the transport acknowledged the subscription, so a command
   * sent afterwards by anyone is received.
   */
  subscribe(instanceId: string, handler: ControlHandler): Promise<void>;
}

/** A command or instance id that no caller should ever build: a programming error, not an outage. */
export class ControlInputError extends SignalError {
  constructor(detail: string) {
    super('ERR_CONTROL_INPUT', `invalid control command: ${detail}`);
  }
}

/**
 * The channel a command for `instanceId` travels on, before any isolation
 * prefix. It sits beside the bus's `ws:room:*`, `ws:client:*`, `ws:user:*`
 * and `ws:broadcast` without matching any of them, so bus subscribers
 * never see control traffic.
 */
export function controlChannelName(instanceId: string): string {
  if (typeof instanceId !== 'string' || instanceId.length === 0) throw new ControlInputError('instanceId must be a non-empty string');
  return `ws:control:${instanceId}`;
}

/** Fixed key order: type, clientId, then requestedBy when present. */
export function serializeControlCommand(command: ControlCommand): string {
  const source = command as unknown as Record<string, unknown>;
  if (typeof source !== 'object' || source === null || source.type !== 'disconnect') {
    throw new ControlInputError('type must be disconnect');
  }
  if (typeof source.clientId !== 'string' || source.clientId.length === 0) throw new ControlInputError('clientId must be a non-empty string');
  if (source.requestedBy !== undefined && typeof source.requestedBy !== 'string') throw new ControlInputError('requestedBy must be a string');
  let text = `{"type":"disconnect","clientId":${JSON.stringify(source.clientId)}`;
  if (source.requestedBy !== undefined) text += `,"requestedBy":${JSON.stringify(source.requestedBy)}`;
  return text + '}';
}

/**
 * Parses an inbound payload: an object with `type` "disconnect", a
 * non-empty string `clientId` and, when present, a string `requestedBy`.
 * Anything else is null. Unknown extra keys are ignored and not passed on,
 * so a newer sender can add fields without older receivers dropping its
 * commands.
 */
export function parseControlCommand(text: string): ControlCommand | null {
  const record = parseJsonObject(text);
  if (record === null) return null;
  if (record.type !== 'disconnect') return null;
  if (typeof record.clientId !== 'string' || record.clientId.length === 0) return null;
  if (record.requestedBy !== undefined && typeof record.requestedBy !== 'string') return null;
  const command: ControlCommand = { type: 'disconnect', clientId: record.clientId };
  if (record.requestedBy !== undefined) command.requestedBy = record.requestedBy;
  return command;
}
