import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Closeable } from '../../src/application/ports/lifecycle.port.ts';
import type { ClientRecord, PresenceRegistry } from '../../src/application/ports/presence-registry.port.ts';
import { MAX_PRESENCE_WINDOW } from '../../src/application/ports/presence-registry.port.ts';

/**
 * One isolated cluster store: registries made by one harness share it and
 * see nothing of another harness's.
 */
export interface PresenceHarness {
  /** The liveness TTL every registry of this harness was built with. */
  readonly ttlMs: number;
  /** A registry as one instance's process holds it. Cleanup closes it. */
  makeRegistry(): Promise<PresenceRegistry & Closeable>;
  /** Lets time pass on the store's clock: advances a manual clock, or waits on the real one. */
  elapse(ms: number): Promise<void>;
  /** Loses everything the store holds for this cluster, as a Redis restart does. */
  loseData(): Promise<void>;
  cleanup(): Promise<void>;
}

const T0 = Date.parse('2026-11-21T10:00:00.000Z');
const FIELDS = ['id', 'userId', 'instanceId', 'state', 'rooms', 'encrypted', 'connectedAt', 'lastActivity'];

/** A record connected `second` seconds after T0. */
function record(id: string, instanceId: string, second: number, overrides: Partial<ClientRecord> = {}): ClientRecord {
  return {
    id,
    userId: `user-${id}`,
    instanceId,
    state: 'ENCRYPTED',
    rooms: ['ws-default'],
    encrypted: true,
    connectedAt: new Date(T0 + second * 1_000).toISOString(),
    lastActivity: new Date(T0 + second * 1_000 + 500).toISOString(),
    ...overrides,
  };
}

