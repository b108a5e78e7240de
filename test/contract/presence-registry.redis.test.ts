import fc from 'fast-check';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { InMemoryPresenceHub, InMemoryPresenceRegistry } from '../../src/adapters/memory/in-memory-presence-registry.ts';
import { RedisPresenceRegistry } from '../../src/adapters/redis/redis-presence-registry.ts';
import { ManualClock } from '../../src/adapters/system/system-clock.ts';
import type { ClientRecord, PresenceQuery, PresenceRegistry } from '../../src/application/ports/presence-registry.port.ts';
import { REDIS_URL, uniquePrefix } from '../fixtures/env.ts';
import { PrivateRedis } from '../fixtures/private-redis.ts';
import { deleteKeysWithPrefix, keysWithPrefix } from '../fixtures/redis-keys.ts';
import { settle, waitFor } from '../fixtures/wait-for.ts';
import type { PresenceHarness } from './presence-registry.contract.ts';
import { presenceRegistryContract } from './presence-registry.contract.ts';

/** Short enough to watch an instance expire in a test, long enough for scheduling jitter. */
const TEST_TTL_MS = 1_500;

/** A harness on the shared Redis, isolated from every other suite by its prefix. */
interface RedisPresenceHarness extends PresenceHarness {
  prefix: string;
  /** A plain connection for looking at the keys. */
  admin: Redis;
  makeRegistry(): Promise<RedisPresenceRegistry>;
}

async function redisHarness(prefix = uniquePrefix('presence'), ttlMs = TEST_TTL_MS): Promise<RedisPresenceHarness> {
  const registries: RedisPresenceRegistry[] = [];
  const admin = new Redis(REDIS_URL, { lazyConnect: true });
  await admin.connect();
  return {
    prefix,
    admin,
    ttlMs,
    async makeRegistry() {
      const registry = new RedisPresenceRegistry({ url: REDIS_URL, channelPrefix: prefix, ttlMs });
      registries.push(registry);
      await waitFor(() => registry.health().ready, 5_000, 'presence registry connected');
      return registry;
    },
    async elapse(ms) {
      // Liveness is judged by the Redis server's clock, so real time must pass.
      await settle(ms);
    },
    async loseData() {
      await deleteKeysWithPrefix(admin, prefix);
    },
    async cleanup() {
      await Promise.all(registries.map((registry) => registry.close()));
      await deleteKeysWithPrefix(admin, prefix);
      await admin.quit();
    },
  };
}

presenceRegistryContract('RedisPresenceRegistry', () => redisHarness());

async function connectionIdNamed(admin: Redis, name: string): Promise<string> {
  const list = (await admin.client('LIST')) as string;
  const line = list.split('\n').find((entry) => entry.includes(` name=${name} `));
  const id = /\bid=(\d+)/.exec(line ?? '')?.[1];
  if (id === undefined) throw new Error(`no connection named ${name}`);
  return id;
}

function record(id: string, instanceId: string, overrides: Partial<ClientRecord> = {}): ClientRecord {
  return {
    id,
    userId: 'u-1',
    instanceId,
    state: 'ENCRYPTED',
    rooms: ['ws-default', 'lobby'],
    encrypted: true,
    connectedAt: '2026-11-21T10:00:00.000Z',
    lastActivity: '2026-11-21T10:00:05.000Z',
    ...overrides,
  };
}

