import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Closeable, DependencyHealth, HealthReporter } from '../../application/ports/lifecycle.port.ts';
import type { Logger } from '../../application/ports/logger.port.ts';
import { silentLogger } from '../../application/ports/logger.port.ts';
import type { ClientRecord, HeartbeatRecords, PresencePage, PresenceQuery, PresenceRegistry } from '../../application/ports/presence-registry.port.ts';
import {
  DEFAULT_PRESENCE_TTL_MS,
  PresenceInputError,
  checkPresenceQuery,
  clientRecordOf,
  compareUtf8,
  heartbeatRecordCount,
  heartbeatRecordsOf,
} from '../../application/ports/presence-registry.port.ts';
import { SignalError } from '../../domain/errors.ts';
import type { RedisConnectionOptions, WatchedConnection } from './redis-connection.ts';
import { DEFAULT_COMMAND_TIMEOUT_MS, STARTING_STATES, awaitFirstReady, errorMessage, openConnection, quit, watchConnection } from './redis-connection.ts';

/** The store could not be reached (or answered with an error); nothing was queued. */
export class PresenceUnavailableError extends SignalError {
  constructor(detail: string, options?: { cause?: unknown }) {
    super('ERR_PRESENCE_UNAVAILABLE', `presence registry unavailable: ${detail}`, options);
  }
}

export interface RedisPresenceRegistryOptions extends RedisConnectionOptions {
  /** The bus's channel prefix: one prefix isolates a deployment's channels and keys alike. */
  channelPrefix?: string;
  /** Liveness after each heartbeat; default DEFAULT_PRESENCE_TTL_MS. Every instance should use the same. */
  ttlMs?: number;
  /** Only names the connection in CLIENT LIST and the log lines. */
  instanceId?: string;
  logger?: Logger;
}

/** Records per script during a full rewrite, so Redis serves other clients in between. */
const SYNC_CHUNK = 500;
/** Width of the zero-padded connectedAt (ms) leading stored values and index members. */
const AT_DIGITS = 15;

type Script = (args: Array<string | number>) => Promise<unknown>;
interface PresenceCommands {
  presenceUpsert: Script;
  presenceRemove: Script;
  presenceBeat: Script;
  presenceSyncChunk: Script;
  presenceSyncFinish: Script;
  presenceFind: Script;
  presenceGet: Script;
  presenceInstances: Script;
}

/**
 * PresenceRegistry on Redis (layout and scripts at the end of this file).
 * Readers consult only instances whose heartbeat is fresh, so a crashed
 * instance needs no clean-up. No KEYS, no SCAN: every call is a script
 * whose cost is bounded by the live instances and the page asked for.
 *
 * A heartbeat is O(1) while this registry knows the store holds what it
 * last wrote: it checks a token left by its last full rewrite and the
 * record count, then extends the TTLs. It rewrites the instance's records
 * (in chunks, so Redis is never blocked for long) only on its first
 * heartbeat, after one of its writes failed, or when the token or count
 * shows the store lost or drifted from them (a Redis restart, a remove
 * that never arrived).
 *
 * One connection without an offline queue and without resending after a
 * reconnect: while Redis is down every call fails at once instead of
 * piling up in memory. Calls on one registry reach Redis in call order.
 */
export class RedisPresenceRegistry implements PresenceRegistry, Closeable, HealthReporter {
  readonly #prefix: string;
  readonly #ttlMs: number;
  readonly #logger: Logger;
  readonly #client: Redis;
  readonly #commands: PresenceCommands;
  readonly #commandTimeoutMs: number;
  readonly #fields: Record<string, unknown>;
  readonly #connection: WatchedConnection;
  /** Per instance, the token of this registry's last complete rewrite; absent means rewrite next time. */
  readonly #tokens = new Map<string, string>();
  /** Bumped by every failed write, so a rewrite that overlapped one does not vouch for the store. */
  #failedWrites = 0;
  #closing: Promise<void> | undefined;

