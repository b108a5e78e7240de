import { describe, expect, it } from 'vitest';
import { InMemoryBusHub, InMemoryMessageBus } from '../../src/adapters/memory/in-memory-message-bus.ts';
import { InMemoryMembershipDirectory } from '../../src/adapters/memory/in-memory-membership-directory.ts';
import { InMemoryNotificationStore } from '../../src/adapters/memory/in-memory-notification-store.ts';
import { Delivery } from '../../src/application/delivery.ts';
import { LocalConnections } from '../../src/application/local-connections.ts';
import { NotificationPipeline } from '../../src/application/notification-pipeline.ts';
import type { ActivityMessage } from '../../src/application/ports/activity-batch-handler.port.ts';
import type { Clock } from '../../src/application/ports/clock.port.ts';
import type { MembershipDirectory, MembershipTarget } from '../../src/application/ports/membership-directory.port.ts';
import type { NewNotification, Notification } from '../../src/domain/notification.ts';
import { NOTIFICATION_CREATED_EVENT } from '../../src/domain/notification.ts';
import { SnowflakeGenerator } from '../../src/domain/snowflake.ts';
import { recordingLogger, type LogLine } from '../fixtures/recording-logger.ts';
import { waitFor } from '../fixtures/wait-for.ts';

/**
 * NotificationPipeline.handleBatch: several raw events at once, with the
 * same guarantees as one by one (one row per recipient and event, each push
 * once, poison reported per message). Pushes are counted exactly on a second
 * bus instance of the same hub, as another signal instance would see them.
 */

const clock: Clock = { now: () => Date.now(), schedule: () => () => {} };

interface Push {
  recipientId: string;
  id: string;
  eventId: string;
}

/** Counts membership queries; answers like the directory it wraps. */
class CountingDirectory implements MembershipDirectory {
  queries = 0;
  constructor(readonly inner: InMemoryMembershipDirectory) {}
  membersOf(target: MembershipTarget, targetId: string): Promise<string[]> {
    this.queries += 1;
    return this.inner.membersOf(target, targetId);
  }
  isMember(userId: string, target: MembershipTarget, targetId: string): Promise<boolean> {
    return this.inner.isMember(userId, target, targetId);
  }
}

/** Counts INSERT statements; fails them while `down`. */
class CountingStore extends InMemoryNotificationStore {
  inserts = 0;
  down = false;
  override async insertMany(rows: readonly NewNotification[]): Promise<Notification[]> {
    if (this.down) throw new Error('connection terminated unexpectedly');
    this.inserts += 1;
    return super.insertMany(rows);
  }
}

async function setup() {
  const hub = new InMemoryBusHub();
  const bus = new InMemoryMessageBus(hub, { serverId: 'pipeline' });
  const observer = new InMemoryMessageBus(hub, { serverId: 'observer' });
  const pushes: Push[] = [];
  await observer.subscribe((message) => {
    if (message.type !== 'user' || message.event !== NOTIFICATION_CREATED_EVENT) return;
    const data = message.data as { id: string; recipientId: string; metadata: { eventId: string } };
    expect(data.recipientId).toBe(message.target);
    pushes.push({ recipientId: data.recipientId, id: data.id, eventId: data.metadata.eventId });
  });
  const members = new InMemoryMembershipDirectory();
  for (const userId of ['u-1', 'u-2', 'u-3']) members.grant(userId, 'merchant', 'm-1');
  members.grant('u-9', 'organizer', 'o-1');
  const directory = new CountingDirectory(members);
  const store = new CountingStore();
  const lines: LogLine[] = [];
  const logger = recordingLogger(lines);
  const pipeline = new NotificationPipeline(store, directory, new Delivery(new LocalConnections(), bus, logger), new SnowflakeGenerator(7), clock, logger);
  return { pipeline, store, directory, pushes, lines };
}

let offset = 0;
function message(value: unknown): ActivityMessage {
  const text = typeof value === 'string' ? value : JSON.stringify(value);
  return { value: Buffer.from(text), meta: { topic: 't', partition: 0, offset: String(offset++), key: null } };
}

const merchantEvent = (eventId: string, merchantId = 'm-1') => ({
  eventId,
  type: 'PAYMENT_SUCCESS',
  actorId: 'u-actor',
  scope: 'merchant',
  merchantId,
  data: { orderCode: `SO-${eventId}`, amount: 1000 },
});

