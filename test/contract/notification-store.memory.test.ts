import { InMemoryNotificationStore } from '../../src/adapters/memory/in-memory-notification-store.ts';
import { notificationStoreContract } from './notification-store.contract.ts';

notificationStoreContract('InMemoryNotificationStore', async () => {
  const store = new InMemoryNotificationStore();
  return {
    store,
    async softDelete(id) {
      if (!store.delete(id)) throw new Error(`no live notification ${id}`);
    },
  };
});
