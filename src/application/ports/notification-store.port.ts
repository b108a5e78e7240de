import type { NewNotification, Notification } from '../../domain/notification.ts';

export interface ListQuery {
  /** Unset: read and unread alike. */
  isRead?: boolean;
  /** 1..100. */
  limit: number;
  offset: number;
}

/**
 * Durable notifications, one row per (eventId, recipientId).
 *
 * Idempotency: `insertMany` creates only rows whose (eventId, recipientId)
 * does not exist yet and returns exactly those, so a redelivered event
 * creates nothing and its caller pushes nothing twice. Deleted rows
 * (`deleted_at` set) are invisible to every read and cannot be marked.
 * Every query is scoped to one recipient: a caller can never see or change
 * another user's rows. Failures reject; the pipeline retries, never skips.
 */
export interface NotificationStore {
  insertMany(rows: readonly NewNotification[]): Promise<Notification[]>;
  /** Newest first (createdAt, then id, descending); `count` is the total for the filter. */
  list(recipientId: string, query: ListQuery): Promise<{ count: number; items: Notification[] }>;
  count(recipientId: string, filter: { isRead?: boolean }): Promise<number>;
  /** Null when no live row with that id belongs to the recipient. Marking twice keeps the first readAt. */
  markRead(recipientId: string, id: string, now: Date): Promise<Notification | null>;
  /** How many rows went from unread to read. */
  markAllRead(recipientId: string, now: Date): Promise<number>;
}