describe('NotificationPipeline.handleBatch', () => {
  it('stores one row per recipient and event, pushes each once, and reports poison per message, with one query and one INSERT', async () => {
    const { pipeline, store, directory, pushes, lines } = await setup();
    const results = await pipeline.handleBatch([
      message(merchantEvent('b-1')),
      message('{"eventId": '),
      message(merchantEvent('b-2')),
      message({ eventId: 'b-3', type: 'ORDER_SHIPPED', actorId: 'u-actor', scope: 'users', recipientIds: ['u-2', 'u-7'] }),
      message({ eventId: 'b-4', type: 'PAYMENT_SUCCESS', scope: 'merchant', merchantId: 'm-1' }),
      message(merchantEvent('b-5')),
    ]);

    expect(results.map((result) => result.outcome)).toEqual(['processed', 'poison', 'processed', 'processed', 'poison', 'processed']);
    expect(results[4]).toMatchObject({ reason: expect.stringMatching(/^actorId/) });
    expect(directory.queries).toBe(1);
    expect(store.inserts).toBe(1);

    const expected = [
      ...['b-1', 'b-2', 'b-5'].flatMap((eventId) => ['u-1', 'u-2', 'u-3'].map((recipientId) => `${eventId}/${recipientId}`)),
      'b-3/u-2',
      'b-3/u-7',
    ].sort();
    const rows: string[] = [];
    for (const recipientId of ['u-1', 'u-2', 'u-3', 'u-7']) {
      for (const row of (await store.list(recipientId, { limit: 100, offset: 0 })).items) rows.push(`${row.eventId}/${row.recipientId}`);
    }
    expect(rows.sort()).toEqual(expected);
    await waitFor(() => pushes.length >= expected.length, 5_000, 'every push');
    expect(pushes.map((push) => `${push.eventId}/${push.recipientId}`).sort()).toEqual(expected);
    // Each push carries the id of its own row.
    for (const push of pushes) {
      const rows = (await store.list(push.recipientId, { limit: 100, offset: 0 })).items;
      expect(rows.find((row) => row.eventId === push.eventId)?.id).toBe(push.id);
    }
    const stored = lines.filter((line) => line.message === 'event stored');
    expect(stored.map((line) => [line.fields.eventId, line.fields.created, line.fields.recipients])).toEqual([
      ['b-1', 3, 3],
      ['b-2', 3, 3],
      ['b-3', 2, 2],
      ['b-5', 3, 3],
    ]);
  });

  it('creates and pushes the rows of an event delivered twice in one batch once, and of one delivered again later never', async () => {
    const { pipeline, store, pushes, lines } = await setup();
    await pipeline.handleBatch([message(merchantEvent('d-1')), message(merchantEvent('d-2')), message(merchantEvent('d-1'))]);
    const again = await pipeline.handleBatch([message(merchantEvent('d-2')), message(merchantEvent('d-1'))]);

    expect(again.map((result) => result.outcome)).toEqual(['processed', 'processed']);
    expect(await store.count('u-1', {})).toBe(2);
    await waitFor(() => pushes.length >= 6, 5_000, 'the pushes');
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(pushes).toHaveLength(6);
    expect(new Set(pushes.map((push) => push.id)).size).toBe(6);
    const outcomes = lines
      .filter((line) => line.fields.eventId !== undefined)
      .map((line) => `${line.fields.eventId} ${line.message === 'event stored' ? 'stored' : 'already'}`);
    expect(outcomes).toEqual(['d-1 stored', 'd-2 stored', 'd-1 already', 'd-2 already', 'd-1 already']);
  });

  it('looks each merchant and organizer up once per batch', async () => {
    const { pipeline, directory } = await setup();
    await pipeline.handleBatch([
      message(merchantEvent('t-1', 'm-1')),
      message(merchantEvent('t-2', 'm-2')),
      message(merchantEvent('t-3', 'm-1')),
      message({ eventId: 't-4', type: 'X', actorId: 'u-actor', scope: 'organizer', organizerId: 'o-1' }),
    ]);
    expect(directory.queries).toBe(3);
  });

  it('rejects the whole batch when the store fails, having pushed nothing; the retry stores and pushes everything once', async () => {
    const { pipeline, store, pushes } = await setup();
    store.down = true;
    const batch = [message(merchantEvent('f-1')), message(merchantEvent('f-2'))];
    await expect(pipeline.handleBatch(batch)).rejects.toThrow('connection terminated');
    expect(await store.count('u-1', {})).toBe(0);

    store.down = false;
    await pipeline.handleBatch(batch);
    await waitFor(() => pushes.length >= 6, 5_000, 'the pushes');
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(pushes).toHaveLength(6);
    expect(await store.count('u-1', {})).toBe(2);
  });
});
