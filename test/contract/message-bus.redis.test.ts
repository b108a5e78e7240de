import { afterEach, describe, expect, it } from 'vitest';
import { RedisMessageBus } from '../../src/adapters/redis/redis-message-bus.ts';
import type { BusMessage } from '../../src/application/ports/message-bus.port.ts';
import { redisBusHarness } from '../fixtures/bus-harnesses.ts';
import { REDIS_URL, uniquePrefix } from '../fixtures/env.ts';
import { settle, waitFor } from '../fixtures/wait-for.ts';
import type { MessageBusHarness } from './message-bus.contract.ts';
import { CAPTURED, messageBusContract } from './message-bus.contract.ts';

messageBusContract('RedisMessageBus', () => redisBusHarness());

describe('RedisMessageBus on a shared Redis', () => {
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    await Promise.all(cleanups.splice(0).map((cleanup) => cleanup()));
  });

  async function harness(prefix?: string): Promise<MessageBusHarness> {
    const made = await redisBusHarness(prefix);
    cleanups.push(() => made.cleanup());
    return made;
  }

  async function listen(bus: RedisMessageBus): Promise<BusMessage[]> {
    const received: BusMessage[] = [];
    await bus.subscribe((message) => received.push(message));
    return received;
  }

  it('keeps two prefixes apart', async () => {
    const [one, two] = await Promise.all([harness(), harness()]);
    const [a1, b1, a2, b2] = await Promise.all([one.makeBus('a'), one.makeBus('b'), two.makeBus('a'), two.makeBus('b')]);
    const [got1, got2] = await Promise.all([listen(b1 as RedisMessageBus), listen(b2 as RedisMessageBus)]);

    await a1.publish({ serverId: 'a', type: 'broadcast', event: 'one', data: 1 });
    await a2.publish({ serverId: 'a', type: 'room', target: 'r', event: 'two', data: 2 });
    await one.publishRaw(CAPTURED.user.channel, CAPTURED.user.text);

    await waitFor(() => got1.length >= 2 && got2.length >= 1, 5_000, 'each cluster to receive its own');
    await settle(150);
    expect(got1.map((message) => message.event)).toEqual(['one', 'notification']);
    expect(got2.map((message) => message.event)).toEqual(['two']);
  });

  it('matches glob characters in the prefix literally', async () => {
    const base = uniquePrefix('glob');
    // Unescaped, the pattern "<base>a*:ws:room:*" would also match "<base>ab:ws:room:x".
    const [star, plain] = await Promise.all([harness(`${base}a*:`), harness(`${base}ab:`)]);
    const [starSender, starListener, plainSender] = await Promise.all([
      star.makeBus('s'),
      star.makeBus('l'),
      plain.makeBus('p'),
    ]);
    const got = await listen(starListener as RedisMessageBus);

    await plainSender.publish({ serverId: 'p', type: 'room', target: 'x', event: 'foreign', data: null });
    await plain.publishRaw('ws:user:u', CAPTURED.user.text);
    await starSender.publish({ serverId: 's', type: 'room', target: 'x', event: 'own', data: null });

    await waitFor(() => got.length >= 1, 5_000, 'own-prefix message');
    await settle(150);
    expect(got.map((message) => message.event)).toEqual(['own']);
  });

  it('publishes right after construction, before the first connection is up', async () => {
    const prefix = uniquePrefix('early');
    const listener = new RedisMessageBus({ url: REDIS_URL, channelPrefix: prefix, serverId: 'l' });
    cleanups.push(() => listener.close());
    const got = await listen(listener);

    const fresh = new RedisMessageBus({ url: REDIS_URL, channelPrefix: prefix, serverId: 'f' });
    cleanups.push(() => fresh.close());
    await fresh.publish({ serverId: 'f', type: 'broadcast', event: 'early', data: null });

    await waitFor(() => got.length >= 1, 5_000, 'early message');
    expect(got[0]?.event).toBe('early');
  });

  it('reports health: ready once subscribed, not ready after close', async () => {
    const bus = new RedisMessageBus({ url: REDIS_URL, channelPrefix: uniquePrefix('health'), serverId: 'h' });
    cleanups.push(() => bus.close());

    await bus.subscribe(() => {});
    // The subscription is acknowledged on one connection; publishing has its
    // own, which may still be connecting, and health says so until it is up.
    await waitFor(() => bus.health().ready, 5_000, 'the publisher connection to be ready');
    expect(bus.health()).toEqual({ name: 'redis', ready: true });

    await bus.close();
    expect(bus.health()).toEqual({ name: 'redis', ready: false, detail: 'closed' });
  });

  it('fails fast, without queueing, when Redis cannot be reached', async () => {
    const bus = new RedisMessageBus({ url: 'redis://127.0.0.1:1', serverId: 'nowhere' });
    cleanups.push(() => bus.close());

    const started = Date.now();
    await expect(bus.publish({ serverId: 'x', type: 'broadcast', event: 'e', data: null })).rejects.toMatchObject({
      code: 'ERR_BUS_UNAVAILABLE',
    });
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(bus.health().ready).toBe(false);
    await expect(bus.publish({ serverId: 'x', type: 'broadcast', event: 'e', data: null })).rejects.toMatchObject({
      code: 'ERR_BUS_UNAVAILABLE',
    });
  });

  it('keeps a subscribe pending while Redis is unreachable and rejects it on close', async () => {
    const bus = new RedisMessageBus({ url: 'redis://127.0.0.1:1', serverId: 'nowhere' });
    let outcome = 'pending';
    const subscribing = bus.subscribe(() => {}).then(
      () => (outcome = 'resolved'),
      (error: { code?: string }) => (outcome = error.code ?? 'rejected'),
    );

    await settle(200);
    expect(outcome).toBe('pending');
    expect(bus.health()).toMatchObject({ ready: false });

    await bus.close();
    await subscribing;
    expect(outcome).toBe('ERR_BUS_CLOSED');
  });
});
