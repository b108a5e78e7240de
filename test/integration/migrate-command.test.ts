import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../../src/adapters/postgres/database.ts';
import { startEmbeddedPostgres } from '../../src/adapters/postgres/embedded-postgres.ts';
import { createFreshDatabase, type FreshDatabase } from '../fixtures/fresh-database.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const COMMAND = join(ROOT, 'src/bootstrap/migrate.ts');

interface Outcome {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** `npm run migrate` as operators run it, with exactly the given environment. */
function runMigrate(env: Record<string, string>): Promise<Outcome> {
  return new Promise((done) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', COMMAND],
      { cwd: ROOT, env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env }, timeout: 90_000 },
      (error, stdout, stderr) => done({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : null, stdout, stderr }),
    );
  });
}

async function seedRows(url: string): Promise<unknown[]> {
  const db = await openDatabase(url);
  try {
    const em = db.orm.em.fork();
    return await Promise.all([
      em.execute('select * from "Permission" order by "id"'),
      em.execute('select * from "Role" order by "id"'),
      em.execute('select * from "RolePermission" order by 1, 2'),
      em.execute('select "name" from "mikro_orm_migrations" order by "id"'),
    ]);
  } finally {
    await db.close();
  }
}

// Each case starts node + tsx (and PGlite for the embedded ones): seconds each, more on a busy machine.
describe('npm run migrate', { timeout: 90_000 }, () => {
  let database: FreshDatabase;
  beforeAll(async () => {
    database = await createFreshDatabase('migrate');
  });
  afterAll(async () => {
    await database.drop();
  });

  it('applies the migrations and seeds once; a second run applies nothing and changes nothing', async () => {
    const first = await runMigrate({ APP_ENV_DB_URL: database.url });
    expect(first).toEqual({
      code: 0,
      stdout: 'applied 0001-initial-schema\nseeded 7 permissions, 2 roles, 14 role permissions\ndatabase is up to date\n',
      stderr: '',
    });
    const afterFirst = await seedRows(database.url);

    const second = await runMigrate({ APP_ENV_DB_URL: database.url });
    expect(second).toEqual({ code: 0, stdout: 'database is up to date\n', stderr: '' });
    expect(await seedRows(database.url)).toEqual(afterFirst);
    expect(afterFirst[3]).toEqual([{ name: '0001-initial-schema' }]);
  });

  it('prints one line and exits 1 when the database cannot be reached', async () => {
    const outcome = await runMigrate({ APP_ENV_DB_URL: 'postgres://postgres@127.0.0.1:1/signal' });
    expect(outcome.code).toBe(1);
    expect(outcome.stdout).toBe('');
    expect(outcome.stderr).toMatch(/^migrate failed: .*ECONNREFUSED.*\n$/);
  });

  it('prints one line naming the variable and exits 1 on a malformed URL', async () => {
    const outcome = await runMigrate({ APP_ENV_DB_URL: 'mysql://somewhere/db' });
    expect(outcome).toEqual({ code: 1, stdout: '', stderr: 'migrate failed: APP_ENV_DB_URL: must use postgres: or postgresql:\n' });
  });

  describe('without APP_ENV_DB_URL', () => {
    let dataDir: string;
    beforeAll(async () => {
      dataDir = await mkdtemp(join(tmpdir(), 'signal-migrate-'));
    });
    afterAll(async () => {
      await rm(dataDir, { recursive: true, force: true });
    });

    it('migrates the embedded database under the data directory, from nothing, then finds it up to date', async () => {
      const first = await runMigrate({ APP_ENV_DATA_DIR: dataDir });
      expect(first.stderr).toBe('');
      expect(first.code).toBe(0);
      expect(first.stdout).toBe(
        `embedded database in ${dataDir}\napplied 0001-initial-schema\nseeded 7 permissions, 2 roles, 14 role permissions\ndatabase is up to date\n`,
      );

      const second = await runMigrate({ APP_ENV_DATA_DIR: dataDir });
      expect(second).toEqual({ code: 0, stdout: `embedded database in ${dataDir}\ndatabase is up to date\n`, stderr: '' });
    }, 120_000);

    it('refuses, in one line, while another process holds the embedded database', async () => {
      const held = await startEmbeddedPostgres(dataDir);
      try {
        const outcome = await runMigrate({ APP_ENV_DATA_DIR: dataDir });
        expect(outcome.code).toBe(1);
        expect(outcome.stderr).toBe(
          `migrate failed: embedded database ${join(dataDir, 'pglite')} is in use by process ${process.pid}; stop it first (or set APP_ENV_DB_URL)\n`,
        );
      } finally {
        await held.close();
      }
    });
  });
});
