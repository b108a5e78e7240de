import type { MikroORM } from '@mikro-orm/postgresql';
import type { ListQuery, NotificationStore } from '../../application/ports/notification-store.port.ts';
import type { NewNotification, Notification } from '../../domain/notification.ts';
import type { ActivityNotificationRecord } from './entity-schemas.ts';
import { ActivityNotificationSchema } from './entity-schemas.ts';

/** The largest bigint PostgreSQL stores; ids beyond it cannot exist. */
const MAX_BIGINT = 9_223_372_036_854_775_807n;

/**
 * All rows of one batch travel as a single JSON document and become one
 * INSERT: a batch is atomic, needs one round trip whatever its size, and
 * the unique key (event_id, recipient_id) decides, inside the database,
 * which rows are new. RETURNING lists exactly the rows this statement
 * created, so a redelivered event (or a concurrent duplicate) yields none.
 * Rows are inserted in batch order, so a key repeated within one batch keeps
 * its first row.
 */
const INSERT_MANY = `
  insert into "ActivityNotification"
    ("id", "event_id", "recipient_id", "actor_id", "type", "title", "content", "html", "metadata", "created_at", "updated_at")
  select r."id"::bigint, r."event_id", r."recipient_id", r."actor_id", r."type", r."title", r."content", r."html",
         coalesce(r."metadata", '{}'::jsonb), r."created_at", r."created_at"
    from jsonb_to_recordset(?::jsonb) as r(
      "position" integer, "id" text, "event_id" text, "recipient_id" text, "actor_id" text, "type" text, "title" text,
      "content" text, "html" text, "metadata" jsonb, "created_at" timestamptz)
   order by r."position"
  on conflict ("event_id", "recipient_id") do nothing
  returning "id"::text as "id"`;

/**
 * Setting read_at only when it is still null keeps the first read time when
 * two requests race or a client marks twice; the row lock serialises them.
 */
const MARK_READ = `
  update "ActivityNotification"
     set "is_read" = true,
         "read_at" = coalesce("read_at", ?),
         "updated_at" = case when "is_read" then "updated_at" else ? end
   where "id" = ? and "recipient_id" = ? and "deleted_at" is null
  returning *`;

/** NotificationStore on the `ActivityNotification` table (see the port for the guarantees). */
export class PostgresNotificationStore implements NotificationStore {
  constructor(private readonly orm: MikroORM) {}

  async insertMany(rows: readonly NewNotification[]): Promise<Notification[]> {
    if (rows.length === 0) return [];
    const document = JSON.stringify(
      rows.map((row, position) => ({
        position,
        id: row.id,
        event_id: row.eventId,
        recipient_id: row.recipientId,
        actor_id: row.actorId,
        type: row.type,
        title: row.title,
        content: row.content,
        html: row.html,
        metadata: row.metadata,
        created_at: row.createdAt.toISOString(),
      })),
    );
    // Through knex so the document travels as a bound parameter, not pasted into the SQL text.
    const result = (await this.orm.em.getConnection().getKnex().raw(INSERT_MANY, [document])) as { rows: Array<{ id: string }> };
    const created = new Set(result.rows.map((row) => row.id));
    // A created row is exactly its input, unread; rebuilding it here spares
    // mapping RETURNING rows back into entities. Input order is kept.
    return rows.filter((row) => created.has(row.id)).map((row) => ({ ...row, isRead: false, readAt: null }));
  }

  async list(recipientId: string, query: ListQuery): Promise<{ count: number; items: Notification[] }> {
    checkPage(query);
    const [records, count] = await this.orm.em.fork().findAndCount(ActivityNotificationSchema, where(recipientId, query.isRead), {
      orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
      limit: query.limit,
      offset: query.offset,
    });
    return { count, items: records.map(toNotification) };
  }

  async count(recipientId: string, filter: { isRead?: boolean }): Promise<number> {
    return this.orm.em.fork().count(ActivityNotificationSchema, where(recipientId, filter.isRead));
  }

  async markRead(recipientId: string, id: string, now: Date): Promise<Notification | null> {
    if (!isStorableId(id)) return null;
    const em = this.orm.em.fork();
    const rows = await em.execute<Array<Record<string, unknown>>>(MARK_READ, [now, now, id, recipientId]);
    const row = rows[0];
    return row === undefined ? null : toNotification(em.map(ActivityNotificationSchema, row));
  }

  async markAllRead(recipientId: string, now: Date): Promise<number> {
    return this.orm.em
      .fork()
      .nativeUpdate(ActivityNotificationSchema, { recipientId, isRead: false, deletedAt: null }, { isRead: true, readAt: now, updatedAt: now });
  }
}

function where(recipientId: string, isRead: boolean | undefined) {
  return isRead === undefined ? { recipientId, deletedAt: null } : { recipientId, isRead, deletedAt: null };
}

function checkPage(query: ListQuery): void {
  if (!Number.isInteger(query.limit) || query.limit < 1 || query.limit > 100) throw new RangeError('limit must be a whole number in 1..100');
  if (!Number.isInteger(query.offset) || query.offset < 0) throw new RangeError('offset must be a whole number >= 0');
}

/** Anything else cannot be a row id: answering "not found" beats a cast error from the database. */
function isStorableId(id: string): boolean {
  return /^\d{1,19}$/.test(id) && BigInt(id) <= MAX_BIGINT;
}

function toNotification(record: ActivityNotificationRecord): Notification {
  return {
    id: String(record.id),
    eventId: record.eventId,
    recipientId: record.recipientId,
    actorId: record.actorId,
    type: record.type,
    title: record.title,
    content: record.content,
    html: record.html,
    metadata: record.metadata,
    isRead: record.isRead,
    readAt: record.readAt,
    createdAt: record.createdAt,
  };
}
