import type { MembershipDirectory, MembershipTarget } from '../../application/ports/membership-directory.port.ts';

/**
 * Memberships held in memory: the embedded default before a database is
 * configured, and the twin the contract suite holds the PostgreSQL adapter to.
 */
export class InMemoryMembershipDirectory implements MembershipDirectory {
  private readonly members = new Map<string, Set<string>>();

  /** Grants membership; granting twice is harmless. */
  grant(userId: string, target: MembershipTarget, targetId: string): void {
    const key = `${target}:${targetId}`;
    let set = this.members.get(key);
    if (set === undefined) {
      set = new Set();
      this.members.set(key, set);
    }
    set.add(userId);
  }

  revoke(userId: string, target: MembershipTarget, targetId: string): void {
    this.members.get(`${target}:${targetId}`)?.delete(userId);
  }

  async membersOf(target: MembershipTarget, targetId: string): Promise<string[]> {
    return [...(this.members.get(`${target}:${targetId}`) ?? [])];
  }

  async isMember(userId: string, target: MembershipTarget, targetId: string): Promise<boolean> {
    return this.members.get(`${target}:${targetId}`)?.has(userId) ?? false;
  }
}
