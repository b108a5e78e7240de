import { openDatabase } from '../../src/adapters/postgres/database.ts';

/**
 * Drops the bench's database if the bench goes away without doing it (a
 * deadline, Ctrl-C, SIGKILL): started by bench-database.ts with a pipe on
 * stdin, it waits for that pipe to close. `disarm` on stdin (the bench
 * dropped the database itself) makes it leave without doing anything.
 * Signals are ignored so that a Ctrl-C to the whole process group does not
 * take it down before it has cleaned up.
 *
 * env: BENCH_GUARD_ADMIN_URL (a URL of the `postgres` database), BENCH_GUARD_DATABASE.
 */
const adminUrl = process.env.BENCH_GUARD_ADMIN_URL ?? '';
const name = process.env.BENCH_GUARD_DATABASE ?? '';
let disarmed = false;

for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => undefined);

process.stdin.on('data', (chunk: Buffer) => {
  if (chunk.toString('utf8').includes('disarm')) disarmed = true;
});
process.stdin.once('end', () => {
  if (disarmed || !/^signal_bench_[a-z0-9_]+$/.test(name)) process.exit(0);
  const force = setTimeout(() => process.exit(1), 30_000);
  void (async () => {
    const admin = await openDatabase(adminUrl, { poolMax: 1 });
    try {
      await admin.orm.em.getConnection().execute(`drop database if exists "${name}" with (force)`);
    } finally {
      await admin.close();
    }
  })().then(
    () => process.exit(0),
    (error: unknown) => {
      clearTimeout(force);
      process.stderr.write(`bench database guard: could not drop ${name}: ${(error as Error).message}\n`);
      process.exit(1);
    },
  );
});
process.stdin.resume();