describe('RedisPresenceRegistry on a shared Redis', () => {
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    await Promise.all(cleanups.splice(0).map((cleanup) => cleanup()));
  });

  async function harness(ttlMs?: number): Promise<RedisPresenceHarness> {
    const made = await redisHarness(undefined, ttlMs);
    cleanups.push(() => made.cleanup());
    return made;
  }

  it('keeps its data in the documented keys under the prefix, each expiring', async () => {
    const { prefix, admin, makeRegistry, ttlMs } = await harness();
    const registry = await makeRegistry();
    const stored = record('c-1', 'node:1');

    await registry.heartbeat('node:1', [{ ...stored, sharedKey: 'secret' } as ClientRecord]);

    const base = `${prefix}ws:presence:i:node%3A1:`;
    expect(await keysWithPrefix(admin, prefix)).toEqual(
      [`${prefix}ws:presence:instances`, `${base}all`, `${base}clients`, `${base}rooms`, `${base}sync`, `${base}users`].sort(),
    );
    const at = String(Date.parse(stored.connectedAt)).padStart(15, '0');
    const value = (await admin.hget(`${base}clients`, 'c-1'))!;
    expect(value.slice(0, 15)).toBe(at);
    expect(JSON.parse(value.slice(15))).toEqual(stored);
    expect(await admin.zrange(`${base}all`, 0, -1)).toEqual([`${at}c-1`]);
    expect(await admin.zrange(`${base}users`, 0, -1)).toEqual([`00003u-1${at}c-1`]);
    expect(await admin.zrange(`${base}rooms`, 0, -1)).toEqual([`00005lobby${at}c-1`, `00010ws-default${at}c-1`]);
    for (const key of await keysWithPrefix(admin, prefix)) {
      const pttl = await admin.pttl(key);
      expect(pttl, key).toBeGreaterThan(ttlMs);
      expect(pttl, key).toBeLessThanOrEqual(2 * ttlMs);
    }
  });

  it("lets Redis delete a crashed instance's keys by expiry, with nobody cleaning up", async () => {
    const { prefix, admin, makeRegistry } = await harness(500);
    const registry = await makeRegistry();
    await registry.heartbeat('node-a', [record('c-1', 'node-a'), record('c-2', 'node-a', { userId: 'u-2', rooms: ['x'] })]);
    expect((await keysWithPrefix(admin, prefix)).length).toBeGreaterThan(0);

    // Two TTLs after the last write the store holds nothing of it; polled, as Redis expires keys lazily and by sampling.
    const deadline = Date.now() + 5_000;
    let left = await keysWithPrefix(admin, prefix);
    while (left.length > 0 && Date.now() < deadline) {
      await settle(100);
      left = await keysWithPrefix(admin, prefix);
    }
    expect(left).toEqual([]);
  });

  it('rewrites on the next heartbeat after one of its writes failed', async () => {
    const { admin, prefix } = await harness();
    const name = `kill-me-${prefix.slice(0, -1)}`;
    const registry = new RedisPresenceRegistry({ url: REDIS_URL, channelPrefix: prefix, instanceId: name });
    cleanups.push(() => registry.close());
    const before = record('c-1', 'node-a', { rooms: ['lobby'] });
    await registry.heartbeat('node-a', [before]);

    // Cut this registry's connection (and only it), then write while it reconnects.
    const id = await connectionIdNamed(admin, `signal-presence-${name}`);
    await admin.client('KILL', 'ID', id);
    await waitFor(() => !registry.health().ready, 5_000, 'registry to notice');
    const moved = { ...before, rooms: ['elsewhere'] };
    await expect(registry.upsert(moved)).rejects.toMatchObject({ code: 'ERR_PRESENCE_UNAVAILABLE' });
    await waitFor(() => registry.health().ready, 5_000, 'registry to reconnect');

    // Same count as stored, so only the failed write can tell the heartbeat to rewrite.
    await registry.heartbeat('node-a', [moved]);
    expect(await registry.find({ room: 'elsewhere', limit: 10, offset: 0 })).toEqual({ count: 1, items: [moved] });
    expect(await registry.find({ room: 'lobby', limit: 10, offset: 0 })).toEqual({ count: 0, items: [] });
  });

  it('keeps two prefixes apart', async () => {
    const [one, two] = await Promise.all([harness(), harness()]);
    const [r1, r2] = await Promise.all([one.makeRegistry(), two.makeRegistry()]);

    await r1.heartbeat('node-a', [record('c-1', 'node-a')]);
    await r2.heartbeat('node-b', [record('c-2', 'node-b')]);

    expect(await r1.instances()).toEqual(['node-a']);
    expect((await r1.find({ limit: 10, offset: 0 })).items.map((r) => r.id)).toEqual(['c-1']);
    expect(await r2.get('c-1')).toBeNull();
  });

  it('reports health: ready once connected, not ready after close', async () => {
    const { makeRegistry } = await harness();
    const registry = await makeRegistry();

    expect(registry.health()).toEqual({ name: 'presence', ready: true });
    await registry.close();
    expect(registry.health()).toEqual({ name: 'presence', ready: false, detail: 'closed' });
  });

  it('fails fast, without queueing, when Redis cannot be reached', async () => {
    const registry = new RedisPresenceRegistry({ url: 'redis://127.0.0.1:1' });
    cleanups.push(() => registry.close());

    const started = Date.now();
    await expect(registry.heartbeat('node-a', [])).rejects.toMatchObject({ code: 'ERR_PRESENCE_UNAVAILABLE' });
    await expect(registry.upsert(record('c-1', 'node-a'))).rejects.toMatchObject({ code: 'ERR_PRESENCE_UNAVAILABLE' });
    await expect(registry.find({ limit: 1, offset: 0 })).rejects.toMatchObject({ code: 'ERR_PRESENCE_UNAVAILABLE' });
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(registry.health().ready).toBe(false);
  });
});

