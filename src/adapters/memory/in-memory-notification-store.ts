import type { ListQuery, NotificationStore } from '../../application/ports/notification-store.port.ts';
import type { NewNotification, Notification } from '../../domain/notification.ts';

interface StoredNotification extends Notification {
  deletedAt: Date | null;
}

/**
 * Notifications held in memory with the PostgreSQL store's semantics: one
 * row per (eventId, recipientId), first writer wins, deleted rows invisible,
 * newest first by (createdAt, id). The twin the contract suite holds the
 * PostgreSQL adapter to, and a store for tests that need no database.
 */
export class InMemoryNotificationStore implements NotificationStore {
  private readonly rows = new Map<string, StoredNotification>();
  private readonly keys = new Set<string>();

  async insertMany(rows: readonly NewNotification[]): Promise<Notification[]> {
    // Decide every row first: like the single INSERT it twins, a batch that
    // reuses an id for a new key fails as a whole and writes nothing.
    const batchKeys = new Set<string>();
    const batchIds = new Set<string>();
    const fresh: NewNotification[] = [];
    for (const row of rows) {
      if (this.keys.has(key(row)) || batchKeys.has(key(row))) continue;
      if (this.rows.has(row.id) || batchIds.has(row.id)) throw new Error(`duplicate notification id ${row.id}`);
      batchKeys.add(key(row));
      batchIds.add(row.id);
      fresh.push(row);
    }
    return fresh.map((row) => {
      const stored: StoredNotification = { ...copy(row), isRead: false, readAt: null, deletedAt: null };
      this.keys.add(key(row));
      this.rows.set(row.id, stored);
      return view(stored);
    });
  }

  async list(recipientId: string, query: ListQuery): Promise<{ count: number; items: Notification[] }> {
    checkPage(query);
    const matching = this.live(recipientId, query.isRead).sort(newestFirst);
    return { count: matching.length, items: matching.slice(query.offset, query.offset + query.limit).map(view) };
  }

  async count(recipientId: string, filter: { isRead?: boolean }): Promise<number> {
    return this.live(recipientId, filter.isRead).length;
  }

  async markRead(recipientId: string, id: string, now: Date): Promise<Notification | null> {
    const row = this.rows.get(id);
    if (row === undefined || row.recipientId !== recipientId || row.deletedAt !== null) return null;
    row.isRead = true;
    row.readAt ??= new Date(now);
    return view(row);
  }

  async markAllRead(recipientId: string, now: Date): Promise<number> {
    const unread = this.live(recipientId, false);
    for (const row of unread) {
      row.isRead = true;
      row.readAt = new Date(now);
    }
    return unread.length;
  }

  /** Soft-deletes a row the way other services do (`deleted_at` set); false when there is none. */
  delete(id: string, now = new Date()): boolean {
    const row = this.rows.get(id);
    if (row === undefined || row.deletedAt !== null) return false;
    row.deletedAt = new Date(now);
    return true;
  }

  private live(recipientId: string, isRead: boolean | undefined): StoredNotification[] {
    const result: StoredNotification[] = [];
    for (const row of this.rows.values()) {
      if (row.recipientId === recipientId && row.deletedAt === null && (isRead === undefined || row.isRead === isRead)) result.push(row);
    }
    return result;
  }
}

function key(row: { eventId: string; recipientId: string }): string {
  return JSON.stringify([row.eventId, row.recipientId]);
}

function newestFirst(a: Notification, b: Notification): number {
  const byTime = b.createdAt.getTime() - a.createdAt.getTime();
  if (byTime !== 0) return byTime;
  const left = BigInt(a.id);
  const right = BigInt(b.id);
  return left === right ? 0 : left < right ? 1 : -1;
}

function checkPage(query: ListQuery): void {
  if (!Number.isInteger(query.limit) || query.limit < 1 || query.limit > 100) throw new RangeError('limit must be a whole number in 1..100');
  if (!Number.isInteger(query.offset) || query.offset < 0) throw new RangeError('offset must be a whole number >= 0');
}

/** Callers get copies: mutating a returned object must not change the store, as with a database. */
function copy(row: NewNotification): NewNotification {
  return { ...row, metadata: structuredClone(row.metadata), createdAt: new Date(row.createdAt) };
}

function view(row: StoredNotification): Notification {
  return {
    id: row.id,
    eventId: row.eventId,
    recipientId: row.recipientId,
    actorId: row.actorId,
    type: row.type,
    title: row.title,
    content: row.content,
    html: row.html,
    metadata: structuredClone(row.metadata),
    isRead: row.isRead,
    readAt: row.readAt === null ? null : new Date(row.readAt),
    createdAt: new Date(row.createdAt),
  };
}
