/**
 * The Redis bus payload shared with publisher services (protocol §7). The
 * byte layout is fixed: keys in the order serverId, type, target, event,
 * data, exclude, with undefined keys omitted, exactly as the publishers'
 * emitter writes it.
 */

/** Who a bus message is for; routing uses this, never the channel name. */
export type BusMessageType = 'client' | 'user' | 'room' | 'broadcast';

export interface BusMessage {
  serverId: string;
  type: BusMessageType;
  /** Absent only for `broadcast`. */
  target?: string;
  event: string;
  data: unknown;
  /** Client ids to skip; honoured for `room` and `broadcast`. */
  exclude?: string[];
}

const TYPES: ReadonlySet<string> = new Set<BusMessageType>(['client', 'user', 'room', 'broadcast']);

export function serializeBusMessage(message: BusMessage): string {
  let text = `{"serverId":${JSON.stringify(message.serverId)},"type":${JSON.stringify(message.type)}`;
  if (message.target !== undefined) text += `,"target":${JSON.stringify(message.target)}`;
  text += `,"event":${JSON.stringify(message.event)}`;
  // JSON.stringify yields undefined (not text) for a function or a symbol;
  // writing that verbatim would put unparseable JSON on the wire.
  const data = message.data === undefined ? undefined : (JSON.stringify(message.data) as string | undefined);
  if (data !== undefined) text += `,"data":${data}`;
  if (message.exclude !== undefined) text += `,"exclude":${JSON.stringify(message.exclude)}`;
  return text + '}';
}

/**
 * Parses an inbound payload. Returns null for anything that is not an
 * object with string `serverId` and `event`, a known `type`, a string
 * `target` for every type but broadcast, and (when present) an array of
 * string `exclude` ids.
 */
export function parseBusMessage(text: string): BusMessage | null {
  const record = parseJsonObject(text);
  if (record === null) return null;
  if (typeof record.serverId !== 'string' || typeof record.event !== 'string') return null;
  if (typeof record.type !== 'string' || !TYPES.has(record.type)) return null;
  const type = record.type as BusMessageType;
  if (type !== 'broadcast' && typeof record.target !== 'string') return null;
  if (record.target !== undefined && typeof record.target !== 'string') return null;
  let exclude: string[] | undefined;
  if (record.exclude !== undefined && record.exclude !== null) {
    if (!Array.isArray(record.exclude) || !record.exclude.every((id) => typeof id === 'string')) return null;
    exclude = record.exclude as string[];
  }
  const message: BusMessage = { serverId: record.serverId, type, event: record.event, data: record.data };
  if (typeof record.target === 'string') message.target = record.target;
  if (exclude !== undefined) message.exclude = exclude;
  return message;
}

/**
 * The first step of parsing any payload that arrives over the bus's Redis
 * (bus messages, control commands): the text must be a JSON object. Null
 * for anything else (invalid JSON, an array, a primitive, null), so a
 * receiver drops it instead of throwing.
 */
export function parseJsonObject(text: string): Record<string, unknown> | null {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return null;
  return value as Record<string, unknown>;
}

/** The channel a message is published on, before any isolation prefix. */
export function busChannel(message: Pick<BusMessage, 'type' | 'target'>): string {
  if (message.type === 'broadcast') return 'ws:broadcast';
  return `ws:${message.type}:${message.target ?? ''}`;
}
