import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { RedisControlChannel } from '../../src/adapters/redis/redis-control-channel.ts';
import type { ControlCommand } from '../../src/application/ports/control-channel.port.ts';
import { redisBusHarness } from '../fixtures/bus-harnesses.ts';
import { REDIS_URL, uniquePrefix } from '../fixtures/env.ts';
import { PrivateRedis } from '../fixtures/private-redis.ts';
import { settle, waitFor } from '../fixtures/wait-for.ts';
import type { ControlChannelHarness } from './control-channel.contract.ts';
import { controlChannelContract } from './control-channel.contract.ts';

/** The bus harness on the shared Redis, with control channels on the same prefix. */
async function redisHarness(prefix = uniquePrefix('control')): Promise<ControlChannelHarness> {
  const bus = await redisBusHarness(prefix);
  const channels: RedisControlChannel[] = [];
  return {
    ...bus,
    async makeChannel() {
      const channel = new RedisControlChannel({ url: REDIS_URL, channelPrefix: prefix });
      channels.push(channel);
      await waitFor(() => channel.health().ready, 5_000, 'control publisher ready');
      return channel;
    },
    async cleanup() {
      await Promise.all(channels.map((channel) => channel.close()));
      await bus.cleanup();
    },
  };
}

controlChannelContract('RedisControlChannel', () => redisHarness());

describe('RedisControlChannel on a shared Redis', () => {
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    await Promise.all(cleanups.splice(0).map((cleanup) => cleanup()));
  });

  it('keeps two prefixes apart', async () => {
    const [one, two] = [uniquePrefix('control'), uniquePrefix('control')];
    const make = (prefix: string): RedisControlChannel => {
      const channel = new RedisControlChannel({ url: REDIS_URL, channelPrefix: prefix });
      cleanups.push(() => channel.close());
      return channel;
    };
    const [listenerOne, listenerTwo, sender] = [make(one), make(two), make(two)];
    const gotOne: ControlCommand[] = [];
    const gotTwo: ControlCommand[] = [];
    await listenerOne.subscribe('node-a', (command) => gotOne.push(command));
    await listenerTwo.subscribe('node-a', (command) => gotTwo.push(command));

    await sender.send('node-a', { type: 'disconnect', clientId: 'c-1' });

    await waitFor(() => gotTwo.length >= 1, 5_000, 'own-prefix command');
    await settle(150);
    expect(gotTwo).toHaveLength(1);
    expect(gotOne).toEqual([]);
  });

  it('reports health: ready once subscribed, not ready after close', async () => {
    const channel = new RedisControlChannel({ url: REDIS_URL, channelPrefix: uniquePrefix('control') });
    cleanups.push(() => channel.close());

    await channel.subscribe('node-a', () => {});
    expect(channel.health()).toEqual({ name: 'control', ready: true });

    await channel.close();
    expect(channel.health()).toEqual({ name: 'control', ready: false, detail: 'closed' });
  });

  it('fails fast, without queueing, when Redis cannot be reached', async () => {
    const channel = new RedisControlChannel({ url: 'redis://127.0.0.1:1' });
    cleanups.push(() => channel.close());

    const started = Date.now();
    await expect(channel.send('node-a', { type: 'disconnect', clientId: 'c-1' })).rejects.toMatchObject({ code: 'ERR_CONTROL_UNAVAILABLE' });
    await expect(channel.send('node-a', { type: 'disconnect', clientId: 'c-1' })).rejects.toMatchObject({ code: 'ERR_CONTROL_UNAVAILABLE' });
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(channel.health().ready).toBe(false);
  });

  it('keeps a subscribe pending while Redis is unreachable and rejects it on close', async () => {
    const channel = new RedisControlChannel({ url: 'redis://127.0.0.1:1' });
    let outcome = 'pending';
    const subscribing = channel.subscribe('node-a', () => {}).then(
      () => (outcome = 'resolved'),
      (error: { code?: string }) => (outcome = error.code ?? 'rejected'),
    );

    await settle(200);
    expect(outcome).toBe('pending');
    expect(channel.health()).toMatchObject({ ready: false });

    await channel.close();
    await subscribing;
    expect(outcome).toBe('ERR_CONTROL_CLOSED');
  });
});

describe('RedisControlChannel across a Redis crash and restart', () => {
  let redis: PrivateRedis;
  const channels: RedisControlChannel[] = [];

  beforeAll(async () => {
    redis = await PrivateRedis.start();
  });

  afterAll(async () => {
    await Promise.all(channels.map((channel) => channel.close()));
    await redis?.kill();
  });

  it('fails fast while Redis is down, then resubscribes by itself and delivers each command once', async () => {
    const make = (): RedisControlChannel => {
      const channel = new RedisControlChannel({ url: redis.url });
      channels.push(channel);
      return channel;
    };
    const sender = make();
    const receiver = make();
    const received: ControlCommand[] = [];
    await receiver.subscribe('node-b', (command) => received.push(command));
    await sender.send('node-b', { type: 'disconnect', clientId: 'before' });
    await waitFor(() => received.length >= 1, 5_000, 'command before the crash');

    await redis.kill();
    await waitFor(() => !sender.health().ready && !receiver.health().ready, 5_000, 'both to notice the crash');
    await expect(sender.send('node-b', { type: 'disconnect', clientId: 'during' })).rejects.toMatchObject({ code: 'ERR_CONTROL_UNAVAILABLE' });

    await redis.restart();
    await waitFor(() => sender.health().ready && receiver.health().ready, 15_000, 'both to reconnect and resubscribe');
    await sender.send('node-b', { type: 'disconnect', clientId: 'after' });

    await waitFor(() => received.length >= 2, 5_000, 'command after the restart');
    await settle(150);
    expect(received.map((command) => command.clientId)).toEqual(['before', 'after']);
  });
});
