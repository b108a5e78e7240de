import type { MikroORM } from '@mikro-orm/postgresql';
import type { ListQuery, NotificationStore } from '../../application/ports/notification-store.port.ts';
import type { NewNotification, Notification } from '../../domain/notification.ts';
import type { ActivityNotificationRecord } from './entity-schemas.ts';
import { ActivityNotificationSchema } from './entity-schemas.ts';

/** The largest bigint PostgreSQL stores; ids beyond it cannot exist. */
const MAX_BIGINT = 9_223_372_036_854_775_807n;

/**
 * All rows of one batch travel as one INSERT with two JSON parameters: a
 * batch is atomic, needs one round trip whatever its size, and the unique
 * key (event_id, recipient_id) decides, inside the database, which rows are
 * new. RETURNING lists exactly the rows this statement created, so a
 * redelivered event (or a concurrent duplicate) yields none.
 *
 * The rows of one event share everything but id and recipient, so what
 * they share (title, markdown, html, metadata: most of the bytes) is sent
 * once per distinct value as a "content" (`c`), and each row is only its
 * id, recipient and content index (`r`). That keeps the document, its
 * serialisation here and its parsing in the backend about 1/N of one copy
 * per row. Rows are inserted in batch order (`p`), so a key repeated within
 * one batch keeps its first row.
 */
const INSERT_MANY = `
  insert into "ActivityNotification"
    ("id", "event_id", "recipient_id", "actor_id", "type", "title", "content", "html", "metadata", "created_at", "updated_at")
  select r."id"::bigint, c."event_id", r."r", c."actor_id", c."type", c."title", c."content", c."html",
         coalesce(c."metadata", '{}'::jsonb), c."created_at", c."created_at"
    from jsonb_to_recordset(?::jsonb) as r("p" integer, "id" text, "r" text, "c" integer)
    join jsonb_to_recordset(?::jsonb) as c(
      "i" integer, "event_id" text, "actor_id" text, "type" text, "title" text, "content" text, "html" text,
      "metadata" jsonb, "created_at" timestamptz) on c."i" = r."c"
   order by r."p"
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
    const { rowsDocument, contentsDocument } = insertDocuments(rows);
    // Through knex so the documents travel as bound parameters, not pasted into the SQL text.
    const result = (await this.orm.em.getConnection().getKnex().raw(INSERT_MANY, [rowsDocument, contentsDocument])) as {
      rows: Array<{ id: string }>;
    };
    if (result.rows.length === rows.length) return rows.map(unread);
    const created = new Set(result.rows.map((row) => row.id));
    // A created row is exactly its input, unread; rebuilding it here spares
    // mapping RETURNING rows back into entities. Input order is kept.
    return rows.filter((row) => created.has(row.id)).map(unread);
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

function unread(row: NewNotification): Notification {
  return {
    id: row.id,
    eventId: row.eventId,
    recipientId: row.recipientId,
    actorId: row.actorId,
    type: row.type,
    title: row.title,
    content: row.content,
    html: row.html,
    metadata: row.metadata,
    isRead: false,
    readAt: null,
    createdAt: row.createdAt,
  };
}

interface SharedContent {
  i: number;
  event_id: string;
  actor_id: string;
  type: string;
  title: string;
  content: string;
  html: string;
  metadata: Record<string, unknown>;
  created_at: string;
}

/**
 * The two INSERT_MANY documents. Rows sharing every field but id and
 * recipient share one content entry: consecutive rows are compared with the
 * entry of the row before (the rows of one event come together; metadata is
 * compared by reference, so equal but distinct objects simply get entries
 * of their own, which is still correct).
 */
function insertDocuments(rows: readonly NewNotification[]): { rowsDocument: string; contentsDocument: string } {
  const contents: SharedContent[] = [];
  const refs: Array<{ p: number; id: string; r: string; c: number }> = [];
  let previous: NewNotification | undefined;
  for (let position = 0; position < rows.length; position++) {
    const row = rows[position]!;
    if (previous === undefined || !sharesContent(previous, row)) {
      contents.push({
        i: contents.length,
        event_id: row.eventId,
        actor_id: row.actorId,
        type: row.type,
        title: row.title,
        content: row.content,
        html: row.html,
        metadata: row.metadata,
        created_at: row.createdAt.toISOString(),
      });
      previous = row;
    }
    refs.push({ p: position, id: row.id, r: row.recipientId, c: contents.length - 1 });
  }
  return { rowsDocument: JSON.stringify(refs), contentsDocument: JSON.stringify(contents) };
}

function sharesContent(a: NewNotification, b: NewNotification): boolean {
  return (
    a.eventId === b.eventId &&
    a.actorId === b.actorId &&
    a.type === b.type &&
    a.title === b.title &&
    a.content === b.content &&
    a.html === b.html &&
    a.metadata === b.metadata &&
    a.createdAt.getTime() === b.createdAt.getTime()
  );
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
