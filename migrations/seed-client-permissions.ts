import { ALL_CLIENT_PERMISSIONS, SEEDED_ADMIN_ROLES } from '../src/domain/permissions.ts';
import type { Permission } from '../src/domain/permissions.ts';

/** Runs one SQL statement with `?` placeholders and returns its rows. */
export type SqlExecutor = (sql: string, params: readonly unknown[]) => Promise<ReadonlyArray<Record<string, unknown>>>;

/** Rows the seed created this time; all zero when everything was already there. */
export interface SeedResult {
  permissions: number;
  roles: number;
  grants: number;
}

const DESCRIPTIONS: Record<Permission, string> = {
  'WebSocketClient.find': 'List live WebSocket connections across all instances',
  'WebSocketClient.findById': 'Look up one live WebSocket connection',
  'WebSocketClient.broadcast': 'Send an event to every connection',
  'WebSocketClient.sendToRoom': 'Send an event to every connection in a room',
  'WebSocketClient.sendToUser': 'Send an event to every connection of a user',
  'WebSocketClient.sendToClient': 'Send an event to one connection',
  'WebSocketClient.disconnect': 'Close a connection on whichever instance holds it',
};

const ROLE_NAMES: Record<(typeof SEEDED_ADMIN_ROLES)[number], { name: string; priority: number }> = {
  SUPER_ADMIN: { name: 'Super administrator', priority: 0 },
  ADMIN: { name: 'Administrator', priority: 1 },
};

/**
 * Makes sure every `WebSocketClient.*` permission exists and that the
 * seeded admin roles hold all of them. Only ever inserts (ON CONFLICT DO
 * NOTHING): running it again changes nothing, and rows an operator added or
 * renamed are left alone. It does re-grant a seeded permission an operator
 * removed from a seeded role; the contract promises those roles hold them all.
 */
export async function seedClientPermissions(execute: SqlExecutor): Promise<SeedResult> {
  const permissions = await execute(
    `insert into "Permission" ("code", "name", "description")
     values ${ALL_CLIENT_PERMISSIONS.map(() => '(?, ?, ?)').join(', ')}
     on conflict ("code") do nothing
     returning "id"`,
    ALL_CLIENT_PERMISSIONS.flatMap((code) => [code, code, DESCRIPTIONS[code]]),
  );
  const roles = await execute(
    `insert into "Role" ("identifier", "name", "priority")
     values ${SEEDED_ADMIN_ROLES.map(() => '(?, ?, ?)').join(', ')}
     on conflict ("identifier") do nothing
     returning "id"`,
    SEEDED_ADMIN_ROLES.flatMap((identifier) => [identifier, ROLE_NAMES[identifier].name, ROLE_NAMES[identifier].priority]),
  );
  const grants = await execute(
    `insert into "RolePermission" ("role_id", "permission_id")
     select r."id", p."id"
       from "Role" r cross join "Permission" p
      where r."identifier" in (${SEEDED_ADMIN_ROLES.map(() => '?').join(', ')})
        and p."code" in (${ALL_CLIENT_PERMISSIONS.map(() => '?').join(', ')})
     on conflict ("role_id", "permission_id") do nothing
     returning "role_id"`,
    [...SEEDED_ADMIN_ROLES, ...ALL_CLIENT_PERMISSIONS],
  );
  return { permissions: permissions.length, roles: roles.length, grants: grants.length };
}