  constructor(options: RedisPresenceRegistryOptions = {}) {
    this.#prefix = options.channelPrefix ?? '';
    this.#ttlMs = options.ttlMs ?? DEFAULT_PRESENCE_TTL_MS;
    if (!Number.isSafeInteger(this.#ttlMs) || this.#ttlMs <= 0) throw new PresenceInputError('ttlMs must be a positive integer');
    this.#logger = options.logger ?? silentLogger;
    this.#commandTimeoutMs = options.redisOptions?.commandTimeout ?? DEFAULT_COMMAND_TIMEOUT_MS;
    this.#fields = { instanceId: options.instanceId, connection: 'presence' };
    // A write cut off by a dropped connection is rejected, not replayed
    // later over a newer state; the next heartbeat repairs instead.
    this.#client = openConnection(options, `signal-presence-${options.instanceId ?? 'any'}`, this.#commandTimeoutMs, false);
    // ioredis sends each script in full once per connection, then by SHA,
    // so a restarted Redis that forgot them is handled without NOSCRIPT retries.
    const scripts: Record<keyof PresenceCommands, string> = {
      presenceUpsert: UPSERT_SCRIPT,
      presenceRemove: REMOVE_SCRIPT,
      presenceBeat: BEAT_SCRIPT,
      presenceSyncChunk: SYNC_CHUNK_SCRIPT,
      presenceSyncFinish: SYNC_FINISH_SCRIPT,
      presenceFind: FIND_SCRIPT,
      presenceGet: GET_SCRIPT,
      presenceInstances: INSTANCES_SCRIPT,
    };
    for (const [name, lua] of Object.entries(scripts)) this.#client.defineCommand(name, { numberOfKeys: 0, lua });
    this.#commands = this.#client as unknown as PresenceCommands;
    this.#connection = watchConnection(this.#client, {
      logger: this.#logger,
      fields: () => this.#fields,
      closing: () => this.#closing !== undefined,
      announceReady: true,
    });
  }

