import { SignalError } from '../../domain/errors.ts';

/**
 * What the cluster knows about one connected client. Exactly these fields
 * are stored and returned: a registry copies them out of whatever object it
 * is handed, so a session key, a token or a socket riding along on the
 * caller's object never reaches the store or a REST response.
 */
export interface ClientRecord {
  id: string;
  userId: string;
  /** The instance holding the socket; the only one that may write this record. */
  instanceId: string;
  state: 'AUTHENTICATED' | 'ENCRYPTED';
  rooms: string[];
  encrypted: boolean;
  /** ISO 8601; with `id`, the sort key of every list. */
  connectedAt: string;
  /** ISO 8601; as fresh as the last upsert (a heartbeat does not rewrite records that did not drift). */
  lastActivity: string;
}

export interface PresenceQuery {
  userId?: string;
  room?: string;
  /** Non-negative integers with offset + limit <= MAX_PRESENCE_WINDOW. */
  limit: number;
  offset: number;
}

/**
 * How deep `find` pages: offset + limit may not exceed this. Each instance
 * contributes up to that many entries to a merge, so the bound is what
 * keeps one call's cost bounded; deeper listings narrow by user or room.
 */
export const MAX_PRESENCE_WINDOW = 10_000;

export interface PresencePage {
  /** Every matching record on live instances, regardless of limit/offset. */
  count: number;
  items: ClientRecord[];
}

/** How long an instance counts as alive after its last heartbeat. */
export const DEFAULT_PRESENCE_TTL_MS = 30_000;
/** How often the owner should heartbeat: a third of the TTL survives two lost beats. */
export const DEFAULT_PRESENCE_HEARTBEAT_MS = 10_000;

/**
 * The cluster-wide view of connected clients: which are connected, to which
 * instance, in which rooms. Each instance writes only its own clients; any
 * instance reads them all.
 *
 * - Eventually consistent. A write is visible to every reader once its
 *   promise resolves, but the registry is a view, not the truth: the socket
 *   on its instance is. A read may briefly list a client that just left or
 *   miss one that just arrived.
 * - Liveness. An instance is alive while its last `heartbeat` is younger
 *   than the TTL (default 30 s; heartbeat every 10 s). Records are visible
 *   only while their instance is alive: an instance that never heartbeat
 *   yet, or that crashed, contributes nothing to `find`, `get` or
 *   `instances` - a crashed one vanishes at most one TTL after its last
 *   beat, with no clean-up by anyone. So the owner heartbeats once at
 *   start-up, before its first upsert.
 * - `heartbeat` reconciles: it makes the instance's stored records exactly
 *   the list given whenever the store may differ from it - on the
 *   registry's first heartbeat for that instance, after one of its writes
 *   failed, after the store lost data (a Redis restart), or when the
 *   stored count differs from the list's - so a lost `remove` and an
 *   emptied store are repaired within one heartbeat interval. Otherwise it
 *   only extends liveness, at a cost independent of the number of clients:
 *   a changed record (rooms, state, lastActivity) reaches the store through
 *   `upsert`, never through a heartbeat.
 * - Failures. When the store is unreachable every call rejects promptly;
 *   nothing is queued for later. Nobody retries: the owner logs and the
 *   next heartbeat puts its records back.
 * - Order. `find` sorts by `connectedAt` (as a time), then by `id` compared
 *   as UTF-8 bytes, then by `instanceId`, so pages with increasing offsets
 *   neither repeat nor skip records that did not change in between.
 *   `instances` is sorted the same way by id.
 * - Calls on one registry take effect in the order they were made.
 * - Client ids are unique across the cluster (random per connection); when
 *   the same id is stored by two instances, `get` returns either.
 */
/**
 * A heartbeat's records built only when the registry rewrites: at 10,000
 * connections, building a record per connection every interval cost the
 * event loop ~30 ms, for beats that almost always need only the count.
 */
export interface DeferredRecords {
  /** How many distinct client ids `records()` returns. */
  readonly count: number;
  records(): readonly ClientRecord[];
}

