import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/adapters/system/system-clock.ts';
import { ClientDirectory, INSTANCE_COUNT_FRESH_MS } from '../../src/application/client-directory.ts';
import { LocalConnections } from '../../src/application/local-connections.ts';
import type { ControlChannel } from '../../src/application/ports/control-channel.port.ts';
import type { PresenceRegistry } from '../../src/application/ports/presence-registry.port.ts';
import { PresenceUnavailableError } from '../../src/adapters/redis/redis-presence-registry.ts';
import { recordingLogger } from '../fixtures/recording-logger.ts';

/**
 * The instance count behind the status route: fresh counts are answered
 * at once, stale ones looked up once for every caller waiting, failures
 * never kept.
 */

/** A registry whose live-instance list grows by one instance at every lookup, answered when `release` is called. */
function growingRegistry() {
  let lookups = 0;
  const waiting: Array<() => void> = [];
  let failNext = false;
  const registry = {
    instances: () =>
      new Promise<string[]>((resolve, reject) => {
        const n = ++lookups;
        const fail = failNext;
        failNext = false;
        waiting.push(() => (fail ? reject(new PresenceUnavailableError('instances: redis end')) : resolve(Array.from({ length: n }, (_, i) => `node-${i}`))));
      }),
  } as unknown as PresenceRegistry;
  return {
    registry,
    release: () => waiting.splice(0).forEach((answer) => answer()),
    failNextLookup: () => (failNext = true),
  };
}

function directoryOver(registry: PresenceRegistry, clock: ManualClock): ClientDirectory {
  return new ClientDirectory(registry, {} as ControlChannel, new LocalConnections(), 'node-0', clock, recordingLogger([]));
}

describe('ClientDirectory.instanceCount', () => {
  it('looks the count up once for every caller that asks while the lookup runs', async () => {
    const clock = new ManualClock();
    const { registry, release } = growingRegistry();
    const directory = directoryOver(registry, clock);
    const first = directory.instanceCount();
    const second = directory.instanceCount();
    expect(first).toBeInstanceOf(Promise);
    release();
    expect(await Promise.all([first, second])).toEqual([1, 1]);
  });

  it('answers a count less than a second old at once, and looks it up again after that', async () => {
    const clock = new ManualClock();
    const { registry, release } = growingRegistry();
    const directory = directoryOver(registry, clock);
    const looked = directory.instanceCount();
    release();
    expect(await looked).toBe(1);

    clock.advance(INSTANCE_COUNT_FRESH_MS - 1);
    expect(directory.instanceCount()).toBe(1);

    clock.advance(1);
    const again = directory.instanceCount();
    expect(again).toBeInstanceOf(Promise);
    release();
    expect(await again).toBe(2);
    expect(directory.instanceCount()).toBe(2);
  });

  it('keeps no failed lookup: the caller gets the error, the next call asks again', async () => {
    const clock = new ManualClock();
    const { registry, release, failNextLookup } = growingRegistry();
    const directory = directoryOver(registry, clock);
    failNextLookup();
    const failed = directory.instanceCount();
    release();
    await expect(failed).rejects.toMatchObject({ code: 'ERR_PRESENCE_UNAVAILABLE' });

    const retried = directory.instanceCount();
    expect(retried).toBeInstanceOf(Promise);
    release();
    expect(await retried).toBe(2);
  });
});