  async upsert(record: ClientRecord): Promise<void> {
    const copy = clientRecordOf(record);
    // Sent or not, a failed write leaves the store behind the owner: its
    // next heartbeat must rewrite instead of trusting the store.
    await this.#write('upsert', () => this.#tokens.delete(copy.instanceId), () =>
      this.#commands.presenceUpsert([this.#prefix, copy.instanceId, 2 * this.#ttlMs, storedValue(copy)]),
    );
  }

  async remove(clientId: string): Promise<void> {
    if (typeof clientId !== 'string') throw new PresenceInputError('clientId must be a string');
    // The owning instance is not known here, so every instance this registry beats for rewrites.
    await this.#write('remove', () => this.#tokens.clear(), () => this.#commands.presenceRemove([this.#prefix, clientId]));
  }

  async heartbeat(instanceId: string, records: HeartbeatRecords): Promise<void> {
    // Checking every field of every record would cost more than the beat itself; a rewrite checks them all.
    const count = heartbeatRecordCount(instanceId, records);
    await this.#ready('heartbeat');
    const token = this.#tokens.get(instanceId);
    if (token !== undefined) {
      const args = [this.#prefix, instanceId, this.#ttlMs, 2 * this.#ttlMs, token, count];
      if ((await this.#settle('heartbeat', this.#commands.presenceBeat(args))) === 1) return;
    }
    const copies = heartbeatRecordsOf(instanceId, records);
    const reason = token === undefined ? 'first heartbeat or an earlier write failed' : 'store lost or drifted from the records';
    this.#logger.info({ ...this.#fields, instanceId, records: copies.length, reason }, 'rewriting presence records');
    await this.#rewrite(instanceId, copies);
  }

  async find(query: PresenceQuery): Promise<PresencePage> {
    checkPresenceQuery(query);
    const { userId, room } = query;
    const mode = userId !== undefined && room !== undefined ? 'both' : userId !== undefined ? 'user' : room !== undefined ? 'room' : 'all';
    await this.#ready('find');
    const args = [this.#prefix, mode, userId ?? '', room ?? '', query.offset, query.limit];
    const [count, ...values] = (await this.#settle('find', this.#commands.presenceFind(args))) as [number, ...string[]];
    const items: ClientRecord[] = [];
    for (const value of values) {
      const record = this.#parse(value);
      if (record !== null) items.push(record);
    }
    return { count, items };
  }

  async get(clientId: string): Promise<ClientRecord | null> {
    if (typeof clientId !== 'string') throw new PresenceInputError('clientId must be a string');
    await this.#ready('get');
    const value = (await this.#settle('get', this.#commands.presenceGet([this.#prefix, clientId]))) as string | null;
    return value === null ? null : this.#parse(value);
  }

  async instances(): Promise<string[]> {
    await this.#ready('instances');
    const ids = (await this.#settle('instances', this.#commands.presenceInstances([this.#prefix]))) as string[];
    return ids.sort(compareUtf8);
  }

  health(): DependencyHealth {
    if (this.#closing !== undefined) return { name: 'presence', ready: false, detail: 'closed' };
    const status = this.#client.status;
    return status === 'ready' ? { name: 'presence', ready: true } : { name: 'presence', ready: false, detail: `redis ${status}` };
  }

  close(): Promise<void> {
    this.#closing ??= quit(this.#client);
    return this.#closing;
  }

  /**
   * Writes every record in chunks, then (in the last script) drops what
   * the list lacks, stamps a new token and marks the instance alive. All
   * scripts are issued back to back on the one connection, so a call made
   * after this one lands after the last of them.
   */
  async #rewrite(instanceId: string, copies: readonly ClientRecord[]): Promise<void> {
    this.#tokens.delete(instanceId);
    const failedWritesBefore = this.#failedWrites;
    const token = randomUUID();
    const keyTtl = 2 * this.#ttlMs;
    const pending: Array<Promise<unknown>> = [];
    for (let start = 0; start < copies.length; start += SYNC_CHUNK) {
      const values = copies.slice(start, start + SYNC_CHUNK).map(storedValue);
      pending.push(this.#commands.presenceSyncChunk([this.#prefix, instanceId, keyTtl, ...values]));
    }
    const ids = copies.map((copy) => copy.id);
    pending.push(this.#commands.presenceSyncFinish([this.#prefix, instanceId, this.#ttlMs, keyTtl, token, ...ids]));
    await this.#settle('heartbeat', Promise.all(pending));
    if (this.#failedWrites === failedWritesBefore) this.#tokens.set(instanceId, token);
  }

  async #ready(operation: string): Promise<void> {
    if (this.#closing !== undefined) throw new SignalError('ERR_PRESENCE_CLOSED', 'presence registry is closed');
    const status = this.#client.status;
    if (status === 'ready') return;
    // Only the very first connection is worth waiting for (a heartbeat right
    // after start-up); once it was up, not ready means down: fail fast.
    if (this.#connection.everReady || !STARTING_STATES.has(status)) throw new PresenceUnavailableError(`${operation}: redis ${status}`);
    await awaitFirstReady(this.#client, this.#commandTimeoutMs).catch((error: unknown) => {
      throw new PresenceUnavailableError(`${operation}: redis not connected: ${errorMessage(error)}`, { cause: error });
    });
  }

  async #settle(operation: string, pending: Promise<unknown>): Promise<unknown> {
    try {
      return await pending;
    } catch (error) {
      throw new PresenceUnavailableError(`${operation} failed: ${errorMessage(error)}`, { cause: error });
    }
  }

  async #write(operation: string, onFailure: () => void, send: () => Promise<unknown>): Promise<void> {
    try {
      await this.#ready(operation);
      await this.#settle(operation, send());
    } catch (error) {
      if (error instanceof PresenceUnavailableError) {
        this.#failedWrites += 1;
        onFailure();
      }
      throw error;
    }
  }

  /** Records are written only by this class, so one that does not parse is reported, not returned. */
  #parse(value: string): ClientRecord | null {
    try {
      return clientRecordOf(JSON.parse(value.slice(AT_DIGITS)) as ClientRecord);
    } catch (error) {
      this.#logger.warn({ ...this.#fields, err: errorMessage(error) }, 'skipped unreadable presence record');
      return null;
    }
  }
}

/** connectedAt as fixed-width digits, then the record: byte order of values and members is time order. */
function storedValue(record: ClientRecord): string {
  return String(Date.parse(record.connectedAt)).padStart(AT_DIGITS, '0') + JSON.stringify(record);
}

/*
 * The Lua side. Each operation is one script (a rewrite, a few), so a
 * record and its index entries change together and a reader gets a count
 * and a page from the same instant. Liveness is judged by Redis' clock
 * (TIME), so instances with skewed clocks still agree on who is alive.
 *
 * Layout, with P the channel prefix; I an instance id with `%` and `:`
 * escaped as `%25` and `%3A`, so no id reaches into another's keys; AT
 * connectedAt in ms as 15 digits; N(x) the UTF-8 byte length of x as 5
 * digits followed by x, so no user id or room is a prefix of another's
 * entries and no byte of them needs escaping:
 *   P ws:presence:instances   ZSET   instance id, score = liveness deadline (ms, Redis clock)
 *   P ws:presence:i:I:sync    STRING token of the owner's last full rewrite
 *   P ws:presence:i:I:clients HASH   client id -> AT + record JSON
 *   P ws:presence:i:I:all     ZSET   AT + client id                (all scores 0: ordered by bytes)
 *   P ws:presence:i:I:users   ZSET   N(userId) + AT + client id
 *   P ws:presence:i:I:rooms   ZSET   N(room) + AT + client id, one per room
 * A user's or room's entries are one lexicographic range, already in the
 * port's order (connectedAt, then id by bytes). The five per-instance keys
 * expire two TTLs after the instance's last write or heartbeat, one TTL
 * after it stops counting as alive: readers ignore a crashed instance
 * first, then Redis deletes its data. Refreshing them is five PEXPIREs
 * however many clients the instance holds.
 *
 * Keys are built inside the scripts from the prefix in ARGV[1], so this
 * needs a single Redis (or a primary with replicas), not Redis Cluster.
 */

const PRELUDE = `
local prefix = ARGV[1]
local INSTANCES = prefix .. 'ws:presence:instances'
local AT = ${AT_DIGITS}

local function base(instance)
  local escaped = string.gsub(instance, '%%', '%%25')
  escaped = string.gsub(escaped, ':', '%%3A')
  return prefix .. 'ws:presence:i:' .. escaped .. ':'
end

local function named(name)
  return string.format('%05d', #name) .. name
end

local function now_ms()
  local time = redis.call('TIME')
  return tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
end

local function live_instances()
  return redis.call('ZRANGEBYSCORE', INSTANCES, '(' .. now_ms(), '+inf')
end

-- Anything unreadable is skipped rather than failing the whole call.
local function decode(value)
  local ok, record = pcall(cjson.decode, string.sub(value, AT + 1))
  if not ok or type(record) ~= 'table' or type(record.id) ~= 'string' or type(record.userId) ~= 'string' or type(record.rooms) ~= 'table' then
    return nil
  end
  return record, string.sub(value, 1, AT)
end

local function each_entry(b, record, at, fn)
  local tail = at .. record.id
  fn(b .. 'all', tail)
  fn(b .. 'users', named(record.userId) .. tail)
  for _, room in ipairs(record.rooms) do
    if type(room) == 'string' then fn(b .. 'rooms', named(room) .. tail) end
  end
end

local function add(key, member) redis.call('ZADD', key, 0, member) end
local function drop(key, member) redis.call('ZREM', key, member) end

local function erase(b, id)
  local previous = redis.call('HGET', b .. 'clients', id)
  if not previous then return 0 end
  local old, old_at = decode(previous)
  if old then each_entry(b, old, old_at, drop) end
  redis.call('HDEL', b .. 'clients', id)
  return 1
end

-- Entries are added even when the value is unchanged: that repairs an index lost on its own.
local function write(b, value)
  local record, at = decode(value)
  if record == nil then return end
  local previous = redis.call('HGET', b .. 'clients', record.id)
  if previous and previous ~= value then
    local old, old_at = decode(previous)
    if old then each_entry(b, old, old_at, drop) end
  end
  redis.call('HSET', b .. 'clients', record.id, value)
  each_entry(b, record, at, add)
end

local function touch(b, key_ttl)
  for _, suffix in ipairs({ 'sync', 'clients', 'all', 'users', 'rooms' }) do redis.call('PEXPIRE', b .. suffix, key_ttl) end
end

local function mark_alive(instance, ttl, key_ttl)
  local now = now_ms()
  redis.call('ZADD', INSTANCES, now + ttl, instance)
  -- Dead instances leave the list here, so it stays as long as the cluster is wide.
  redis.call('ZREMRANGEBYSCORE', INSTANCES, '-inf', now)
  if redis.call('PTTL', INSTANCES) < key_ttl then redis.call('PEXPIRE', INSTANCES, key_ttl) end
end
`;

/** ARGV: prefix, instance id, keyTtlMs, stored value. */
const UPSERT_SCRIPT = `${PRELUDE}
local b = base(ARGV[2])
write(b, ARGV[4])
touch(b, tonumber(ARGV[3]))
return 1
`;

/** ARGV: prefix, client id. Looks in every instance still listed, alive or not. */
const REMOVE_SCRIPT = `${PRELUDE}
local removed = 0
for _, instance in ipairs(redis.call('ZRANGE', INSTANCES, 0, -1)) do
  removed = removed + erase(base(instance), ARGV[2])
end
return removed
`;

/** ARGV: prefix, instance id, ttlMs, keyTtlMs, token, record count. Returns 0 when a rewrite is needed. */
const BEAT_SCRIPT = `${PRELUDE}
local instance, ttl, key_ttl, token, count = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5], tonumber(ARGV[6])
local b = base(instance)
if redis.call('GET', b .. 'sync') ~= token then return 0 end
if redis.call('HLEN', b .. 'clients') ~= count then return 0 end
mark_alive(instance, ttl, key_ttl)
touch(b, key_ttl)
return 1
`;

/** ARGV: prefix, instance id, keyTtlMs, stored values... */
const SYNC_CHUNK_SCRIPT = `${PRELUDE}
local b = base(ARGV[2])
for i = 4, #ARGV do write(b, ARGV[i]) end
touch(b, tonumber(ARGV[3]))
return 1
`;

/** ARGV: prefix, instance id, ttlMs, keyTtlMs, token, every client id the owner holds. */
const SYNC_FINISH_SCRIPT = `${PRELUDE}
local instance, ttl, key_ttl, token = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5]
local b = base(instance)
local kept = {}
for i = 6, #ARGV do kept[ARGV[i]] = true end
for _, id in ipairs(redis.call('HKEYS', b .. 'clients')) do
  if not kept[id] then erase(b, id) end
end
redis.call('SET', b .. 'sync', token)
mark_alive(instance, ttl, key_ttl)
touch(b, key_ttl)
return 1
`;

/**
 * ARGV: prefix, mode (all | user | room | both), userId, room, offset, limit.
 * Returns { count, stored value... }. Each live instance contributes at
 * most offset + limit entries of a range that is already sorted, and the
 * ranges are merged by always taking the smallest head, so the cost is
 * bounded by instances x (offset + limit) (at most MAX_PRESENCE_WINDOW);
 * with both filters, by the smaller of the user's and the room's entries.
 */
const FIND_SCRIPT = `${PRELUDE}
local mode, user, room = ARGV[2], ARGV[3], ARGV[4]
local offset, limit = tonumber(ARGV[5]), tonumber(ARGV[6])
local wanted = offset + limit

-- Lua's string comparison follows the server's locale; the port's order is bytes.
local function bytes_before(x, y)
  if x == y then return false end
  for i = 1, math.min(#x, #y) do
    local p, q = string.byte(x, i), string.byte(y, i)
    if p ~= q then return p < q end
  end
  return #x < #y
end

-- Entries of a name: the name's prefix followed by AT's digits, all below ':'.
local function bounds(name)
  local head = named(name)
  return '[' .. head, '(' .. head .. ':', #head
end

-- One sorted run per live instance; a run's head is its next entry with the name prefix cut off.
local runs = {}
local count = 0
local function add_run(instance, members, skip)
  if #members > 0 then runs[#runs + 1] = { instance = instance, members = members, skip = skip, pos = 0 } end
end

for _, instance in ipairs(live_instances()) do
  local b = base(instance)
  if mode == 'all' then
    count = count + redis.call('ZCARD', b .. 'all')
    if wanted > 0 then add_run(instance, redis.call('ZRANGE', b .. 'all', 0, wanted - 1), 0) end
  elseif mode == 'both' then
    local walk_key, walk_name, probe_key, probe_name = b .. 'users', user, b .. 'rooms', room
    local walk_low, walk_high, walk_skip = bounds(walk_name)
    local probe_low, probe_high = bounds(probe_name)
    if redis.call('ZLEXCOUNT', probe_key, probe_low, probe_high) < redis.call('ZLEXCOUNT', walk_key, walk_low, walk_high) then
      walk_key, walk_name, probe_key, probe_name = probe_key, probe_name, walk_key, walk_name
      walk_low, walk_high, walk_skip = bounds(walk_name)
    end
    local probe_head = named(probe_name)
    local matched = {}
    for _, member in ipairs(redis.call('ZRANGEBYLEX', walk_key, walk_low, walk_high)) do
      local tail = string.sub(member, walk_skip + 1)
      if redis.call('ZSCORE', probe_key, probe_head .. tail) then matched[#matched + 1] = tail end
    end
    count = count + #matched
    add_run(instance, matched, 0)
  else
    local key, name = b .. 'users', user
    if mode == 'room' then key, name = b .. 'rooms', room end
    local low, high, skip = bounds(name)
    count = count + redis.call('ZLEXCOUNT', key, low, high)
    if wanted > 0 then add_run(instance, redis.call('ZRANGEBYLEX', key, low, high, 'LIMIT', 0, wanted), skip) end
  end
end

local function advance(run)
  run.pos = run.pos + 1
  local member = run.members[run.pos]
  if member == nil then
    run.tail = nil
    return
  end
  run.tail = string.sub(member, run.skip + 1)
  run.at = tonumber(string.sub(run.tail, 1, AT))
end

-- connectedAt as a number settles almost every comparison; bytes break ties.
local function before(x, y)
  if x.at ~= y.at then return x.at < y.at end
  if x.tail ~= y.tail then return bytes_before(x.tail, y.tail) end
  return bytes_before(x.instance, y.instance)
end

for _, run in ipairs(runs) do advance(run) end
local result = { count }
for taken = 1, wanted do
  local best = nil
  for _, run in ipairs(runs) do
    if run.tail ~= nil and (best == nil or before(run, best)) then best = run end
  end
  if best == nil then break end
  if taken > offset then
    local value = redis.call('HGET', base(best.instance) .. 'clients', string.sub(best.tail, AT + 1))
    if value then result[#result + 1] = value end
  end
  advance(best)
end
return result
`;

/** ARGV: prefix, client id. Returns the stored value from the first live instance holding it, or nil. */
const GET_SCRIPT = `${PRELUDE}
for _, instance in ipairs(live_instances()) do
  local value = redis.call('HGET', base(instance) .. 'clients', ARGV[2])
  if value then return value end
end
return false
`;

/** ARGV: prefix. Returns the live instance ids. */
const INSTANCES_SCRIPT = `${PRELUDE}
return live_instances()
`;
