import type { LogContext, LoggerNamespace, LoggerOptions, Logger as OrmLoggerContract } from '@mikro-orm/core';
import { Migrator } from '@mikro-orm/migrations';
import { MikroORM, PostgreSqlDriver } from '@mikro-orm/postgresql';
import { MIGRATIONS } from '../../../migrations/migrations-list.ts';
import { seedClientPermissions } from '../../../migrations/seed-client-permissions.ts';
import type { SeedResult } from '../../../migrations/seed-client-permissions.ts';
import type { Closeable, DependencyHealth, HealthReporter } from '../../application/ports/lifecycle.port.ts';
import type { Logger } from '../../application/ports/logger.port.ts';
import { silentLogger } from '../../application/ports/logger.port.ts';
import { ENTITY_SCHEMAS } from './entity-schemas.ts';

export interface DatabaseOptions {
  logger?: Logger;
  /** Logs every SQL statement at debug level (values included: never in production). */
  debug?: boolean;
  /**
   * Connection pool size (default 10). The embedded database serves one
   * connection at a time and must be opened with 1. Otherwise at least 2:
   * migrate() holds a lock on one connection while migrating on another.
   */
  poolMax?: number;
  /** How often the health probe runs `select 1` (default 2 s). */
  healthIntervalMs?: number;
  /** How long the probe waits before reporting the database unreachable (default 1 s). */
  healthTimeoutMs?: number;
}

export interface MigrationReport {
  /** Names of the migrations applied by this call, in order; empty when up to date. */
  applied: string[];
  seeded: SeedResult;
}

/** One MikroORM instance and its pool, shared by every PostgreSQL adapter of the process. */
export interface Database extends Closeable, HealthReporter {
  readonly orm: MikroORM;
  /** Applies pending migrations, then the idempotent permission seeds. Safe to run on every start. */
  migrate(): Promise<MigrationReport>;
  /** Stops the probe and closes the pool; safe to call twice. */
  close(): Promise<void>;
  /** The last probe's outcome; never touches the network. */
  health(): DependencyHealth;
}

/**
 * Serialises migrations across instances starting at the same moment: each
 * takes this advisory lock before looking for pending migrations, so the
 * second one finds nothing left to do.
 */
const MIGRATION_LOCK_KEY = 4_735_201_907;

/** Longest any single statement may take, migrations included. */
const QUERY_TIMEOUT_MS = 10_000;
/** Shutdown waits this long for queries in flight before giving up on the pool. */
const CLOSE_TIMEOUT_MS = 3_000;

/**
 * Opens the pool and starts the health probe. An unreachable database does
 * not reject here: health() says so, and queries (and migrate()) reject
 * until it comes back. A malformed URL rejects.
 */
export async function openDatabase(url: string, options: DatabaseOptions = {}): Promise<Database> {
  const logger = (options.logger ?? silentLogger).child({ component: 'database' });
  const poolMax = options.poolMax ?? 10;
  if (!Number.isInteger(poolMax) || poolMax < 1) throw new RangeError('poolMax must be a whole number >= 1');
  const { ssl, ...target } = connectionTarget(url);
  const orm = await MikroORM.init({
    driver: PostgreSqlDriver,
    ...target,
    entities: [...ENTITY_SCHEMAS],
    extensions: [Migrator],
    migrations: {
      migrationsList: MIGRATIONS,
      tableName: 'mikro_orm_migrations',
      transactional: true,
      allOrNothing: true,
      // No snapshot files: the schema is defined by the migrations alone.
      snapshot: false,
      silent: true,
    },
    // Every operation forks its own EntityManager; a shared identity map would leak between requests.
    allowGlobalContext: false,
    // Creating databases is the operator's job (and would need rights on `postgres`).
    ensureDatabase: false,
    metadataCache: { enabled: false },
    pool: { min: 0, max: poolMax, idleTimeoutMillis: 30_000 },
    driverOptions: {
      // query_timeout is enforced by the client: a server that stops answering
      // fails the query (and frees its connection) instead of holding it forever.
      connection: {
        connectionTimeoutMillis: 5_000,
        query_timeout: QUERY_TIMEOUT_MS,
        application_name: 'signal',
        ...(ssl === undefined ? {} : { ssl }),
      },
      // The query builder underneath would print these to the console; they belong in the JSON log.
      log: {
        warn: (message: unknown) => logger.warn({}, String(message)),
        error: (message: unknown) => logger.error({}, String(message)),
        deprecate: (message: unknown) => logger.debug({}, String(message)),
        debug: (message: unknown) => logger.debug({}, String(message)),
      },
    },
    debug: options.debug === true ? ['query', 'info'] : false,
    loggerFactory: (loggerOptions) => new StructuredOrmLogger(loggerOptions, logger),
  });
  const database = new PostgresDatabase(orm, logger, poolMax, options.healthIntervalMs ?? 2_000, options.healthTimeoutMs ?? 1_000);
  await database.probe();
  return database;
}

class PostgresDatabase implements Database {
  private state: DependencyHealth = { name: 'database', ready: false, detail: 'connecting' };
  private probing = false;
  private closed = false;
  private readonly timer: NodeJS.Timeout;

  constructor(
    readonly orm: MikroORM,
    private readonly logger: Logger,
    private readonly poolMax: number,
    intervalMs: number,
    private readonly timeoutMs: number,
  ) {
    this.timer = setInterval(() => void this.probe(), intervalMs);
    this.timer.unref();
  }

  health(): DependencyHealth {
    return { ...this.state };
  }

