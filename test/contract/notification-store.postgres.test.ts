import { useMigratedDatabase } from '../fixtures/fresh-database.ts';
import { postgresNotificationHarness } from '../fixtures/postgres-harnesses.ts';
import { notificationStoreContract } from './notification-store.contract.ts';

const database = useMigratedDatabase('postgres', 'notifications');

notificationStoreContract('PostgresNotificationStore on PostgreSQL', async () => postgresNotificationHarness(database()));
