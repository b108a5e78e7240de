import { Elysia, t } from 'elysia';
import type { Access } from '../../application/access.ts';
import type { Clock } from '../../application/ports/clock.port.ts';
import type { NotificationStore } from '../../application/ports/notification-store.port.ts';
import { NotFoundError } from '../../domain/errors.ts';
import { toView } from '../../domain/notification.ts';

export interface NotificationRoutesDeps {
  access: Access;
  store: NotificationStore;
  clock: Clock;
}

const NotificationView = t.Object({
  id: t.String({ description: 'Snowflake id, as a decimal string' }),
  recipientId: t.String(),
  actorId: t.String(),
  type: t.String(),
  title: t.String(),
  content: t.String({ description: 'Markdown' }),
  html: t.String({ description: 'Sanitised HTML rendering of content' }),
  metadata: t.Record(t.String(), t.Any()),
  isRead: t.Boolean(),
  readAt: t.Union([t.String({ format: 'date-time' }), t.Null()]),
  createdAt: t.String({ format: 'date-time' }),
});

const ErrorBody = t.Object({ code: t.String(), message: t.String() });
const IS_READ = t.Optional(
  t.BooleanString({ description: 'true: read only; false: unread only; absent: both', error: 'isRead: must be true or false' }),
);
const security: Array<Record<string, string[]>> = [{ bearerAuth: [] }];

/**
 * The recipient's own inbox. Every query is scoped to the caller's user id:
 * another user's notification is indistinguishable from a missing one (404).
 */
export function notificationRoutes(deps: NotificationRoutesDeps) {
  const { access, store, clock } = deps;
  return new Elysia({ name: 'notification-routes', prefix: '/notifications' })
    .get(
      '/',
      async ({ query, headers }) => {
        const { userId } = await access.user(headers.authorization);
        const result = await store.list(userId, { isRead: query.isRead, limit: query.limit ?? 20, offset: query.offset ?? 0 });
        return { count: result.count, items: result.items.map(toView) };
      },
      {
        query: t.Object({
          isRead: IS_READ,
          limit: t.Optional(
            t.Numeric({ minimum: 1, maximum: 100, multipleOf: 1, description: 'Page size, 1..100 (default 20)', error: 'limit: must be a whole number from 1 to 100' }),
          ),
          offset: t.Optional(
            t.Numeric({ minimum: 0, maximum: 1_000_000, multipleOf: 1, description: 'Items to skip (default 0)', error: 'offset: must be a whole number from 0 to 1000000' }),
          ),
        }),
        response: { 200: t.Object({ count: t.Integer(), items: t.Array(NotificationView) }), 400: ErrorBody, 401: ErrorBody },
        detail: { summary: "The caller's notifications, newest first", tags: ['notifications'], security },
      },
    )
    .get(
      '/count',
      async ({ query, headers }) => {
        const { userId } = await access.user(headers.authorization);
        return { count: await store.count(userId, { isRead: query.isRead }) };
      },
      {
        query: t.Object({ isRead: IS_READ }),
        response: { 200: t.Object({ count: t.Integer() }), 400: ErrorBody, 401: ErrorBody },
        detail: { summary: "Count of the caller's notifications", tags: ['notifications'], security },
      },
    )
    .patch(
      '/mark-all-read',
      async ({ headers }) => {
        const { userId } = await access.user(headers.authorization);
        return { updated: await store.markAllRead(userId, new Date(clock.now())) };
      },
      {
        response: { 200: t.Object({ updated: t.Integer() }), 401: ErrorBody },
        detail: { summary: "Mark all of the caller's notifications read", tags: ['notifications'], security },
      },
    )
    .patch(
      '/:id/mark-read',
      async ({ params, headers }) => {
        const { userId } = await access.user(headers.authorization);
        const marked = await store.markRead(userId, params.id, new Date(clock.now()));
        if (marked === null) throw new NotFoundError('notification');
        return toView(marked);
      },
      {
        params: t.Object({ id: t.String({ pattern: '^[0-9]{1,20}$', description: 'Notification id', error: 'id: must be a notification id (digits)' }) }),
        response: { 200: NotificationView, 400: ErrorBody, 401: ErrorBody, 404: ErrorBody },
        detail: { summary: 'Mark one notification read (404 unless the caller is its recipient)', tags: ['notifications'], security },
      },
    );
}