  async migrate(): Promise<MigrationReport> {
    // Fails with the server's own reason (say, database "x" does not exist)
    // before the migrator, which would quietly create a missing database.
    await this.orm.em.getConnection().execute('select 1');
    return this.exclusively(async () => {
      const applied = await this.orm.getMigrator().up();
      const seeded = await this.orm.em
        .fork()
        .transactional((em) => seedClientPermissions(async (sql, params) => em.execute<Array<Record<string, unknown>>>(sql, [...params])));
      for (const migration of applied) this.logger.info({ migration: migration.name }, 'migration applied');
      return { applied: applied.map((migration) => migration.name), seeded };
    });
  }

  /**
   * Runs `work` while holding a transaction-scoped advisory lock on a
   * connection of its own, so that instances starting together migrate one
   * after the other (the migrator's own bookkeeping-table creation races
   * otherwise). That needs a second connection; a pool of one is the
   * embedded database, which a single process owns, so there is nobody to
   * race with.
   */
  private async exclusively<T>(work: () => Promise<T>): Promise<T> {
    if (this.poolMax === 1) return work();
    let result: { value: T } | undefined;
    await this.orm.em.fork().transactional(async (em) => {
      await em.execute('select pg_advisory_xact_lock(?)', [MIGRATION_LOCK_KEY]);
      result = { value: await work() };
    });
    return result!.value;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    this.state = { name: 'database', ready: false, detail: 'closed' };
    // The pool waits for every borrowed connection; one stuck on a hung
    // server must not keep the process from exiting.
    let timer: NodeJS.Timeout | undefined;
    const gaveUp = await Promise.race([
      this.orm.close(true).then(() => false),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(true), CLOSE_TIMEOUT_MS);
      }),
    ]);
    clearTimeout(timer);
    if (gaveUp) this.logger.warn({}, `database pool did not close within ${CLOSE_TIMEOUT_MS} ms; abandoning it`);
  }

  /** One `select 1` with a deadline; never rejects. */
  async probe(): Promise<void> {
    if (this.probing || this.closed) return;
    this.probing = true;
    let timeout: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        this.orm.em.getConnection().execute('select 1'),
        new Promise((_resolve, reject) => {
          timeout = setTimeout(() => reject(new Error(`no answer within ${this.timeoutMs} ms`)), this.timeoutMs);
        }),
      ]);
      if (!this.closed) {
        if (!this.state.ready && this.state.detail !== 'connecting') this.logger.info({}, 'database reachable again');
        this.state = { name: 'database', ready: true };
      }
    } catch (error) {
      if (!this.closed) {
        const detail = `unreachable: ${(error as Error).message}`;
        if (this.state.ready || this.state.detail === 'connecting') this.logger.warn({ code: 'ERR_DATABASE_UNAVAILABLE' }, detail);
        this.state = { name: 'database', ready: false, detail };
      }
    } finally {
      clearTimeout(timeout);
      this.probing = false;
    }
  }
}

export interface ConnectionTarget {
  host: string;
  port: number;
  user: string;
  password?: string;
  dbName: string;
  ssl?: { rejectUnauthorized: boolean };
}

/**
 * MikroORM reads only host, port, user, password and database from a URL;
 * the port defaults to 5432 here (MikroORM would use 0) and `sslmode` is
 * honoured the way libpq reads it: `require` encrypts, `verify-ca` and
 * `verify-full` also verify the server certificate.
 */
export function connectionTarget(url: string): ConnectionTarget {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new Error('database URL is not a valid URL');
  }
  if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:') throw new Error('database URL must use postgres:');
  const dbName = decodeURIComponent(parsed.pathname.replace(/^\//, ''));
  const sslmode = parsed.searchParams.get('sslmode') ?? (parsed.searchParams.get('ssl') === 'true' ? 'require' : 'disable');
  const target: ConnectionTarget = {
    host: decodeURIComponent(parsed.hostname) || '127.0.0.1',
    port: parsed.port === '' ? 5432 : Number(parsed.port),
    user: decodeURIComponent(parsed.username) || 'postgres',
    dbName: dbName === '' ? 'postgres' : dbName,
  };
  if (parsed.password !== '') target.password = decodeURIComponent(parsed.password);
  if (sslmode === 'require' || sslmode === 'no-verify') target.ssl = { rejectUnauthorized: false };
  if (sslmode === 'verify-ca' || sslmode === 'verify-full') target.ssl = { rejectUnauthorized: true };
  return target;
}

/** Routes MikroORM's own log lines into the service's JSON logger. */
class StructuredOrmLogger implements OrmLoggerContract {
  private debugMode: boolean | LoggerNamespace[];

  constructor(
    options: LoggerOptions,
    private readonly target: Logger,
  ) {
    this.debugMode = options.debugMode ?? false;
  }

  log(namespace: string, message: string, context?: LogContext): void {
    if (context?.level === 'error') return this.error(namespace, message, context);
    if (context?.level === 'warning') return this.warn(namespace, message, context);
    if (this.isEnabled(namespace as LoggerNamespace, context)) this.target.debug({ namespace }, message);
  }

  error(namespace: string, message: string, context?: LogContext): void {
    this.target.error({ namespace, label: context?.label }, message);
  }

  warn(namespace: string, message: string, context?: LogContext): void {
    this.target.warn({ namespace, label: context?.label }, message);
  }

  logQuery(context: LogContext): void {
    if (!this.isEnabled('query', context)) return;
    this.target.debug({ namespace: 'query', took: context.took, results: context.results, affected: context.affected }, context.query ?? '');
  }

  setDebugMode(debugMode: boolean | LoggerNamespace[]): void {
    this.debugMode = debugMode;
  }

  isEnabled(namespace: LoggerNamespace, context?: LogContext): boolean {
    if (context?.enabled !== undefined) return context.enabled;
    const mode = context?.debugMode ?? this.debugMode;
    return Array.isArray(mode) ? mode.includes(namespace) : mode;
  }
}
