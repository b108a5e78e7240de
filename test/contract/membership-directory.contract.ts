import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { MembershipDirectory, MembershipTarget } from '../../src/application/ports/membership-directory.port.ts';

/** A policy row as the services that own `PolicyDefinition` write it. */
export interface PolicyRow {
  /** Default `g` (membership); `p` is a grant. */
  variant?: 'g' | 'p';
  /** Default `user`. */
  subjectType?: 'user' | 'role';
  subjectId: string;
  targetType: MembershipTarget | 'permission';
  targetId: string;
  /** Written already soft-deleted. */
  deleted?: boolean;
}

/**
 * A directory plus ways to write what it reads. Harnesses may share one
 * database across tests; every test uses targets and users of its own.
 */
export interface MembershipDirectoryHarness {
  directory: MembershipDirectory;
  addPolicy(row: PolicyRow): Promise<void>;
  /** Soft-deletes every live membership row of the user in the target. */
  revoke(userId: string, target: MembershipTarget, targetId: string): Promise<void>;
  cleanup?(): Promise<void>;
}

export function membershipDirectoryContract(name: string, makeHarness: () => Promise<MembershipDirectoryHarness>): void {
  describe(`MembershipDirectory contract: ${name}`, () => {
    let harness: MembershipDirectoryHarness;
    let directory: MembershipDirectory;
    let tag: string;

    beforeEach(async () => {
      harness = await makeHarness();
      directory = harness.directory;
      tag = randomUUID().slice(0, 8);
    });

    afterEach(async () => {
      await harness.cleanup?.();
    });

    const id = (name: string): string => `${name}-${tag}`;
    const sorted = (ids: string[]): string[] => [...ids].sort();

    it('lists the members of one merchant only', async () => {
      await harness.addPolicy({ subjectId: id('u1'), targetType: 'merchant', targetId: id('m1') });
      await harness.addPolicy({ subjectId: id('u2'), targetType: 'merchant', targetId: id('m1') });
      await harness.addPolicy({ subjectId: id('u3'), targetType: 'merchant', targetId: id('m2') });

      expect(sorted(await directory.membersOf('merchant', id('m1')))).toEqual(sorted([id('u1'), id('u2')]));
      expect(await directory.membersOf('merchant', id('m2'))).toEqual([id('u3')]);
    });

    it('lists a user once even with several live rows', async () => {
      await harness.addPolicy({ subjectId: id('u1'), targetType: 'merchant', targetId: id('m1') });
      await harness.addPolicy({ subjectId: id('u1'), targetType: 'merchant', targetId: id('m1') });

      expect(await directory.membersOf('merchant', id('m1'))).toEqual([id('u1')]);
    });

    it('keeps merchants and organizers apart, even with the same id', async () => {
      await harness.addPolicy({ subjectId: id('merchant-member'), targetType: 'merchant', targetId: id('x') });
      await harness.addPolicy({ subjectId: id('organizer-member'), targetType: 'organizer', targetId: id('x') });

      expect(await directory.membersOf('merchant', id('x'))).toEqual([id('merchant-member')]);
      expect(await directory.membersOf('organizer', id('x'))).toEqual([id('organizer-member')]);
      expect(await directory.isMember(id('merchant-member'), 'organizer', id('x'))).toBe(false);
      expect(await directory.isMember(id('organizer-member'), 'organizer', id('x'))).toBe(true);
    });

    it('ignores deleted rows, grants (p), role subjects and permission targets', async () => {
      await harness.addPolicy({ subjectId: id('member'), targetType: 'merchant', targetId: id('m1') });
      await harness.addPolicy({ subjectId: id('deleted'), targetType: 'merchant', targetId: id('m1'), deleted: true });
      await harness.addPolicy({ variant: 'p', subjectId: id('granted'), targetType: 'merchant', targetId: id('m1') });
      await harness.addPolicy({ subjectType: 'role', subjectId: id('ADMIN'), targetType: 'merchant', targetId: id('m1') });
      await harness.addPolicy({ subjectId: id('perm'), targetType: 'permission', targetId: id('m1') });

      expect(await directory.membersOf('merchant', id('m1'))).toEqual([id('member')]);
      for (const other of ['deleted', 'granted', 'ADMIN', 'perm']) {
        expect(await directory.isMember(id(other), 'merchant', id('m1'))).toBe(false);
      }
    });

    it('stops listing a member once the membership is revoked', async () => {
      await harness.addPolicy({ subjectId: id('u1'), targetType: 'organizer', targetId: id('o1') });
      await harness.addPolicy({ subjectId: id('u2'), targetType: 'organizer', targetId: id('o1') });
      expect(await directory.isMember(id('u1'), 'organizer', id('o1'))).toBe(true);

      await harness.revoke(id('u1'), 'organizer', id('o1'));

      expect(await directory.membersOf('organizer', id('o1'))).toEqual([id('u2')]);
      expect(await directory.isMember(id('u1'), 'organizer', id('o1'))).toBe(false);
    });

    it('answers an unknown target with no members', async () => {
      expect(await directory.membersOf('merchant', id('nowhere'))).toEqual([]);
      expect(await directory.isMember(id('u1'), 'merchant', id('nowhere'))).toBe(false);
    });
  });
}
