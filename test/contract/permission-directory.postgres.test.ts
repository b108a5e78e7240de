import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { useMigratedDatabase } from '../fixtures/fresh-database.ts';
import { postgresPermissionHarness } from '../fixtures/postgres-harnesses.ts';
import { permissionDirectoryContract } from './permission-directory.contract.ts';

const database = useMigratedDatabase('postgres', 'permissions');

permissionDirectoryContract('PostgresPermissionDirectory on PostgreSQL', async () => postgresPermissionHarness(database()));

describe('PostgresPermissionDirectory cache', () => {
  const role = (): string => `ROLE_${randomUUID().slice(0, 8)}`;

  it('answers from the cache within the TTL and sees changes after it', async () => {
    let now = 1_000_000;
    const { directory, grant } = postgresPermissionHarness(database(), { ttlMs: 30_000, now: () => now });
    const editor = role();
    await grant(editor, 'Doc.read');
    expect(await directory.permissionsOf([editor])).toEqual(new Set(['Doc.read']));

    await grant(editor, 'Doc.write');
    now += 29_999;
    expect(await directory.permissionsOf([editor])).toEqual(new Set(['Doc.read']));

    now += 1;
    expect(await directory.permissionsOf([editor])).toEqual(new Set(['Doc.read', 'Doc.write']));
  });

  it('caches each role on its own, so a new combination asks only for the roles it lacks', async () => {
    let now = 0;
    const { directory, grant } = postgresPermissionHarness(database(), { now: () => now });
    const [first, second] = [role(), role()];
    await grant(first, 'A.one');
    await grant(second, 'B.one');
    expect(await directory.permissionsOf([first])).toEqual(new Set(['A.one']));

    // `first` was cached before this grant; `second` is asked for now.
    await grant(first, 'A.two');
    await grant(second, 'B.two');
    now += 1;
    expect(await directory.permissionsOf([first, second])).toEqual(new Set(['A.one', 'B.one', 'B.two']));
  });

  it('does not cache a failure: the next call asks the database again', async () => {
    const { execute } = database();
    const { directory, grant } = postgresPermissionHarness(database());
    const auditor = role();
    await grant(auditor, 'Report.read');

    await execute('alter table "RolePermission" rename to "RolePermission_away"');
    try {
      await expect(directory.permissionsOf([auditor])).rejects.toThrow();
    } finally {
      await execute('alter table "RolePermission_away" rename to "RolePermission"');
    }
    expect(await directory.permissionsOf([auditor])).toEqual(new Set(['Report.read']));
  });

  it('forgets the oldest roles beyond maxEntries and still answers for every role asked', async () => {
    const { directory, grant } = postgresPermissionHarness(database(), { maxEntries: 1 });
    const [first, second] = [role(), role()];
    await grant(first, 'X.one');
    await grant(second, 'Y.one');

    expect(await directory.permissionsOf([first, second])).toEqual(new Set(['X.one', 'Y.one']));
    await grant(first, 'X.two');
    // `first` was evicted, so it is read again; `second` is still cached.
    expect(await directory.permissionsOf([first])).toEqual(new Set(['X.one', 'X.two']));
  });
});
