import type { PermissionDirectory } from '../../application/ports/permission-directory.port.ts';
import { ALL_CLIENT_PERMISSIONS, SEEDED_ADMIN_ROLES } from '../../domain/permissions.ts';

/**
 * Role grants held in memory, starting from the same seed the migrations
 * write: the embedded default and the twin of the PostgreSQL adapter.
 */
export class InMemoryPermissionDirectory implements PermissionDirectory {
  private readonly grants = new Map<string, Set<string>>();

  constructor(seed = true) {
    if (seed) for (const role of SEEDED_ADMIN_ROLES) for (const permission of ALL_CLIENT_PERMISSIONS) this.grant(role, permission);
  }

  grant(role: string, permission: string): void {
    let set = this.grants.get(role);
    if (set === undefined) {
      set = new Set();
      this.grants.set(role, set);
    }
    set.add(permission);
  }

  revoke(role: string, permission: string): void {
    this.grants.get(role)?.delete(permission);
  }

  async permissionsOf(roleIdentifiers: readonly string[]): Promise<ReadonlySet<string>> {
    const result = new Set<string>();
    for (const role of roleIdentifiers) for (const permission of this.grants.get(role) ?? []) result.add(permission);
    return result;
  }
}
