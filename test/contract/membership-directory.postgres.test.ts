import { useMigratedDatabase } from '../fixtures/fresh-database.ts';
import { postgresMembershipHarness } from '../fixtures/postgres-harnesses.ts';
import { membershipDirectoryContract } from './membership-directory.contract.ts';

const database = useMigratedDatabase('postgres', 'membership');

membershipDirectoryContract('PostgresMembershipDirectory on PostgreSQL', async () => postgresMembershipHarness(database()));
