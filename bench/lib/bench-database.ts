import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { openDatabase, type Database } from '../../src/adapters/postgres/database.ts';
import { exitOf, ROOT, withTimeout } from './processes.ts';

/**
 * The PostgreSQL server the pipeline bench writes to: BENCH_DATABASE_URL,
 * else the test suites' TEST_DATABASE_URL, else the local default. Each run
 * gets a brand-new database (`signal_bench_<label>_<random>`), migrated with
 * the service's own migrations, and drops it afterwards; a guard process
 * (database-guard.ts) drops it if the bench dies first.
 */
export const BENCH_DATABASE_URL = process.env.BENCH_DATABASE_URL ?? process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

export interface BenchDatabase {
  readonly url: string;
  readonly name: string;
  /** A small pool for the bench's own SQL (setup, counts, cleaning). */
  readonly db: Database;
  execute<T = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]>;
  /** Closes the pool and drops the database, whoever is still connected. */
  drop(): Promise<void>;
}

export async function createBenchDatabase(label: string): Promise<BenchDatabase> {
  const name = `signal_bench_${label.replace(/[^a-z0-9]/gi, '').toLowerCase()}_${randomBytes(4).toString('hex')}`;
  const url = new URL(BENCH_DATABASE_URL);
  url.pathname = `/${name}`;
  await administer(`create database "${name}"`);
  const guard = spawn(process.execPath, ['--import', 'tsx', 'bench/lib/database-guard.ts'], {
    cwd: ROOT,
    env: { ...process.env, BENCH_GUARD_ADMIN_URL: adminUrl(), BENCH_GUARD_DATABASE: name },
    stdio: ['pipe', 'ignore', 'inherit'],
  });
  guard.stdin.on('error', () => undefined);
  const dropNow = async (): Promise<void> => {
    await administer(`drop database if exists "${name}" with (force)`);
    guard.stdin.end('disarm\n');
    await withTimeout(exitOf(guard), 10_000, 'bench database guard').catch(() => guard.kill('SIGKILL'));
  };
  let db: Database | undefined;
  try {
    db = await openDatabase(url.href, { poolMax: 2 });
    await db.migrate();
  } catch (error) {
    await db?.close();
    await dropNow();
    throw error;
  }
  const opened = db;
  return {
    url: url.href,
    name,
    db: opened,
    execute: <T>(sql: string, params: unknown[] = []) => opened.orm.em.fork().execute<T[]>(sql, params),
    drop: async () => {
      await opened.close();
      await dropNow();
    },
  };
}

function adminUrl(): string {
  const admin = new URL(BENCH_DATABASE_URL);
  admin.pathname = '/postgres';
  return admin.href;
}

async function administer(sql: string): Promise<void> {
  const db = await openDatabase(adminUrl(), { poolMax: 1 });
  try {
    await db.orm.em.getConnection().execute(sql);
  } finally {
    await db.close();
  }
}
