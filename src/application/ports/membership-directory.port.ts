export type MembershipTarget = 'merchant' | 'organizer';

/**
 * Who belongs to a merchant or organizer: the policy store other services
 * write (PolicyDefinition `g` rows, user → merchant/organizer, not deleted).
 * Read-only here. An unknown target has no members (empty list, not an
 * error); a store failure rejects and the caller decides whether to retry.
 */
export interface MembershipDirectory {
  /** User ids, each once, in no particular order. */
  membersOf(target: MembershipTarget, targetId: string): Promise<string[]>;
  isMember(userId: string, target: MembershipTarget, targetId: string): Promise<boolean>;
}
