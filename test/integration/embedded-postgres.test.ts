import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openDatabase } from '../../src/adapters/postgres/database.ts';
import type { EmbeddedPostgres } from '../../src/adapters/postgres/embedded-postgres.ts';
import { startEmbeddedPostgres } from '../../src/adapters/postgres/embedded-postgres.ts';
import { PostgresNotificationStore } from '../../src/adapters/postgres/postgres-notification-store.ts';
import { seedPgliteDataDir } from '../fixtures/pglite-template.ts';

// PGlite runs PostgreSQL in WebAssembly: starts take seconds, more on a busy machine.
describe('startEmbeddedPostgres', { timeout: 90_000 }, () => {
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  async function dataDir(): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), 'signal-embedded-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    await seedPgliteDataDir(dir);
    return dir;
  }

  async function start(dir: string): Promise<EmbeddedPostgres> {
    const embedded = await startEmbeddedPostgres(dir);
    cleanups.push(() => embedded.close());
    return embedded;
  }

  it('serves the PostgreSQL adapter on loopback and keeps its data across restarts', async () => {
    const dir = await dataDir();
    const first = await start(dir);
    expect(new URL(first.url).hostname).toBe('127.0.0.1');

    const db = await openDatabase(first.url, { poolMax: 1 });
    expect(db.health()).toEqual({ name: 'database', ready: true });
    expect((await db.migrate()).applied).toEqual(['0001-initial-schema']);
    const written = {
      id: '7234567890123456789',
      eventId: 'e-1',
      recipientId: 'u-1',
      actorId: 'u-2',
      type: 'PAYMENT_SUCCESS',
      title: 'Paid',
      content: 'paid',
      html: '<p>paid</p>',
      metadata: { amount: 1 },
      createdAt: new Date('2026-11-21T10:00:00.000Z'),
    };
    await new PostgresNotificationStore(db.orm).insertMany([written]);
    await db.close();
    await first.close();

    const second = await start(dir);
    const reopened = await openDatabase(second.url, { poolMax: 1 });
    cleanups.push(() => reopened.close());
    expect((await reopened.migrate()).applied).toEqual([]);
    const listed = await new PostgresNotificationStore(reopened.orm).list('u-1', { limit: 10, offset: 0 });
    expect(listed).toEqual({ count: 1, items: [{ ...written, isRead: false, readAt: null }] });
  });

  it('refuses a second owner of the same data directory until the first closes', async () => {
    const dir = await dataDir();
    const owner = await start(dir);

    await expect(startEmbeddedPostgres(dir)).rejects.toThrow(`is in use by process ${process.pid}`);

    await owner.close();
    await owner.close();
    const next = await start(dir);
    expect(next.url).toMatch(/^postgres:\/\/postgres@127\.0\.0\.1:\d+\/postgres$/);
  });

  it('takes over a lock left behind by a process that no longer exists', async () => {
    const dir = await dataDir();
    const gone = spawnSync(process.execPath, ['-e', '']).pid;
    await writeFile(join(dir, 'pglite.lock'), `${gone}\n`);

    const embedded = await start(dir);

    expect(await readFile(join(dir, 'pglite.lock'), 'utf8')).toBe(`${process.pid}\n`);
    await embedded.close();
    await expect(readFile(join(dir, 'pglite.lock'))).rejects.toMatchObject({ code: 'ENOENT' });
  });
});