export type HeartbeatRecords = readonly ClientRecord[] | DeferredRecords;

export interface PresenceRegistry {
  /** Adds or replaces the record (called on connect and when rooms change). */
  upsert(record: ClientRecord): Promise<void>;
  /** Forgets the client wherever it is stored; an unknown id is not an error. */
  remove(clientId: string): Promise<void>;
  /**
   * Extends this instance's liveness and reconciles its stored records
   * with `records` (all of which must carry this `instanceId`) as described
   * above; called every heartbeat interval by the owner with its live
   * connections, never two at a time. The records may be deferred: a
   * beat that finds the store intact needs only their count.
   */
  heartbeat(instanceId: string, records: HeartbeatRecords): Promise<void>;
  /** Matching records on live instances; both filters given means both must match. */
  find(query: PresenceQuery): Promise<PresencePage>;
  /** The record when its instance is alive, otherwise null. */
  get(clientId: string): Promise<ClientRecord | null>;
  /** Instances whose heartbeat is within the TTL, sorted by id. */
  instances(): Promise<string[]>;
}

/** A record or query that no caller should ever build: a programming error, not an outage. */
export class PresenceInputError extends SignalError {
  constructor(detail: string) {
    super('ERR_PRESENCE_INPUT', `invalid presence input: ${detail}`);
  }
}

const STATES: ReadonlySet<string> = new Set(['AUTHENTICATED', 'ENCRYPTED']);
/** A lone UTF-16 surrogate cannot be written as UTF-8, so it would not round-trip through a store. */
const LONE_SURROGATE = /\p{Cs}/u;
/** Ids, user ids and room names beyond this many UTF-8 bytes are bugs; stores may rely on the bound. */
export const MAX_PRESENCE_NAME_BYTES = 1_024;
/** connectedAt must fall between 1970 and this (ms), so stores can sort it as fixed-width digits. */
const MAX_TIME_MS = 999_999_999_999_999;
const utf8 = new TextEncoder();

function text(value: unknown, field: string): string {
  if (typeof value !== 'string' || value.length === 0 || LONE_SURROGATE.test(value)) {
    throw new PresenceInputError(`${field} must be a non-empty well-formed string`);
  }
  // Cheap bound first: a UTF-16 unit is at most 3 UTF-8 bytes.
  if (value.length * 3 > MAX_PRESENCE_NAME_BYTES && utf8.encode(value).length > MAX_PRESENCE_NAME_BYTES) {
    throw new PresenceInputError(`${field} must be at most ${MAX_PRESENCE_NAME_BYTES} UTF-8 bytes`);
  }
  return value;
}

function isoTime(value: unknown, field: string): string {
  if (typeof value !== 'string') throw new PresenceInputError(`${field} must be an ISO 8601 time`);
  const ms = Date.parse(value);
  if (!Number.isFinite(ms) || ms < 0 || ms > MAX_TIME_MS) throw new PresenceInputError(`${field} must be an ISO 8601 time after 1970`);
  return value;
}

/**
 * A fresh copy holding exactly the ClientRecord fields, in a fixed order,
 * after checking each; throws PresenceInputError otherwise. Every registry
 * stores only what this returns.
 */
export function clientRecordOf(record: ClientRecord): ClientRecord {
  const source = record as unknown as Record<string, unknown>;
  if (typeof source !== 'object' || source === null) throw new PresenceInputError('record must be an object');
  if (typeof source.state !== 'string' || !STATES.has(source.state)) {
    throw new PresenceInputError('state must be AUTHENTICATED or ENCRYPTED');
  }
  if (!Array.isArray(source.rooms)) throw new PresenceInputError('rooms must be an array');
  if (typeof source.encrypted !== 'boolean') throw new PresenceInputError('encrypted must be a boolean');
  return {
    id: text(source.id, 'id'),
    userId: text(source.userId, 'userId'),
    instanceId: text(source.instanceId, 'instanceId'),
    state: source.state as ClientRecord['state'],
    rooms: source.rooms.map((room, index) => text(room, `rooms[${index}]`)),
    encrypted: source.encrypted,
    connectedAt: isoTime(source.connectedAt, 'connectedAt'),
    lastActivity: isoTime(source.lastActivity, 'lastActivity'),
  };
}

