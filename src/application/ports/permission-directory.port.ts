/**
 * Which permissions a set of roles grants, from the Role / RolePermission /
 * Permission tables. Unknown roles grant nothing (not an error). A store
 * failure rejects; callers answer 503 rather than guessing.
 */
export interface PermissionDirectory {
  /** The union of the permission codes of the given role identifiers. */
  permissionsOf(roleIdentifiers: readonly string[]): Promise<ReadonlySet<string>>;
}
