import { describe, expect, it } from 'vitest';
import { InMemoryPresenceHub, InMemoryPresenceRegistry } from '../../src/adapters/memory/in-memory-presence-registry.ts';
import { ManualClock } from '../../src/adapters/system/system-clock.ts';
import type { ClientRecord } from '../../src/application/ports/presence-registry.port.ts';
import { presenceRegistryContract } from './presence-registry.contract.ts';

presenceRegistryContract('InMemoryPresenceRegistry', async () => {
  // One hub per harness is one isolated cluster; its clock is the store's.
  const clock = new ManualClock();
  const hub = new InMemoryPresenceHub(clock);
  const ttlMs = 30_000;
  const registries: InMemoryPresenceRegistry[] = [];
  return {
    ttlMs,
    async makeRegistry() {
      const registry = new InMemoryPresenceRegistry(hub, { ttlMs });
      registries.push(registry);
      return registry;
    },
    async elapse(ms) {
      clock.advance(ms);
    },
    async loseData() {
      hub.flush();
    },
    async cleanup() {
      await Promise.all(registries.map((registry) => registry.close()));
    },
  };
});

describe('InMemoryPresenceRegistry', () => {
  const record: ClientRecord = {
    id: 'c-1',
    userId: 'u-1',
    instanceId: 'node-a',
    state: 'AUTHENTICATED',
    rooms: [],
    encrypted: false,
    connectedAt: '2026-11-21T10:00:00.000Z',
    lastActivity: '2026-11-21T10:00:00.000Z',
  };

  it('counts an instance alive until exactly one TTL after its last heartbeat', async () => {
    const clock = new ManualClock();
    const registry = new InMemoryPresenceRegistry(new InMemoryPresenceHub(clock), { ttlMs: 1_000 });
    await registry.heartbeat('node-a', [record]);

    clock.advance(999);
    expect(await registry.instances()).toEqual(['node-a']);
    expect(await registry.get('c-1')).toEqual(record);
    clock.advance(1);
    expect(await registry.instances()).toEqual([]);
    expect(await registry.get('c-1')).toBeNull();
  });

  it('refuses a TTL that is not a positive integer', () => {
    const hub = new InMemoryPresenceHub(new ManualClock());
    expect(() => new InMemoryPresenceRegistry(hub, { ttlMs: 0 })).toThrow(expect.objectContaining({ code: 'ERR_PRESENCE_INPUT' }));
  });
});
