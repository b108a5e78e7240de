import { InMemoryMembershipDirectory } from '../../src/adapters/memory/in-memory-membership-directory.ts';
import { membershipDirectoryContract } from './membership-directory.contract.ts';

membershipDirectoryContract('InMemoryMembershipDirectory', async () => {
  const directory = new InMemoryMembershipDirectory();
  return {
    directory,
    async addPolicy(row) {
      // The twin holds memberships only: rows that are not one (deleted, grants, roles, permissions) are not written.
      const isMembership = (row.variant ?? 'g') === 'g' && (row.subjectType ?? 'user') === 'user' && row.deleted !== true;
      if (isMembership && row.targetType !== 'permission') directory.grant(row.subjectId, row.targetType, row.targetId);
    },
    async revoke(userId, target, targetId) {
      directory.revoke(userId, target, targetId);
    },
  };
});
