import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';
import type { Logger } from '../../application/ports/logger.port.ts';
import { silentLogger } from '../../application/ports/logger.port.ts';

export interface EmbeddedPostgres {
  /** `postgres://postgres@127.0.0.1:<port>/postgres`; open it with `poolMax: 1`. */
  readonly url: string;
  /** Stops listening and closes the database; close the pool using it first. Safe to call twice. */
  close(): Promise<void>;
}

/**
 * Connections the socket server accepts. PGlite runs one query at a time
 * for all of them; the service's own pool uses one (it must: a pool of
 * several would interleave a transaction with queries of another
 * connection), the rest is slack for a reconnect and for a developer's psql.
 */
const MAX_SOCKET_CONNECTIONS = 4;

/**
 * PostgreSQL compiled to WebAssembly (PGlite), data under `<dataDir>/pglite`,
 * served over the wire protocol on a free loopback port, so the embedded
 * default runs the very same driver, migrations and SQL as production.
 *
 * One process at a time may own a data directory: a second one (say
 * `npm run migrate` while the service runs) would corrupt it, so a lock file
 * naming the owner's pid refuses it with a clear message. A lock left by a
 * process that no longer exists is taken over.
 */
export async function startEmbeddedPostgres(dataDir: string, logger: Logger = silentLogger): Promise<EmbeddedPostgres> {
  const log = logger.child({ component: 'embedded-postgres' });
  const directory = resolve(dataDir, 'pglite');
  await mkdir(directory, { recursive: true });
  const lockPath = resolve(dataDir, 'pglite.lock');
  await acquireLock(lockPath, directory);

  let db: PGlite | undefined;
  let server: PGLiteSocketServer | undefined;
  try {
    db = await PGlite.create(directory);
    server = new PGLiteSocketServer({ db, host: '127.0.0.1', port: 0, maxConnections: MAX_SOCKET_CONNECTIONS });
    await server.start();
  } catch (error) {
    await server?.stop().catch(() => {});
    await db?.close().catch(() => {});
    await rm(lockPath, { force: true });
    throw error;
  }
  const url = `postgres://postgres@${server.getServerConn()}/postgres`;
  log.info({ url, dataDir: directory }, 'embedded PostgreSQL (PGlite) listening');

  let closing: Promise<void> | undefined;
  const started = { db, server };
  return {
    url,
    close() {
      closing ??= (async () => {
        try {
          await started.server.stop();
          await started.db.close();
        } finally {
          await rm(lockPath, { force: true });
        }
      })();
      return closing;
    },
  };
}

async function acquireLock(lockPath: string, directory: string): Promise<void> {
  for (let attempt = 0; attempt < 2; attempt += 1) {
    try {
      await writeFile(lockPath, `${process.pid}\n`, { flag: 'wx' });
      return;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const owner = Number.parseInt(await readFile(lockPath, 'utf8').catch(() => ''), 10);
    if (Number.isInteger(owner) && owner > 0 && isAlive(owner)) {
      throw new Error(`embedded database ${directory} is in use by process ${owner}; stop it first (or set APP_ENV_DB_URL)`);
    }
    await rm(lockPath, { force: true });
  }
  throw new Error(`could not lock the embedded database ${directory} (${lockPath})`);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists but belongs to someone else.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
