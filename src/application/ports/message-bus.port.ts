import type { BusMessage } from '../../domain/bus-payload.ts';

export type { BusMessage, BusMessageType } from '../../domain/bus-payload.ts';

export type BusHandler = (message: BusMessage) => void;

/**
 * Fan-out between signal instances and from publisher services.
 *
 * Delivery is at-most-once (pub/sub): a message published while an instance
 * is disconnected from the transport is lost for that instance, never
 * replayed and never delivered twice. Messages from one publisher arrive in
 * the order they were published. Messages whose `serverId` equals this bus's
 * own id are dropped on receipt, as are payloads that are not an object with
 * string `serverId` and `event`. Nobody retries: callers that need
 * durability use the notification store.
 */
export interface MessageBus {
  /** This instance's id, stamped on what it publishes. */
  readonly serverId: string;
  /** Hands the message to the transport; resolves once it is sent (not delivered). */
  publish(message: BusMessage): Promise<void>;
  /**
   * Registers the one inbound handler and resolves once the transport has
   * acknowledged the subscriptions, so a message published afterwards by
   * anyone is received.
   */
  subscribe(handler: BusHandler): Promise<void>;
}
