import { createServer, connect, type Server, type Socket } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../src/adapters/postgres/database.ts';
import { connectionTarget, openDatabase } from '../../src/adapters/postgres/database.ts';
import { ALL_CLIENT_PERMISSIONS } from '../../src/domain/permissions.ts';
import { createFreshDatabase, type FreshDatabase } from '../fixtures/fresh-database.ts';
import { waitFor } from '../fixtures/wait-for.ts';

type Row = Record<string, unknown>;

const opened: Database[] = [];
async function open(url: string, options?: Parameters<typeof openDatabase>[1]): Promise<Database> {
  const db = await openDatabase(url, options);
  opened.push(db);
  return db;
}

function query(db: Database, sql: string, params: unknown[] = []): Promise<Row[]> {
  return db.orm.em.fork().execute<Row[]>(sql, params);
}

/** Everything the seeds write, in a stable order, to compare runs. */
async function seedSnapshot(db: Database): Promise<Row[][]> {
  return Promise.all([
    query(db, 'select "id", "code", "name", "description", "created_at" from "Permission" order by "code"'),
    query(db, 'select "id", "identifier", "name", "priority", "created_at" from "Role" order by "identifier"'),
    query(db, 'select "role_id", "permission_id", "created_at" from "RolePermission" order by 1, 2'),
  ]);
}

afterEach(async () => {
  await Promise.all(opened.splice(0).map((db) => db.close()));
});

describe('openDatabase and migrate on PostgreSQL', () => {
  const fresh: FreshDatabase[] = [];
  async function freshDatabase(): Promise<string> {
    const made = await createFreshDatabase('db');
    fresh.push(made);
    return made.url;
  }
  afterAll(async () => {
    await Promise.all(fresh.map((made) => made.drop()));
  });

  it('creates the contract tables under their exact names, then has nothing left to do', async () => {
    const db = await open(await freshDatabase());

    const first = await db.migrate();
    expect(first).toEqual({ applied: ['0001-initial-schema'], seeded: { permissions: 7, roles: 2, grants: 14 } });
    const tables = await query(db, `select "table_name" from information_schema.tables where "table_schema" = 'public' order by 1`);
    expect(tables.map((row) => row.table_name)).toEqual(
      expect.arrayContaining(['ActivityNotification', 'Permission', 'PolicyDefinition', 'Role', 'RolePermission']),
    );
    const columns = await query(
      db,
      `select "column_name", "data_type", "is_nullable" from information_schema.columns where "table_name" = 'ActivityNotification' order by "ordinal_position"`,
    );
    expect(columns.map((column) => [column.column_name, column.data_type, column.is_nullable])).toEqual([
      ['id', 'bigint', 'NO'],
      ['event_id', 'text', 'NO'],
      ['recipient_id', 'text', 'NO'],
      ['actor_id', 'text', 'NO'],
      ['type', 'text', 'NO'],
      ['title', 'text', 'NO'],
      ['content', 'text', 'NO'],
      ['html', 'text', 'NO'],
      ['metadata', 'jsonb', 'NO'],
      ['is_read', 'boolean', 'NO'],
      ['read_at', 'timestamp with time zone', 'YES'],
      ['created_at', 'timestamp with time zone', 'NO'],
      ['updated_at', 'timestamp with time zone', 'NO'],
      ['deleted_at', 'timestamp with time zone', 'YES'],
    ]);
    const seeded = await seedSnapshot(db);
    expect(seeded[0]!.map((row) => row.code)).toEqual([...ALL_CLIENT_PERMISSIONS].sort());

    const second = await db.migrate();
    expect(second).toEqual({ applied: [], seeded: { permissions: 0, roles: 0, grants: 0 } });
    expect(await seedSnapshot(db)).toEqual(seeded);
  });

  it('rejects policy rows outside the contract vocabulary', async () => {
    const db = await open(await freshDatabase());
    await db.migrate();
    const insert = (variant: string, subjectType: string, targetType: string) =>
      query(
        db,
        `insert into "PolicyDefinition" ("variant", "subject_type", "subject_id", "target_type", "target_id") values (?, ?, 'u', ?, 't')`,
        [variant, subjectType, targetType],
      );

    await expect(insert('g', 'user', 'merchant')).resolves.toBeDefined();
    await expect(insert('x', 'user', 'merchant')).rejects.toThrow(/check/i);
    await expect(insert('g', 'group', 'merchant')).rejects.toThrow(/check/i);
    await expect(insert('g', 'user', 'shop')).rejects.toThrow(/check/i);
  });

  it('serialises instances migrating at the same moment: one applies, the others find it done', async () => {
    const url = await freshDatabase();
    const instances = await Promise.all([open(url), open(url), open(url)]);

    const reports = await Promise.all(instances.map((db) => db.migrate()));

    expect(reports.map((report) => report.applied.length).sort()).toEqual([0, 0, 1]);
    expect(reports.map((report) => report.seeded.grants).sort((a, b) => a - b)).toEqual([0, 0, 14]);
    expect(await query(instances[0]!, 'select count(*)::int as "n" from "RolePermission"')).toEqual([{ n: 14 }]);
  });

  it('refuses to migrate a database that does not exist, and does not create it', async () => {
    const missing = new URL(await freshDatabase());
    missing.pathname = `${missing.pathname}_missing`;
    const db = await open(missing.href);

    await expect(db.migrate()).rejects.toThrow(/does not exist/);
    expect(db.health()).toMatchObject({ name: 'database', ready: false });
  });
});

