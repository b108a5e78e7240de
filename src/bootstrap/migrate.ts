import type { Database } from '../adapters/postgres/database.ts';
import { openDatabase } from '../adapters/postgres/database.ts';
import type { EmbeddedPostgres } from '../adapters/postgres/embedded-postgres.ts';
import { startEmbeddedPostgres } from '../adapters/postgres/embedded-postgres.ts';
import { loadConfig } from './config.ts';

/**
 * `npm run migrate`: applies pending migrations and the idempotent
 * permission seeds to `APP_ENV_DB_URL`, or, without it, to the embedded
 * database under the data directory (which must not be in use by a running
 * service). Prints one line per applied migration, then "database is up to
 * date"; exits 0. Any failure prints one line on stderr and exits 1.
 */
async function migrate(write: (line: string) => void): Promise<void> {
  const config = loadConfig();
  let embedded: EmbeddedPostgres | undefined;
  let database: Database | undefined;
  try {
    let url = config.databaseUrl;
    if (url === undefined) {
      embedded = await startEmbeddedPostgres(config.dataDir);
      url = embedded.url;
      write(`embedded database in ${config.dataDir}`);
    }
    database = await openDatabase(url, { poolMax: embedded === undefined ? 2 : 1 });
    const report = await database.migrate();
    for (const name of report.applied) write(`applied ${name}`);
    const { permissions, roles, grants } = report.seeded;
    if (permissions + roles + grants > 0) write(`seeded ${permissions} permissions, ${roles} roles, ${grants} role permissions`);
    write('database is up to date');
  } finally {
    await database?.close();
    await embedded?.close();
  }
}

/** Error text can span lines (SQL, stack-like details); operators get one. */
function oneLine(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  const flat = text.replace(/\s+/g, ' ').trim() || 'unknown error';
  return flat.length > 400 ? `${flat.slice(0, 400)}…` : flat;
}

try {
  await migrate((line) => process.stdout.write(`${line}\n`));
} catch (error) {
  process.stderr.write(`migrate failed: ${oneLine(error)}\n`);
  process.exitCode = 1;
}
