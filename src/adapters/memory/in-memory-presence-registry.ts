import { randomUUID } from 'node:crypto';
import type { Clock } from '../../application/ports/clock.port.ts';
import type { Closeable } from '../../application/ports/lifecycle.port.ts';
import type { ClientRecord, HeartbeatRecords, PresencePage, PresenceQuery, PresenceRegistry } from '../../application/ports/presence-registry.port.ts';
import {
  DEFAULT_PRESENCE_TTL_MS,
  PresenceInputError,
  checkPresenceQuery,
  clientRecordOf,
  comparePresenceOrder,
  compareUtf8,
  heartbeatRecordCount,
  heartbeatRecordsOf,
} from '../../application/ports/presence-registry.port.ts';
import { SignalError } from '../../domain/errors.ts';
import { SystemClock } from '../system/system-clock.ts';

interface InstanceStore {
  readonly records: Map<string, ClientRecord>;
  /** Stamped by the owner's last full rewrite; a registry that finds another token (or none) rewrites. */
  syncToken: string | undefined;
  /** When the stored records would be gone in Redis: they outlive liveness by one TTL. */
  expiresAt: number;
}

/**
 * One in-process "cluster store": what the Redis server is to the presence
 * registries of several instances. It keeps liveness deadlines and each
 * instance's records, and judges liveness by its own clock, as Redis judges
 * it by the server's clock, so a ManualClock drives expiry in tests.
 */
export class InMemoryPresenceHub {
  readonly clock: Clock;
  readonly #deadlines = new Map<string, number>();
  readonly #stores = new Map<string, InstanceStore>();

  constructor(clock: Clock = new SystemClock()) {
    this.clock = clock;
  }

  /** Loses every record and every heartbeat, as a Redis restart without persistence does. */
  flush(): void {
    this.#deadlines.clear();
    this.#stores.clear();
  }

  upsert(record: ClientRecord, ttlMs: number): void {
    const store = this.#storeOf(record.instanceId, true);
    store.records.set(record.id, record);
    store.expiresAt = Math.max(store.expiresAt, this.clock.now() + 2 * ttlMs);
  }