/**
 * Checked copies of a heartbeat's records, the last one winning for a
 * repeated id; each must belong to the heartbeating instance.
 */
export function heartbeatRecordsOf(instanceId: string, given: HeartbeatRecords): ClientRecord[] {
  text(instanceId, 'instanceId');
  const records = isDeferred(given) ? given.records() : given;
  if (!Array.isArray(records)) throw new PresenceInputError('records must be an array');
  const byId = new Map<string, ClientRecord>();
  for (const record of records) {
    const copy = clientRecordOf(record);
    if (copy.instanceId !== instanceId) throw new PresenceInputError(`record ${copy.id} belongs to another instance`);
    // Re-inserted so a repeated id takes the position of its last occurrence.
    byId.delete(copy.id);
    byId.set(copy.id, copy);
  }
  return [...byId.values()];
}

/**
 * The number of distinct client ids in a heartbeat, checking only that
 * each record names the heartbeating instance: the cheap check for a
 * heartbeat that will not write (heartbeatRecordsOf checks everything
 * before one that does). Deferred records are taken at their word.
 */
export function heartbeatRecordCount(instanceId: string, records: HeartbeatRecords): number {
  text(instanceId, 'instanceId');
  if (isDeferred(records)) {
    if (!Number.isSafeInteger(records.count) || records.count < 0) throw new PresenceInputError('count must be a non-negative integer');
    return records.count;
  }
  if (!Array.isArray(records)) throw new PresenceInputError('records must be an array');
  const ids = new Set<unknown>();
  for (const record of records) {
    if (record?.instanceId !== instanceId) throw new PresenceInputError('every record must belong to the heartbeating instance');
    ids.add(record.id);
  }
  return ids.size;
}

function isDeferred(records: HeartbeatRecords): records is DeferredRecords {
  return !Array.isArray(records) && typeof (records as Partial<DeferredRecords> | null)?.records === 'function';
}

/** Throws PresenceInputError unless limit and offset are non-negative integers within the window and filters are names. */
export function checkPresenceQuery(query: PresenceQuery): void {
  for (const field of ['limit', 'offset'] as const) {
    const value = query[field];
    if (!Number.isSafeInteger(value) || value < 0) throw new PresenceInputError(`${field} must be a non-negative integer`);
  }
  if (query.offset + query.limit > MAX_PRESENCE_WINDOW) {
    throw new PresenceInputError(`offset + limit must be at most ${MAX_PRESENCE_WINDOW}`);
  }
  if (query.userId !== undefined) text(query.userId, 'userId');
  if (query.room !== undefined) text(query.room, 'room');
}

/** The list order of the contract: connectedAt, then id as UTF-8 bytes, then instanceId. */
export function comparePresenceOrder(a: ClientRecord, b: ClientRecord): number {
  const byTime = Date.parse(a.connectedAt) - Date.parse(b.connectedAt);
  if (byTime !== 0) return byTime;
  return compareUtf8(a.id, b.id) || compareUtf8(a.instanceId, b.instanceId);
}

/**
 * Byte order of the UTF-8 encodings (that is, code point order), which is
 * how Redis orders members with equal scores. Plain `<` compares UTF-16
 * units and would put astral characters before U+E000..U+FFFF.
 */
export function compareUtf8(a: string, b: string): number {
  if (a === b) return 0;
  const length = Math.min(a.length, b.length);
  for (let index = 0; index < length; index += 1) {
    const x = a.charCodeAt(index);
    const y = b.charCodeAt(index);
    if (x === y) continue;
    const xAstral = x >= 0xd800 && x <= 0xdfff;
    const yAstral = y >= 0xd800 && y <= 0xdfff;
    // Equal prefixes mean both sit at the same pair boundary, so a surrogate
    // here starts an astral code point, above every BMP one.
    if (xAstral !== yAstral) return xAstral ? 1 : -1;
    return x - y;
  }
  return a.length - b.length;
}