export function presenceRegistryContract(name: string, makeHarness: () => Promise<PresenceHarness>): void {
  describe(`PresenceRegistry contract: ${name}`, () => {
    let harness: PresenceHarness;
    /** Two instances' registries; any registry reads the whole cluster. */
    let a: PresenceRegistry & Closeable;
    let b: PresenceRegistry & Closeable;

    beforeEach(async () => {
      harness = await makeHarness();
      [a, b] = await Promise.all([harness.makeRegistry(), harness.makeRegistry()]);
    });

    afterEach(async () => {
      await harness.cleanup();
    });

    it('stores, returns and removes a record; unknown ids are null and removing them is harmless', async () => {
      const c1 = record('c-1', 'node-a', 0, { rooms: ['ws-default', 'lobby'] });
      await a.heartbeat('node-a', []);

      await a.upsert(c1);
      expect(await b.get('c-1')).toEqual(c1);

      await a.remove('c-1');
      expect(await b.get('c-1')).toBeNull();
      expect(await b.find({ limit: 10, offset: 0 })).toEqual({ count: 0, items: [] });
      await a.remove('c-1');
      await a.remove('never-existed');
      expect(await a.get('never-existed')).toBeNull();
    });

    it('replaces a record on upsert, room membership included', async () => {
      await a.heartbeat('node-a', []);
      await a.upsert(record('c-1', 'node-a', 0, { rooms: ['lobby', 'old'] }));

      const moved = record('c-1', 'node-a', 0, { rooms: ['lobby', 'new'], state: 'AUTHENTICATED', encrypted: false, lastActivity: new Date(T0 + 9_000).toISOString() });
      await a.upsert(moved);

      expect(await b.get('c-1')).toEqual(moved);
      expect(await b.find({ room: 'old', limit: 10, offset: 0 })).toEqual({ count: 0, items: [] });
      expect(await b.find({ room: 'new', limit: 10, offset: 0 })).toEqual({ count: 1, items: [moved] });
      expect(await b.find({ room: 'lobby', limit: 10, offset: 0 })).toEqual({ count: 1, items: [moved] });
      expect((await b.find({ limit: 10, offset: 0 })).count).toBe(1);
    });

    it('finds by user, by room, by both and all, across instances, with total counts', async () => {
      const c1 = record('c-1', 'node-a', 1, { userId: 'u-1', rooms: ['lobby', 'r-1'] });
      const c2 = record('c-2', 'node-a', 2, { userId: 'u-2', rooms: ['lobby'] });
      const c3 = record('c-3', 'node-b', 3, { userId: 'u-1', rooms: ['lobby', 'r-2'] });
      const c4 = record('c-4', 'node-b', 4, { userId: 'u-3', rooms: ['r-2'] });
      await a.heartbeat('node-a', [c1, c2]);
      await b.heartbeat('node-b', [c3, c4]);

      const page = { limit: 10, offset: 0 };
      expect(await a.find(page)).toEqual({ count: 4, items: [c1, c2, c3, c4] });
      expect(await a.find({ ...page, userId: 'u-1' })).toEqual({ count: 2, items: [c1, c3] });
      expect(await b.find({ ...page, room: 'lobby' })).toEqual({ count: 3, items: [c1, c2, c3] });
      expect(await b.find({ ...page, room: 'r-2' })).toEqual({ count: 2, items: [c3, c4] });
      expect(await a.find({ ...page, userId: 'u-1', room: 'r-2' })).toEqual({ count: 1, items: [c3] });
      expect(await a.find({ ...page, userId: 'u-3', room: 'lobby' })).toEqual({ count: 0, items: [] });
      expect(await a.find({ ...page, userId: 'nobody' })).toEqual({ count: 0, items: [] });
      expect(await a.find({ ...page, room: 'nowhere' })).toEqual({ count: 0, items: [] });
      expect(await a.find({ limit: 1, offset: 1, userId: 'u-1' })).toEqual({ count: 2, items: [c3] });
    });

    it('orders by connectedAt then id across instances, and pages without repeats or gaps', async () => {
      // Equal connection times on both instances, ids out of order, so the
      // tie-break and the merge between instances both matter.
      const expected = [
        record('a-0', 'node-b', 0),
        record('b-0', 'node-a', 0),
        record('b-1', 'node-b', 0),
        record('c-0', 'node-a', 0),
        record('Z-5', 'node-a', 5),
        record('a-5', 'node-b', 5),
        record('a-7', 'node-a', 7),
        record('x-7', 'node-a', 7),
        record('y-7', 'node-b', 7),
        record('m-9', 'node-b', 9),
        record('n-9', 'node-a', 9),
      ];
      const shuffled = [...expected].reverse();
      await a.heartbeat('node-a', shuffled.filter((r) => r.instanceId === 'node-a'));
      await b.heartbeat('node-b', shuffled.filter((r) => r.instanceId === 'node-b'));

      expect((await a.find({ limit: 100, offset: 0 })).items.map((r) => r.id)).toEqual(expected.map((r) => r.id));
      const pages = await Promise.all([0, 4, 8].map((offset) => b.find({ limit: 4, offset })));
      expect(pages.map((page) => page.count)).toEqual([11, 11, 11]);
      expect(pages.flatMap((page) => page.items)).toEqual(expected);
      expect(await a.find({ limit: 4, offset: 11 })).toEqual({ count: 11, items: [] });
      expect(await a.find({ limit: 0, offset: 0 })).toEqual({ count: 11, items: [] });
      expect(await a.find({ limit: 0, offset: 0, userId: 'user-x-7' })).toEqual({ count: 1, items: [] });
    });

    it('stores exactly the ClientRecord fields, whatever rides along on the object it is given', async () => {
      const c1 = record('c-1', 'node-a', 0);
      const c2 = record('c-2', 'node-a', 1);
      const carrying = (r: ClientRecord) => ({ ...r, sharedKey: 'secret-key', token: 'eyJ.secret', socket: { fd: 3 } }) as ClientRecord;
      await a.heartbeat('node-a', [carrying(c1)]);
      await a.upsert(carrying(c2));

      const found = await b.find({ limit: 10, offset: 0 });
      const got = await b.get('c-2');

      expect(found.items).toEqual([c1, c2]);
      expect(got).toEqual(c2);
      for (const item of [...found.items, got!]) expect(Object.keys(item).sort()).toEqual([...FIELDS].sort());
      expect(JSON.stringify(found)).not.toMatch(/secret/);
    });

    it('returns copies: changing what went in or came out changes nothing stored', async () => {
      const c1 = record('c-1', 'node-a', 0, { rooms: ['lobby'] });
      await a.heartbeat('node-a', []);
      await a.upsert(c1);
      c1.rooms.push('sneaked-in');

      const got = await b.get('c-1');
      got!.rooms.push('sneaked-out');
      got!.userId = 'changed';

      expect(await b.get('c-1')).toEqual(record('c-1', 'node-a', 0, { rooms: ['lobby'] }));
    });

    it("shows an instance's records only once it has heartbeaten", async () => {
      const c1 = record('c-1', 'node-a', 0);
      await a.upsert(c1);

      expect(await b.get('c-1')).toBeNull();
      expect(await b.find({ limit: 10, offset: 0 })).toEqual({ count: 0, items: [] });
      expect(await b.instances()).toEqual([]);

      await a.heartbeat('node-a', [c1]);
      expect(await b.get('c-1')).toEqual(c1);
      expect(await b.instances()).toEqual(['node-a']);
    });

    it('drops an instance that stops heartbeating within the TTL and keeps the live one', async () => {
      const a1 = record('a-1', 'node-a', 0, { userId: 'u-1', rooms: ['lobby'] });
      const b1 = record('b-1', 'node-b', 1, { userId: 'u-1', rooms: ['lobby'] });
      await a.heartbeat('node-a', [a1]);
      await b.heartbeat('node-b', [b1]);
      expect(await b.instances()).toEqual(['node-a', 'node-b']);

      // B beats once more; A has gone silent (crashed) by the second step.
      await harness.elapse(harness.ttlMs * 0.6);
      await b.heartbeat('node-b', [b1]);
      await harness.elapse(harness.ttlMs * 0.6);

      expect(await b.instances()).toEqual(['node-b']);
      expect(await b.get('a-1')).toBeNull();
      expect(await b.get('b-1')).toEqual(b1);
      expect(await b.find({ limit: 10, offset: 0 })).toEqual({ count: 1, items: [b1] });
      expect(await b.find({ userId: 'u-1', limit: 10, offset: 0 })).toEqual({ count: 1, items: [b1] });
      expect(await b.find({ room: 'lobby', limit: 10, offset: 0 })).toEqual({ count: 1, items: [b1] });

      // A recovers (a long pause, not a crash) and is listed again.
      await a.heartbeat('node-a', [a1]);
      expect(await b.find({ limit: 10, offset: 0 })).toEqual({ count: 2, items: [a1, b1] });
    });

    it('reconciles on heartbeat: records the owner no longer reports are gone', async () => {
      const c1 = record('c-1', 'node-a', 0, { rooms: ['lobby'] });
      const c2 = record('c-2', 'node-a', 1, { rooms: ['lobby', 'old'] });
      await a.heartbeat('node-a', [c1, c2]);
      await b.heartbeat('node-b', [record('b-1', 'node-b', 2)]);

      const c2Now = { ...c2, rooms: ['new'], lastActivity: new Date(T0 + 60_000).toISOString() };
      await a.heartbeat('node-a', [c2Now]);

      expect(await b.get('c-1')).toBeNull();
      expect(await b.get('c-2')).toEqual(c2Now);
      expect(await b.find({ room: 'lobby', limit: 10, offset: 0 })).toEqual({ count: 0, items: [] });
      expect(await b.find({ room: 'old', limit: 10, offset: 0 })).toEqual({ count: 0, items: [] });
      expect(await b.find({ room: 'new', limit: 10, offset: 0 })).toEqual({ count: 1, items: [c2Now] });
      expect((await b.find({ limit: 10, offset: 0 })).items.map((r) => r.id)).toEqual(['c-2', 'b-1']);
    });

    it("replaces what a previous process with the same instance id left, on the new one's first heartbeat", async () => {
      const left = record('old-1', 'node-a', 0, { userId: 'u-1', rooms: ['lobby'] });
      await a.heartbeat('node-a', [left]);
      await a.close();

      // Same instance id, same number of records: only the restart tells them apart.
      const restarted = await harness.makeRegistry();
      const fresh = record('new-1', 'node-a', 5, { userId: 'u-2', rooms: ['other'] });
      await restarted.heartbeat('node-a', [fresh]);

      expect(await b.get('old-1')).toBeNull();
      expect(await b.find({ limit: 10, offset: 0 })).toEqual({ count: 1, items: [fresh] });
      expect(await b.find({ room: 'lobby', limit: 10, offset: 0 })).toEqual({ count: 0, items: [] });
      expect(await b.find({ userId: 'u-1', limit: 10, offset: 0 })).toEqual({ count: 0, items: [] });
    });

    it('is repopulated by the next heartbeats after the store lost its data', async () => {
      const a1 = record('a-1', 'node-a', 0, { rooms: ['lobby'] });
      const a2 = record('a-2', 'node-a', 1);
      const b1 = record('b-1', 'node-b', 2, { rooms: ['lobby'] });
      await a.heartbeat('node-a', [a1, a2]);
      await b.heartbeat('node-b', [b1]);

      await harness.loseData();
      expect(await a.instances()).toEqual([]);
      expect(await a.find({ limit: 10, offset: 0 })).toEqual({ count: 0, items: [] });
      expect(await a.get('a-1')).toBeNull();

      await a.heartbeat('node-a', [a1, a2]);
      expect(await b.instances()).toEqual(['node-a']);
      expect(await b.find({ limit: 10, offset: 0 })).toEqual({ count: 2, items: [a1, a2] });

      await b.heartbeat('node-b', [b1]);
      expect(await a.find({ limit: 10, offset: 0 })).toEqual({ count: 3, items: [a1, a2, b1] });
      expect(await a.find({ room: 'lobby', limit: 10, offset: 0 })).toEqual({ count: 2, items: [a1, b1] });
    });

    it('builds deferred records only when it rewrites, and beats on their count otherwise', async () => {
      const a1 = record('a-1', 'node-a', 0);
      const a2 = record('a-2', 'node-a', 1);
      let built = 0;
      const deferred = (list: ClientRecord[]) => ({
        count: list.length,
        records: () => {
          built++;
          return list;
        },
      });
      await a.heartbeat('node-a', deferred([a1, a2])); // first heartbeat: a rewrite
      expect(built).toBe(1);
      expect(await b.find({ limit: 10, offset: 0 })).toEqual({ count: 2, items: [a1, a2] });

      await a.heartbeat('node-a', deferred([a1, a2])); // the store holds what was written: no records needed
      expect(built).toBe(1);
      expect(await b.instances()).toEqual(['node-a']);

      await harness.loseData();
      await a.heartbeat('node-a', deferred([a1, a2])); // the store lost them: rewritten
      expect(built).toBe(2);
      expect(await b.find({ limit: 10, offset: 0 })).toEqual({ count: 2, items: [a1, a2] });

      await a.heartbeat('node-a', deferred([a1])); // the count drifted (a remove that never arrived): rewritten
      expect(built).toBe(3);
      expect(await b.get('a-2')).toBeNull();

      await expect(a.heartbeat('node-a', { count: -1, records: () => [] })).rejects.toThrow(/count/);
    });

    it('lists live instances sorted by id', async () => {
      const c = await harness.makeRegistry();
      await c.heartbeat('node:c', []);
      await b.heartbeat('node-b', []);
      await a.heartbeat('node-a', []);

      expect(await a.instances()).toEqual(['node-a', 'node-b', 'node:c']);
    });

    it('keeps instance ids, user ids and room names with separators and glob characters apart', async () => {
      // Unescaped, instance "a" with user "x:clients" and instance "a:user:x"
      // would write the same key.
      const plain = record('c-1', 'a', 0, { userId: 'x:clients', rooms: ['odd room*?[x]\\é ✓', 'r:1'] });
      const tricky = record('c-2', 'a:user:x', 1, { userId: 'x', rooms: ['r'] });
      await a.heartbeat('a', [plain]);
      await b.heartbeat('a:user:x', [tricky]);

      expect(await a.get('c-1')).toEqual(plain);
      expect(await a.get('c-2')).toEqual(tricky);
      expect(await a.find({ limit: 10, offset: 0 })).toEqual({ count: 2, items: [plain, tricky] });
      expect(await a.find({ userId: 'x:clients', limit: 10, offset: 0 })).toEqual({ count: 1, items: [plain] });
      expect(await a.find({ userId: 'x', limit: 10, offset: 0 })).toEqual({ count: 1, items: [tricky] });
      expect(await a.find({ room: 'odd room*?[x]\\é ✓', limit: 10, offset: 0 })).toEqual({ count: 1, items: [plain] });
      expect(await a.find({ room: 'r', limit: 10, offset: 0 })).toEqual({ count: 1, items: [tricky] });
    });

    it('refuses records and queries no caller should build', async () => {
      const bad = (overrides: Record<string, unknown>) => ({ ...record('c-1', 'node-a', 0), ...overrides }) as ClientRecord;
      const refused = { code: 'ERR_PRESENCE_INPUT' };

      await expect(a.upsert(bad({ state: 'CONNECTING' }))).rejects.toMatchObject(refused);
      await expect(a.upsert(bad({ connectedAt: 'yesterday' }))).rejects.toMatchObject(refused);
      await expect(a.upsert(bad({ rooms: 'lobby' }))).rejects.toMatchObject(refused);
      await expect(a.upsert(bad({ userId: '' }))).rejects.toMatchObject(refused);
      await expect(a.heartbeat('node-a', [record('c-1', 'node-b', 0)])).rejects.toMatchObject(refused);
      await b.heartbeat('node-b', []);
      // A heartbeat that would not write checks ownership all the same.
      await expect(b.heartbeat('node-b', [record('c-1', 'node-a', 0)])).rejects.toMatchObject(refused);
      await expect(a.find({ limit: -1, offset: 0 })).rejects.toMatchObject(refused);
      await expect(a.find({ limit: 10, offset: 1.5 })).rejects.toMatchObject(refused);
      await expect(a.find({ limit: 100, offset: MAX_PRESENCE_WINDOW - 99 })).rejects.toMatchObject(refused);
      expect(await a.find({ limit: 100, offset: MAX_PRESENCE_WINDOW - 100 })).toEqual({ count: 0, items: [] });
      expect(await b.instances()).toEqual(['node-b']);
      expect(await b.find({ limit: 10, offset: 0 })).toEqual({ count: 0, items: [] });
    });

    it('refuses calls once closed and closes idempotently', async () => {
      await a.close();
      await a.close();

      await expect(a.get('c-1')).rejects.toMatchObject({ code: 'ERR_PRESENCE_CLOSED' });
      await expect(a.heartbeat('node-a', [])).rejects.toMatchObject({ code: 'ERR_PRESENCE_CLOSED' });
      // The other instance is unaffected.
      await b.heartbeat('node-b', []);
      expect(await b.instances()).toEqual(['node-b']);
    });
  });
}
