/**
 * An activity notification as recipients see it. `id` is a snowflake kept
 * as a decimal string end to end (it does not fit a JS number).
 */
export interface Notification {
  id: string;
  eventId: string;
  recipientId: string;
  actorId: string;
  type: string;
  title: string;
  /** Markdown source. */
  content: string;
  /** `content` rendered and sanitised; safe to insert into a page. */
  html: string;
  metadata: Record<string, unknown>;
  isRead: boolean;
  readAt: Date | null;
  createdAt: Date;
}

/** What the pipeline writes: everything but the read state, which starts unread. */
export type NewNotification = Omit<Notification, 'isRead' | 'readAt'>;

/** The push payload and REST item: dates as ISO-8601, ids as strings. */
export interface NotificationView {
  id: string;
  recipientId: string;
  actorId: string;
  type: string;
  title: string;
  content: string;
  html: string;
  metadata: Record<string, unknown>;
  isRead: boolean;
  readAt: string | null;
  createdAt: string;
}

export function toView(notification: Notification): NotificationView {
  return toViewCreatedAt(notification, notification.createdAt.toISOString());
}

/**
 * toView with `createdAt` already formatted (`createdAt.toISOString()`): the
 * notifications of one event share their creation time, and formatting a
 * date costs more than building the rest of the view.
 */
export function toViewCreatedAt(notification: Notification, createdAt: string): NotificationView {
  return {
    id: notification.id,
    recipientId: notification.recipientId,
    actorId: notification.actorId,
    type: notification.type,
    title: notification.title,
    content: notification.content,
    html: notification.html,
    metadata: notification.metadata,
    isRead: notification.isRead,
    readAt: notification.readAt === null ? null : notification.readAt.toISOString(),
    createdAt,
  };
}

/** The push event every new notification is sent to its recipient with. */
export const NOTIFICATION_CREATED_EVENT = 'observation/signal/notification/created';
