import type { MigrationObject } from '@mikro-orm/core';
import { Migration0001InitialSchema } from './0001-initial-schema.ts';

/**
 * Every migration, in order. Listed in code rather than discovered from the
 * folder so the same list works under tsx, in a bundle and in tests; a new
 * migration is a new file plus one line here. Names are what the migrations
 * table records: never rename one that has shipped.
 */
export const MIGRATIONS: MigrationObject[] = [{ name: '0001-initial-schema', class: Migration0001InitialSchema }];
