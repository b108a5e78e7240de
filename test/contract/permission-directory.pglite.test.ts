import { useMigratedDatabase } from '../fixtures/fresh-database.ts';
import { postgresPermissionHarness } from '../fixtures/postgres-harnesses.ts';
import { permissionDirectoryContract } from './permission-directory.contract.ts';

const database = useMigratedDatabase('pglite', 'permissions');

permissionDirectoryContract('PostgresPermissionDirectory on embedded PGlite', async () => postgresPermissionHarness(database()));