describe('RedisPresenceRegistry across a Redis crash and restart', () => {
  let redis: PrivateRedis;
  let registry: RedisPresenceRegistry;

  beforeAll(async () => {
    redis = await PrivateRedis.start();
    registry = new RedisPresenceRegistry({ url: redis.url, ttlMs: 5_000, instanceId: 'node-a' });
  });

  afterAll(async () => {
    await registry?.close();
    await redis?.kill();
  });

  it('rejects promptly while Redis is down and is repopulated by the first heartbeat after', async () => {
    const live = [record('c-1', 'node-a'), record('c-2', 'node-a', { userId: 'u-2', rooms: ['lobby'] })];
    await registry.heartbeat('node-a', live);
    expect((await registry.find({ room: 'lobby', limit: 10, offset: 0 })).count).toBe(2);

    await redis.kill();
    await waitFor(() => !registry.health().ready, 5_000, 'registry to notice the crash');
    const started = Date.now();
    await expect(registry.heartbeat('node-a', live)).rejects.toMatchObject({ code: 'ERR_PRESENCE_UNAVAILABLE' });
    await expect(registry.remove('c-1')).rejects.toMatchObject({ code: 'ERR_PRESENCE_UNAVAILABLE' });
    expect(Date.now() - started).toBeLessThan(1_000);

    await redis.restart();
    await waitFor(() => registry.health().ready, 10_000, 'registry to reconnect');
    // The restarted server lost everything, its script cache included.
    expect(await registry.find({ limit: 10, offset: 0 })).toEqual({ count: 0, items: [] });

    // The remove that failed during the outage is repaired too: c-1 is gone.
    const now = live.slice(1);
    await registry.heartbeat('node-a', now);
    expect(await registry.find({ limit: 10, offset: 0 })).toEqual({ count: 1, items: now });
    expect(await registry.instances()).toEqual(['node-a']);
  });
});

/**
 * The Redis adapter and its in-memory twin, driven by the same random
 * operations, must answer every query identically. Names mix separators,
 * glob characters, case, and characters whose UTF-16 and UTF-8 orders
 * differ, and connection times collide, so the byte tie-break is exercised.
 */
const INSTANCES = ['n1', 'n:2', 'n%3A2'];
const NAMES = ['a', 'B', 'a-1', 'é', '\uFF5E', '😀', 'x:y', '*', ''];
const USERS = ['u1', 'U1', 'u:1', '😀'];
const ROOMS = ['lobby', 'r:1', 'r*', '\uFF5Eroom', '😀room'];
const TIMES = [0, 0, 1, 2].map((second) => new Date(Date.UTC(2026, 10, 21, 10, 0, second)).toISOString());

