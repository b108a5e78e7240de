import type { Notification } from './notification.ts';

/**
 * Read state of one notification. Only its recipient may mark it, and the
 * first read time is the one kept: clients retry and several devices mark
 * the same row, and none of that may move `readAt`.
 */

export type MarkAsReadResult =
  | { kind: 'marked'; notification: Notification }
  | { kind: 'already-read'; notification: Notification }
  | { kind: 'not-recipient' };

/**
 * Never mutates `notification`. A row that is half read (flag without a
 * time, or a time without the flag, as rows carried over from the old
 * service can be) is completed, keeping any time it already has.
 */
export function markAsRead(notification: Notification, userId: string, now: Date): MarkAsReadResult {
  // The same answer whether the row is read or not: a stranger learns nothing about it.
  if (notification.recipientId !== userId) return { kind: 'not-recipient' };
  if (notification.isRead && notification.readAt !== null) return { kind: 'already-read', notification };
  return {
    kind: 'marked',
    notification: { ...notification, isRead: true, readAt: notification.readAt ?? new Date(now.getTime()) },
  };
}