  remove(clientId: string): void {
    for (const store of this.#stores.values()) store.records.delete(clientId);
  }

  /**
   * The cheap heartbeat: extends liveness only when the store still holds
   * the owner's last rewrite (same token, same count); false asks for a
   * rewrite.
   */
  beat(instanceId: string, token: string, count: number, ttlMs: number): boolean {
    const store = this.#storeOf(instanceId, false);
    if (store === undefined || store.syncToken !== token || store.records.size !== count) return false;
    const now = this.clock.now();
    this.#deadlines.set(instanceId, now + ttlMs);
    this.#prune(now);
    store.expiresAt = now + 2 * ttlMs;
    return true;
  }

  /** Replaces the instance's records with exactly these, stamps the token and marks it alive. */
  rewrite(instanceId: string, records: readonly ClientRecord[], token: string, ttlMs: number): void {
    const now = this.clock.now();
    this.#deadlines.set(instanceId, now + ttlMs);
    this.#prune(now);
    const store = this.#storeOf(instanceId, true);
    store.records.clear();
    for (const record of records) store.records.set(record.id, record);
    store.syncToken = token;
    store.expiresAt = now + 2 * ttlMs;
  }

  find(query: PresenceQuery): PresencePage {
    const matches: ClientRecord[] = [];
    for (const instanceId of this.instances()) {
      for (const record of this.#storeOf(instanceId, false)?.records.values() ?? []) {
        if (query.userId !== undefined && record.userId !== query.userId) continue;
        if (query.room !== undefined && !record.rooms.includes(query.room)) continue;
        matches.push(record);
      }
    }
    matches.sort(comparePresenceOrder);
    return { count: matches.length, items: matches.slice(query.offset, query.offset + query.limit) };
  }

  get(clientId: string): ClientRecord | null {
    for (const instanceId of this.instances()) {
      const record = this.#storeOf(instanceId, false)?.records.get(clientId);
      if (record !== undefined) return record;
    }
    return null;
  }

  instances(): string[] {
    const now = this.clock.now();
    const live: string[] = [];
    for (const [instanceId, deadline] of this.#deadlines) if (deadline > now) live.push(instanceId);
    return live.sort(compareUtf8);
  }

  #storeOf(instanceId: string, create: true): InstanceStore;
  #storeOf(instanceId: string, create: false): InstanceStore | undefined;
  #storeOf(instanceId: string, create: boolean): InstanceStore | undefined {
    let store = this.#stores.get(instanceId);
    if (store !== undefined && store.expiresAt <= this.clock.now()) {
      this.#stores.delete(instanceId);
      store = undefined;
    }
    if (store === undefined && create) {
      store = { records: new Map(), syncToken: undefined, expiresAt: 0 };
      this.#stores.set(instanceId, store);
    }
    return store;
  }

  /** Keeps memory bounded when instances come and go, as key expiry does in Redis. */
  #prune(now: number): void {
    for (const [instanceId, deadline] of this.#deadlines) if (deadline <= now) this.#deadlines.delete(instanceId);
    for (const [instanceId, store] of this.#stores) if (store.expiresAt <= now) this.#stores.delete(instanceId);
  }
}

export interface InMemoryPresenceRegistryOptions {
  /** Liveness after each heartbeat; default DEFAULT_PRESENCE_TTL_MS. */
  ttlMs?: number;
}

/**
 * The in-process twin of RedisPresenceRegistry: same checks on input, same
 * copies out, same liveness and ordering rules, and the same rule for when
 * a heartbeat rewrites the records (first beat, lost data, count drift).
 * Registries built on one hub behave as the instances of one cluster.
 */
export class InMemoryPresenceRegistry implements PresenceRegistry, Closeable {
  readonly #hub: InMemoryPresenceHub;
  readonly #ttlMs: number;
  /** Per instance, the token of this registry's last rewrite, as in the Redis adapter. */
  readonly #tokens = new Map<string, string>();
  readonly #id = randomUUID();
  #rewrites = 0;
  #closed = false;

  constructor(hub: InMemoryPresenceHub, options: InMemoryPresenceRegistryOptions = {}) {
    this.#hub = hub;
    this.#ttlMs = options.ttlMs ?? DEFAULT_PRESENCE_TTL_MS;
    if (!Number.isSafeInteger(this.#ttlMs) || this.#ttlMs <= 0) throw new PresenceInputError('ttlMs must be a positive integer');
  }

  async upsert(record: ClientRecord): Promise<void> {
    this.#assertOpen();
    this.#hub.upsert(clientRecordOf(record), this.#ttlMs);
  }

  async remove(clientId: string): Promise<void> {
    this.#assertOpen();
    if (typeof clientId !== 'string') throw new PresenceInputError('clientId must be a string');
    this.#hub.remove(clientId);
  }

  async heartbeat(instanceId: string, records: HeartbeatRecords): Promise<void> {
    this.#assertOpen();
    const token = this.#tokens.get(instanceId);
    if (token !== undefined && this.#hub.beat(instanceId, token, heartbeatRecordCount(instanceId, records), this.#ttlMs)) return;
    const fresh = `${this.#id}:${(this.#rewrites += 1)}`;
    this.#hub.rewrite(instanceId, heartbeatRecordsOf(instanceId, records), fresh, this.#ttlMs);
    this.#tokens.set(instanceId, fresh);
  }

  async find(query: PresenceQuery): Promise<PresencePage> {
    this.#assertOpen();
    checkPresenceQuery(query);
    const page = this.#hub.find(query);
    return { count: page.count, items: page.items.map(clientRecordOf) };
  }

  async get(clientId: string): Promise<ClientRecord | null> {
    this.#assertOpen();
    if (typeof clientId !== 'string') throw new PresenceInputError('clientId must be a string');
    const record = this.#hub.get(clientId);
    return record === null ? null : clientRecordOf(record);
  }

  async instances(): Promise<string[]> {
    this.#assertOpen();
    return this.#hub.instances();
  }

  async close(): Promise<void> {
    this.#closed = true;
  }

  #assertOpen(): void {
    if (this.#closed) throw new SignalError('ERR_PRESENCE_CLOSED', 'presence registry is closed');
  }
}
