import type { MikroORM } from '@mikro-orm/postgresql';
import type { PermissionDirectory } from '../../application/ports/permission-directory.port.ts';

export interface PermissionCacheOptions {
  /** How long a role's permissions are trusted before asking again (default 30 s). */
  ttlMs?: number;
  /** Roles remembered at most; the oldest entry goes first (default 1000). */
  maxEntries?: number;
  /** Milliseconds; injectable so tests can move time. */
  now?: () => number;
}

interface Entry {
  expiresAt: number;
  codes: Promise<ReadonlySet<string>>;
}

const NONE: ReadonlySet<string> = new Set();

/**
 * PermissionDirectory on Role → RolePermission → Permission, asked on every
 * protected REST call. Each role's codes are cached for a short TTL, so a
 * change to the role tables takes effect within that time on every
 * instance. Roles are cached one by one (users share roles, rarely whole
 * role sets); concurrent misses for a role share one query; a failed query
 * is not cached, so the next call asks again.
 */
export class PostgresPermissionDirectory implements PermissionDirectory {
  private readonly entries = new Map<string, Entry>();
  private readonly ttlMs: number;
  private readonly maxEntries: number;
  private readonly now: () => number;

  constructor(
    private readonly orm: MikroORM,
    options: PermissionCacheOptions = {},
  ) {
    this.ttlMs = options.ttlMs ?? 30_000;
    this.maxEntries = options.maxEntries ?? 1_000;
    this.now = options.now ?? Date.now;
  }

  async permissionsOf(roleIdentifiers: readonly string[]): Promise<ReadonlySet<string>> {
    const roles = [...new Set(roleIdentifiers)];
    const now = this.now();
    const cached = roles.map((role) => {
      const entry = this.entries.get(role);
      return entry !== undefined && entry.expiresAt > now ? entry.codes : undefined;
    });
    const missing = roles.filter((_role, index) => cached[index] === undefined);
    const loaded = missing.length > 0 ? this.load(missing, now) : new Map<string, Promise<ReadonlySet<string>>>();

    const result = new Set<string>();
    const sets = await Promise.all(roles.map((role, index) => cached[index] ?? loaded.get(role) ?? Promise.resolve(NONE)));
    for (const codes of sets) for (const code of codes) result.add(code);
    return result;
  }

  /** Starts one query for all missing roles and caches its per-role answers. */
  private load(roles: string[], now: number): Map<string, Promise<ReadonlySet<string>>> {
    const batch = this.query(roles);
    const loaded = new Map<string, Promise<ReadonlySet<string>>>();
    for (const role of roles) {
      const entry: Entry = { expiresAt: now + this.ttlMs, codes: batch.then((byRole) => byRole.get(role) ?? NONE) };
      loaded.set(role, entry.codes);
      // Re-inserting keeps the map in age order for eviction.
      this.entries.delete(role);
      this.entries.set(role, entry);
      entry.codes.catch(() => {
        if (this.entries.get(role) === entry) this.entries.delete(role);
      });
    }
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next().value;
      if (oldest === undefined) break;
      this.entries.delete(oldest);
    }
    return loaded;
  }

  private async query(roles: string[]): Promise<Map<string, ReadonlySet<string>>> {
    const rows = await this.orm.em.fork().execute<Array<{ identifier: string; code: string }>>(
      `select r."identifier", p."code"
         from "Role" r
         join "RolePermission" rp on rp."role_id" = r."id"
         join "Permission" p on p."id" = rp."permission_id"
        where r."identifier" in (${roles.map(() => '?').join(', ')})`,
      roles,
    );
    const byRole = new Map<string, Set<string>>();
    for (const row of rows) {
      let codes = byRole.get(row.identifier);
      if (codes === undefined) {
        codes = new Set();
        byRole.set(row.identifier, codes);
      }
      codes.add(row.code);
    }
    return byRole;
  }
}
