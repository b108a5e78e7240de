import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { NotificationStore } from '../../src/application/ports/notification-store.port.ts';
import type { NewNotification, Notification } from '../../src/domain/notification.ts';

/**
 * A store and the one thing the port cannot do: soft-delete a row (other
 * services set `deleted_at`). Harnesses may share one database across
 * tests; every test uses recipients and events of its own.
 */
export interface NotificationStoreHarness {
  store: NotificationStore;
  softDelete(id: string): Promise<void>;
  cleanup?(): Promise<void>;
}

let lastId = BigInt(Date.now()) << 22n;
/** Snowflake-sized ids (beyond 2^53) so precision loss would show. */
function nextId(): string {
  lastId += 1n;
  return lastId.toString();
}

const BASE_TIME = Date.parse('2026-11-21T10:00:00.000Z');

export function notificationStoreContract(name: string, makeHarness: () => Promise<NotificationStoreHarness>): void {
  describe(`NotificationStore contract: ${name}`, () => {
    let harness: NotificationStoreHarness;
    let store: NotificationStore;
    let tag: string;

    beforeEach(async () => {
      harness = await makeHarness();
      store = harness.store;
      tag = randomUUID().slice(0, 8);
    });

    afterEach(async () => {
      await harness.cleanup?.();
    });

    const user = (name: string): string => `${name}-${tag}`;
    const event = (name: string): string => `${name}-${tag}`;

    function row(overrides: Partial<NewNotification> & { recipientId: string }, secondsAfterBase = 0): NewNotification {
      return {
        id: nextId(),
        eventId: event('e1'),
        actorId: user('actor'),
        type: 'PAYMENT_SUCCESS',
        title: 'Payment received',
        content: '**250,000 VND** for order `SO-1001`',
        html: '<p><strong>250,000 VND</strong> for order <code>SO-1001</code></p>',
        metadata: { orderCode: 'SO-1001', amount: 250000, nested: { currency: 'VND', tags: ['a', 'b'] } },
        createdAt: new Date(BASE_TIME + secondsAfterBase * 1000),
        ...overrides,
      };
    }

    /** Inserts rows for one recipient, one event each, `createdAt` one second apart (the last newest). */
    async function seedFeed(recipientId: string, count: number): Promise<Notification[]> {
      const rows = Array.from({ length: count }, (_, index) => row({ recipientId, eventId: event(`feed-${index}`) }, index));
      return store.insertMany(rows);
    }

    describe('insertMany', () => {
      it('returns the created rows, unread, with every field as written', async () => {
        const written = row({ recipientId: user('a'), content: 'Unicode ✓ — "quotes" \\ back\\slash and a ? mark', metadata: { deep: { list: [1, 'two', null, true] }, quote: "it's" } });
        const created = await store.insertMany([written]);

        expect(created).toEqual([{ ...written, isRead: false, readAt: null }]);
        const listed = await store.list(user('a'), { limit: 10, offset: 0 });
        expect(listed.items).toEqual([{ ...written, isRead: false, readAt: null }]);
      });

      it('creates nothing for an empty batch', async () => {
        expect(await store.insertMany([])).toEqual([]);
      });

      it('is idempotent: a second delivery returns only the rows that are new', async () => {
        const first = [row({ recipientId: user('a') }), row({ recipientId: user('b') })];
        expect(await store.insertMany(first)).toHaveLength(2);

        // A redelivery generates fresh ids; the (eventId, recipientId) key is what counts.
        const redelivered = first.map((existing) => ({ ...existing, id: nextId() }));
        const newcomer = row({ recipientId: user('c') });
        const second = await store.insertMany([...redelivered, newcomer]);

        expect(second.map((created) => created.id)).toEqual([newcomer.id]);
        expect(await store.count(user('a'), {})).toBe(1);
        expect(await store.count(user('b'), {})).toBe(1);
        expect(await store.count(user('c'), {})).toBe(1);
      });

      it('creates exactly one row when the same key is inserted concurrently', async () => {
        const attempts = Array.from({ length: 8 }, () => store.insertMany([row({ recipientId: user('a') })]));
        const results = await Promise.all(attempts);

        expect(results.flat()).toHaveLength(1);
        expect(await store.count(user('a'), {})).toBe(1);
      });

      it('keeps the first row when one batch repeats a key', async () => {
        const first = row({ recipientId: user('a'), title: 'first' });
        const created = await store.insertMany([first, row({ recipientId: user('a'), title: 'second' })]);

        expect(created.map((notification) => notification.title)).toEqual(['first']);
        expect((await store.list(user('a'), { limit: 10, offset: 0 })).items.map((item) => item.title)).toEqual(['first']);
      });

      it('returns the created rows in batch order', async () => {
        const rows = [3, 1, 2].map((n) => row({ recipientId: user(`r${n}`) }, n));
        const created = await store.insertMany(rows);
        expect(created.map((notification) => notification.id)).toEqual(rows.map((r) => r.id));
      });

      it('stores each row with its own event content when one batch mixes events and shares objects between rows', async () => {
        // The pipeline's rows of one event share their strings and metadata
        // object; an adapter may send those once, but never mix them up.
        const shared = { orderCode: 'SO-1', amount: 1, nested: { currency: 'VND' } };
        const one = { eventId: event('mix-1'), title: 'one', content: 'first **one**', html: '<p>first</p>', metadata: shared };
        const two = { eventId: event('mix-2'), actorId: user('other-actor'), type: 'ORDER_SHIPPED', title: 'two', content: 'second', html: '<p>second</p>', metadata: { orderCode: 'SO-2' } };
        const rows = [
          row({ recipientId: user('a'), ...one }, 1),
          row({ recipientId: user('b'), ...one }, 1),
          row({ recipientId: user('a'), ...two }, 2),
          row({ recipientId: user('c'), ...one }, 1),
          row({ recipientId: user('b'), ...one, metadata: { ...shared } }, 1),
          row({ recipientId: user('b'), ...two }, 3),
        ];
        const created = await store.insertMany(rows);

        // The fifth row repeats (mix-1, b): the first one is kept.
        const expected = rows.filter((_, index) => index !== 4).map((written) => ({ ...written, isRead: false, readAt: null }));
        expect(created).toEqual(expected);
        for (const recipient of ['a', 'b', 'c']) {
          const listed = await store.list(user(recipient), { limit: 10, offset: 0 });
          const mine = expected.filter((written) => written.recipientId === user(recipient)).sort((x, y) => y.createdAt.getTime() - x.createdAt.getTime());
          expect(listed.items).toEqual(mine);
        }
      });

      it('rejects a batch that reuses an id for a new key, and writes none of it', async () => {
        const existing = row({ recipientId: user('a') });
        await store.insertMany([existing]);

        const fine = row({ recipientId: user('b') });
        const clash = row({ recipientId: user('c'), id: existing.id });
        await expect(store.insertMany([fine, clash])).rejects.toThrow();
        expect(await store.count(user('b'), {})).toBe(0);
        expect(await store.count(user('c'), {})).toBe(0);
      });

      it('does not resurrect a deleted row when its event is delivered again', async () => {
        const [created] = await store.insertMany([row({ recipientId: user('a') })]);
        await harness.softDelete(created!.id);

        expect(await store.insertMany([row({ recipientId: user('a') })])).toEqual([]);
        expect(await store.count(user('a'), {})).toBe(0);
      });
    });

    describe('list and count', () => {
      it('lists newest first, breaking createdAt ties by id (descending)', async () => {
        const recipient = user('a');
        const older = row({ recipientId: recipient, eventId: event('old') }, 0);
        const tieLow = row({ recipientId: recipient, eventId: event('tie-1') }, 5);
        const tieHigh = row({ recipientId: recipient, eventId: event('tie-2') }, 5);
        const newest = row({ recipientId: recipient, eventId: event('new') }, 9);
        // Inserted out of order on purpose.
        await store.insertMany([tieHigh, older, newest, tieLow]);

        const listed = await store.list(recipient, { limit: 10, offset: 0 });
        expect(listed.items.map((item) => item.id)).toEqual([newest.id, tieHigh.id, tieLow.id, older.id]);
        expect(listed.count).toBe(4);
      });

      it('filters by read state, in list and count alike', async () => {
        const recipient = user('a');
        const feed = await seedFeed(recipient, 4);
        await store.markRead(recipient, feed[1]!.id, new Date(BASE_TIME + 60_000));
        await store.markRead(recipient, feed[3]!.id, new Date(BASE_TIME + 60_000));

        const unread = await store.list(recipient, { isRead: false, limit: 10, offset: 0 });
        const read = await store.list(recipient, { isRead: true, limit: 10, offset: 0 });
        expect(unread).toMatchObject({ count: 2, items: [{ id: feed[2]!.id }, { id: feed[0]!.id }] });
        expect(read).toMatchObject({ count: 2, items: [{ id: feed[3]!.id }, { id: feed[1]!.id }] });
        expect(await store.count(recipient, { isRead: false })).toBe(2);
        expect(await store.count(recipient, { isRead: true })).toBe(2);
        expect(await store.count(recipient, {})).toBe(4);
      });

      it('pages with limit and offset while count stays the total', async () => {
        const recipient = user('a');
        const feed = await seedFeed(recipient, 5);
        const newestFirst = [...feed].reverse().map((item) => item.id);

        const first = await store.list(recipient, { limit: 2, offset: 0 });
        const second = await store.list(recipient, { limit: 2, offset: 2 });
        const last = await store.list(recipient, { limit: 2, offset: 4 });
        const beyond = await store.list(recipient, { limit: 2, offset: 10 });

        expect(first.items.map((item) => item.id)).toEqual(newestFirst.slice(0, 2));
        expect(second.items.map((item) => item.id)).toEqual(newestFirst.slice(2, 4));
        expect(last.items.map((item) => item.id)).toEqual(newestFirst.slice(4));
        expect(beyond.items).toEqual([]);
        expect([first.count, second.count, last.count, beyond.count]).toEqual([5, 5, 5, 5]);
      });

      it('rejects a page outside limit 1..100 or a negative offset', async () => {
        for (const query of [
          { limit: 0, offset: 0 },
          { limit: 101, offset: 0 },
          { limit: 1.5, offset: 0 },
          { limit: 10, offset: -1 },
        ]) {
          await expect(store.list(user('a'), query)).rejects.toThrow(RangeError);
        }
      });

      it('answers an unknown recipient with an empty list and zero', async () => {
        expect(await store.list(user('nobody'), { limit: 10, offset: 0 })).toEqual({ count: 0, items: [] });
        expect(await store.count(user('nobody'), {})).toBe(0);
      });
    });

    describe('recipient scoping', () => {
      it('never shows or changes one user rows on behalf of another', async () => {
        const [mine] = await store.insertMany([row({ recipientId: user('a') })]);

        expect(await store.list(user('b'), { limit: 10, offset: 0 })).toEqual({ count: 0, items: [] });
        expect(await store.count(user('b'), {})).toBe(0);
        expect(await store.markRead(user('b'), mine!.id, new Date())).toBeNull();
        expect(await store.markAllRead(user('b'), new Date())).toBe(0);

        expect((await store.list(user('a'), { limit: 10, offset: 0 })).items).toEqual([mine]);
      });
    });

    describe('deleted rows', () => {
      it('are invisible to list and count and cannot be marked', async () => {
        const recipient = user('a');
        const [kept, deleted] = await seedFeed(recipient, 2);
        await harness.softDelete(deleted!.id);

        expect(await store.list(recipient, { limit: 10, offset: 0 })).toEqual({ count: 1, items: [kept] });
        expect(await store.count(recipient, {})).toBe(1);
        expect(await store.count(recipient, { isRead: false })).toBe(1);
        expect(await store.markRead(recipient, deleted!.id, new Date())).toBeNull();
        expect(await store.markAllRead(recipient, new Date())).toBe(1);
        expect(await store.count(recipient, { isRead: true })).toBe(1);
      });
    });

    describe('markRead', () => {
      it('sets readAt once: marking again keeps the first time', async () => {
        const recipient = user('a');
        const [created] = await store.insertMany([row({ recipientId: recipient })]);
        const firstTime = new Date(BASE_TIME + 60_000);

        const marked = await store.markRead(recipient, created!.id, firstTime);
        expect(marked).toEqual({ ...created, isRead: true, readAt: firstTime });

        const again = await store.markRead(recipient, created!.id, new Date(BASE_TIME + 120_000));
        expect(again).toEqual({ ...created, isRead: true, readAt: firstTime });
        expect((await store.list(recipient, { isRead: true, limit: 10, offset: 0 })).items).toEqual([marked]);
      });

      it('answers null for an id that does not exist or cannot be one', async () => {
        for (const id of [nextId(), 'not-a-number', '', '-1', '99999999999999999999999']) {
          expect(await store.markRead(user('a'), id, new Date())).toBeNull();
        }
      });
    });

    describe('markAllRead', () => {
      it('counts only rows that were unread and leaves earlier read times alone', async () => {
        const recipient = user('a');
        const feed = await seedFeed(recipient, 3);
        const earlier = new Date(BASE_TIME + 60_000);
        const later = new Date(BASE_TIME + 120_000);
        await store.markRead(recipient, feed[0]!.id, earlier);

        expect(await store.markAllRead(recipient, later)).toBe(2);
        expect(await store.markAllRead(recipient, later)).toBe(0);

        const items = (await store.list(recipient, { limit: 10, offset: 0 })).items;
        expect(items.map((item) => [item.id, item.isRead, item.readAt])).toEqual([
          [feed[2]!.id, true, later],
          [feed[1]!.id, true, later],
          [feed[0]!.id, true, earlier],
        ]);
        expect(await store.count(recipient, { isRead: false })).toBe(0);
      });
    });
  });
}
