import { InMemoryPermissionDirectory } from '../../src/adapters/memory/in-memory-permission-directory.ts';
import { permissionDirectoryContract } from './permission-directory.contract.ts';

permissionDirectoryContract('InMemoryPermissionDirectory', async () => {
  const directory = new InMemoryPermissionDirectory();
  return {
    directory,
    async grant(role, permission) {
      directory.grant(role, permission);
    },
  };
});
