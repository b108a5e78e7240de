import { createRequire } from 'node:module';
import { parseActivityEvent } from '../src/domain/activity-event.ts';
import { buildContent } from '../src/domain/notification-content.ts';
import { SnowflakeGenerator } from '../src/domain/snowflake.ts';
import { absoluteNow } from './lib/client-messages.ts';
import { eventId, memberIds, paymentEvent } from './lib/pipeline-events.ts';

/**
 * The LIMIT of the pipeline scenario, in its own process: the same rows the
 * pipeline stores (same table, columns and content, built by the same
 * domain function from the same events), written as one plain multi-row
 * INSERT of 50 rows per event, one statement at a time over one connection
 * with the `pg` driver (the one MikroORM uses underneath), each committed on
 * its own. Rows are built before the clock starts: this is the database's
 * floor for "50 rows per event, durably", not a pipeline.
 *
 * IPC: `connect {url}` → `connected {backendPid}`; `round {prefix, count}`
 * → `done {startedAt, endedAt}` (absolute ms); `close`.
 */
export type ToLimit = { type: 'connect'; url: string } | { type: 'round'; prefix: string; count: number } | { type: 'close' };
export type FromLimit =
  | { type: 'connected'; backendPid: number }
  | { type: 'done'; startedAt: number; endedAt: number; statements: number; rows: number }
  | { type: 'failed'; message: string };

interface PgClient {
  connect(): Promise<void>;
  query(text: string, values?: unknown[]): Promise<{ rows: Array<Record<string, unknown>>; rowCount: number | null }>;
  end(): Promise<void>;
}

// `pg` ships no types and is not a direct dependency; only these three calls are used.
const { Client } = createRequire(import.meta.url)('pg') as { Client: new (config: { connectionString: string; application_name: string }) => PgClient };

const COLUMNS = ['id', 'event_id', 'recipient_id', 'actor_id', 'type', 'title', 'content', 'html', 'metadata', 'created_at', 'updated_at'];
const members = memberIds();
const INSERT = `insert into "ActivityNotification" (${COLUMNS.map((column) => `"${column}"`).join(', ')}) values ${members
  .map((_, row) => `(${COLUMNS.map((_, column) => `$${row * COLUMNS.length + column + 1}`).join(', ')})`)
  .join(', ')}`;
const ids = new SnowflakeGenerator(1023);

let client: PgClient | undefined;

function send(message: FromLimit): void {
  process.send?.(message);
}

/** One statement's values per event: the rows the pipeline would create for it. */
function statementValues(prefix: string, count: number): unknown[][] {
  const statements: unknown[][] = [];
  for (let index = 0; index < count; index++) {
    const parsed = parseActivityEvent(JSON.stringify(paymentEvent(eventId(prefix, index), index)));
    if (!parsed.ok) throw new Error(`bench event rejected: ${parsed.reason}`);
    const event = parsed.event;
    const content = buildContent(event);
    const metadata = JSON.stringify(content.metadata);
    const createdAt = new Date();
    const values: unknown[] = [];
    for (const recipientId of members) {
      values.push(ids.next(), event.eventId, recipientId, event.actorId, event.type, content.title, content.content, content.html, metadata, createdAt, createdAt);
    }
    statements.push(values);
  }
  return statements;
}

async function round(prefix: string, count: number): Promise<void> {
  if (client === undefined) throw new Error('not connected');
  const statements = statementValues(prefix, count);
  let rows = 0;
  const startedAt = absoluteNow();
  for (const values of statements) rows += (await client.query(INSERT, values)).rowCount ?? 0;
  const endedAt = absoluteNow();
  send({ type: 'done', startedAt, endedAt, statements: statements.length, rows });
}

process.on('message', (message: ToLimit) => {
  const fail = (error: unknown): void => send({ type: 'failed', message: (error as Error).message });
  if (message.type === 'connect') {
    client = new Client({ connectionString: message.url, application_name: 'signal-bench-limit' });
    client
      .connect()
      .then(() => client!.query('select pg_backend_pid() as pid'))
      .then((result) => send({ type: 'connected', backendPid: Number(result.rows[0]!.pid) }), fail);
  } else if (message.type === 'round') {
    round(message.prefix, message.count).catch(fail);
  } else {
    const ended = client === undefined ? Promise.resolve() : client.end();
    void ended.catch(() => undefined).finally(() => process.disconnect?.());
  }
});

process.on('disconnect', () => setImmediate(() => process.exit(0)));