// Ids are unique per instance (as connection ids are), so `get` has one answer.
const recordArb = fc
  .record({
    instance: fc.integer({ min: 0, max: INSTANCES.length - 1 }),
    name: fc.constantFrom(...NAMES),
    userId: fc.constantFrom(...USERS),
    rooms: fc.uniqueArray(fc.constantFrom(...ROOMS), { maxLength: 3 }),
    at: fc.constantFrom(...TIMES),
    encrypted: fc.boolean(),
  })
  .map(({ instance, name, userId, rooms, at, encrypted }): ClientRecord => ({
    id: `${name}@${instance}`,
    userId,
    instanceId: INSTANCES[instance]!,
    state: encrypted ? 'ENCRYPTED' : 'AUTHENTICATED',
    rooms,
    encrypted,
    connectedAt: at,
    lastActivity: at,
  }));

type Operation =
  | { kind: 'upsert'; record: ClientRecord }
  | { kind: 'remove'; id: string }
  | { kind: 'heartbeat'; instance: string; records: ClientRecord[] };

const operationArb: fc.Arbitrary<Operation> = fc.oneof(
  { weight: 4, arbitrary: recordArb.map((record) => ({ kind: 'upsert' as const, record })) },
  { weight: 1, arbitrary: recordArb.map((record) => ({ kind: 'remove' as const, id: record.id })) },
  {
    weight: 2,
    arbitrary: fc.tuple(fc.constantFrom(...INSTANCES), fc.array(recordArb, { maxLength: 6 })).map(([instance, records]) => ({
      kind: 'heartbeat' as const,
      instance,
      records: records.map((record) => ({ ...record, id: `${record.id.split('@')[0]}@${instance}`, instanceId: instance })),
    })),
  },
);

const queryArb: fc.Arbitrary<PresenceQuery> = fc.record(
  {
    userId: fc.constantFrom(...USERS),
    room: fc.constantFrom(...ROOMS),
    limit: fc.integer({ min: 0, max: 8 }),
    offset: fc.integer({ min: 0, max: 8 }),
  },
  { requiredKeys: ['limit', 'offset'] },
);

async function apply(registry: PresenceRegistry, operation: Operation): Promise<void> {
  if (operation.kind === 'upsert') await registry.upsert(operation.record);
  else if (operation.kind === 'remove') await registry.remove(operation.id);
  else await registry.heartbeat(operation.instance, operation.records);
}

describe('RedisPresenceRegistry against its in-memory twin', () => {
  let admin: Redis;
  const prefixes: string[] = [];

  beforeAll(async () => {
    admin = new Redis(REDIS_URL);
  });

  afterAll(async () => {
    for (const prefix of prefixes) await deleteKeysWithPrefix(admin, prefix);
    await admin.quit();
  });

  it('answers every query identically after the same random operations', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(operationArb, { minLength: 1, maxLength: 25 }), fc.array(queryArb, { minLength: 1, maxLength: 6 }), async (operations, queries) => {
        const prefix = uniquePrefix('presence-model');
        prefixes.push(prefix);
        const redis = new RedisPresenceRegistry({ url: REDIS_URL, channelPrefix: prefix, ttlMs: 60_000 });
        const memory = new InMemoryPresenceRegistry(new InMemoryPresenceHub(new ManualClock()), { ttlMs: 60_000 });
        try {
          // Writes first, then every instance beats once more so all of them are live.
          for (const operation of operations) {
            await apply(redis, operation);
            await apply(memory, operation);
          }
          expect(await redis.instances()).toEqual(await memory.instances());
          for (const query of [{ limit: 100, offset: 0 }, ...queries]) {
            expect(await redis.find(query), JSON.stringify(query)).toEqual(await memory.find(query));
          }
          const ids = new Set(operations.flatMap((op) => (op.kind === 'upsert' ? [op.record.id] : op.kind === 'remove' ? [op.id] : op.records.map((r) => r.id))));
          for (const id of ids) expect(await redis.get(id), id).toEqual(await memory.get(id));
        } finally {
          await redis.close();
        }
      }),
      { numRuns: 60 },
    );
  });
});