describe('database health', () => {
  /** A TCP relay to the real server that the test can cut and restore. */
  class Relay {
    private server: Server | undefined;
    private readonly sockets = new Set<Socket>();
    port = 0;

    constructor(private readonly target: { host: string; port: number }) {}

    async start(): Promise<void> {
      this.server = createServer((client) => {
        const upstream = connect(this.target.port, this.target.host);
        for (const socket of [client, upstream]) {
          this.sockets.add(socket);
          socket.on('close', () => this.sockets.delete(socket));
          socket.on('error', () => {
            client.destroy();
            upstream.destroy();
          });
        }
        client.pipe(upstream).pipe(client);
      });
      await new Promise<void>((listening) => this.server!.listen(this.port, '127.0.0.1', listening));
      this.port = (this.server.address() as { port: number }).port;
    }

    async cut(): Promise<void> {
      for (const socket of this.sockets) socket.destroy();
      await new Promise<void>((closed) => this.server?.close(() => closed()) ?? closed());
      this.server = undefined;
    }
  }

  let database: FreshDatabase;
  beforeAll(async () => {
    database = await createFreshDatabase('health');
  });
  afterAll(async () => {
    await database.drop();
  });

  it('is ready once reachable, turns not ready when the server goes away and ready again when it is back', async () => {
    const target = connectionTarget(database.url);
    const relay = new Relay(target);
    await relay.start();
    const url = new URL(database.url);
    url.port = String(relay.port);
    const db = await open(url.href, { healthIntervalMs: 50, healthTimeoutMs: 500 });
    expect(db.health()).toEqual({ name: 'database', ready: true });

    await relay.cut();
    await waitFor(() => !db.health().ready, 5_000, 'health to notice the outage');
    expect(db.health()).toMatchObject({ name: 'database', ready: false, detail: expect.stringMatching(/^unreachable: /) });

    await relay.start();
    await waitFor(() => db.health().ready, 10_000, 'health to notice the recovery');
    await relay.cut();
  });

  it('opens against an unreachable server without rejecting and says why it is not ready', async () => {
    const db = await open('postgres://postgres@127.0.0.1:1/nothing', { healthTimeoutMs: 2_000 });

    expect(db.health()).toMatchObject({ name: 'database', ready: false, detail: expect.stringContaining('ECONNREFUSED') });
    await expect(db.migrate()).rejects.toThrow(/ECONNREFUSED/);
  });

  it('reports closed after close, which is safe to call twice', async () => {
    const db = await open(database.url);
    await db.close();
    await db.close();
    expect(db.health()).toEqual({ name: 'database', ready: false, detail: 'closed' });
  });
});

describe('connectionTarget', () => {
  it('reads every part of a URL, with PostgreSQL defaults for what is missing', () => {
    expect(connectionTarget('postgres://svc:p%40ss@db.internal:6432/signal')).toEqual({
      host: 'db.internal',
      port: 6432,
      user: 'svc',
      password: 'p@ss',
      dbName: 'signal',
    });
    expect(connectionTarget('postgresql://db.internal')).toEqual({ host: 'db.internal', port: 5432, user: 'postgres', dbName: 'postgres' });
  });

  it('maps sslmode the way libpq reads it', () => {
    expect(connectionTarget('postgres://h/d?sslmode=require').ssl).toEqual({ rejectUnauthorized: false });
    expect(connectionTarget('postgres://h/d?sslmode=verify-full').ssl).toEqual({ rejectUnauthorized: true });
    expect(connectionTarget('postgres://h/d?sslmode=disable').ssl).toBeUndefined();
    expect(connectionTarget('postgres://h/d').ssl).toBeUndefined();
  });

  it('rejects what is not a PostgreSQL URL', () => {
    expect(() => connectionTarget('not a url')).toThrow(/not a valid URL/);
    expect(() => connectionTarget('mysql://h/d')).toThrow(/postgres/);
  });
});
