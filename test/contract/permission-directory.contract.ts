import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { PermissionDirectory } from '../../src/application/ports/permission-directory.port.ts';
import { ALL_CLIENT_PERMISSIONS, SEEDED_ADMIN_ROLES } from '../../src/domain/permissions.ts';

/**
 * A directory started from the migrations' seed, plus a way to grant more.
 * Harnesses may share one database across tests; every test uses roles of
 * its own. Grants happen before the first question (adapters may cache).
 */
export interface PermissionDirectoryHarness {
  directory: PermissionDirectory;
  grant(role: string, permission: string): Promise<void>;
  cleanup?(): Promise<void>;
}

export function permissionDirectoryContract(name: string, makeHarness: () => Promise<PermissionDirectoryHarness>): void {
  describe(`PermissionDirectory contract: ${name}`, () => {
    let harness: PermissionDirectoryHarness;
    let tag: string;

    beforeEach(async () => {
      harness = await makeHarness();
      tag = randomUUID().slice(0, 8);
    });

    afterEach(async () => {
      await harness.cleanup?.();
    });

    const role = (name: string): string => `${name}_${tag}`;

    it('gives the seeded SUPER_ADMIN and ADMIN roles every WebSocketClient permission', async () => {
      for (const seeded of SEEDED_ADMIN_ROLES) {
        expect(await harness.directory.permissionsOf([seeded])).toEqual(new Set(ALL_CLIENT_PERMISSIONS));
      }
    });

    it('grants nothing to unknown roles or to no roles', async () => {
      expect(await harness.directory.permissionsOf([role('NOBODY')])).toEqual(new Set());
      expect(await harness.directory.permissionsOf([])).toEqual(new Set());
    });

    it('returns the union of the given roles, each permission once', async () => {
      await harness.grant(role('READER'), 'WebSocketClient.find');
      await harness.grant(role('READER'), 'WebSocketClient.findById');
      await harness.grant(role('SENDER'), 'WebSocketClient.sendToUser');
      await harness.grant(role('SENDER'), 'WebSocketClient.find');

      expect(await harness.directory.permissionsOf([role('READER'), role('SENDER'), role('NOBODY'), role('READER')])).toEqual(
        new Set(['WebSocketClient.find', 'WebSocketClient.findById', 'WebSocketClient.sendToUser']),
      );
      expect(await harness.directory.permissionsOf([role('SENDER')])).toEqual(new Set(['WebSocketClient.sendToUser', 'WebSocketClient.find']));
    });

    it('adds a seeded role permissions to those of another role', async () => {
      await harness.grant(role('AUDITOR'), 'Report.read');

      expect(await harness.directory.permissionsOf([role('AUDITOR'), 'ADMIN'])).toEqual(new Set([...ALL_CLIENT_PERMISSIONS, 'Report.read']));
    });
  });
}
