import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisMessageBus } from '../../src/adapters/redis/redis-message-bus.ts';
import type { BusMessage } from '../../src/application/ports/message-bus.port.ts';
import { PrivateRedis } from '../fixtures/private-redis.ts';
import type { LogLine } from '../fixtures/recording-logger.ts';
import { recordingLogger } from '../fixtures/recording-logger.ts';
import { settle, waitFor } from '../fixtures/wait-for.ts';

describe('RedisMessageBus across a Redis crash and restart', () => {
  let redis: PrivateRedis | undefined;
  const buses: RedisMessageBus[] = [];
  const problems: string[] = [];
  const onUnhandled = (reason: unknown): void => {
    problems.push(`unhandled: ${reason instanceof Error ? reason.stack : String(reason)}`);
  };
  const onWarning = (warning: Error): void => {
    if (warning.name === 'MaxListenersExceededWarning') problems.push(`listener leak: ${warning.message}`);
  };
  const originalConsoleError = console.error;

  beforeAll(async () => {
    process.on('unhandledRejection', onUnhandled);
    process.on('uncaughtException', onUnhandled);
    process.on('warning', onWarning);
    // ioredis reports an 'error' event nobody listens to on stderr.
    console.error = (...args: unknown[]) => {
      problems.push(`console.error: ${args.map(String).join(' ')}`);
      originalConsoleError(...args);
    };
    redis = await PrivateRedis.start();
  });

  afterAll(async () => {
    try {
      await Promise.all(buses.map((bus) => bus.close()));
    } finally {
      await redis?.kill();
      console.error = originalConsoleError;
      process.off('unhandledRejection', onUnhandled);
      process.off('uncaughtException', onUnhandled);
      process.off('warning', onWarning);
    }
  });

  it('fails fast while Redis is down, then resubscribes by itself and delivers each message once', async () => {
    const server = redis!;
    const logs: LogLine[] = [];
    const make = (serverId: string): RedisMessageBus => {
      const bus = new RedisMessageBus({ url: server.url, serverId, logger: recordingLogger(logs) });
      buses.push(bus);
      return bus;
    };
    const a = make('instance-a');
    const b = make('instance-b');
    const gotA: BusMessage[] = [];
    const gotB: BusMessage[] = [];
    await Promise.all([a.subscribe((m) => gotA.push(m)), b.subscribe((m) => gotB.push(m))]);
    const note = (from: RedisMessageBus, event: string): Promise<void> =>
      from.publish({ serverId: from.serverId, type: 'broadcast', event, data: null });

    await note(a, 'before-a');
    await note(b, 'before-b');
    await waitFor(() => gotA.length >= 1 && gotB.length >= 1, 5_000, 'traffic before the crash');

    await server.kill();
    await waitFor(() => !a.health().ready && !b.health().ready, 5_000, 'both buses to notice the crash');
    expect(a.health()).toMatchObject({ name: 'redis', ready: false, detail: expect.any(String) });

    // Every publish during the outage is refused at once; none is queued.
    const started = Date.now();
    const outcomes = await Promise.allSettled(Array.from({ length: 100 }, (_, n) => note(a, `during-${n}`)));
    expect(Date.now() - started).toBeLessThan(500);
    expect(outcomes.every((outcome) => outcome.status === 'rejected')).toBe(true);
    expect((outcomes[0] as PromiseRejectedResult).reason).toMatchObject({ code: 'ERR_BUS_UNAVAILABLE' });
    // Long enough for ioredis to make several reconnect attempts against a closed port.
    await settle(500);

    await server.restart();
    await waitFor(() => a.health().ready && b.health().ready, 10_000, 'both buses to be ready again');

    await note(a, 'after-a');
    await note(b, 'after-b');
    await waitFor(() => gotA.length >= 2 && gotB.length >= 2, 5_000, 'traffic after the restart');
    await settle(300);

    expect(gotB.map((m) => m.event)).toEqual(['before-a', 'after-a']);
    expect(gotA.map((m) => m.event)).toEqual(['before-b', 'after-b']);
    for (const instanceId of ['instance-a', 'instance-b']) {
      const mine = logs.filter((line) => line.fields.instanceId === instanceId);
      expect(mine.some((line) => line.level === 'warn' && line.message === 'redis disconnected')).toBe(true);
      expect(mine.some((line) => line.level === 'info' && line.message === 'redis bus resubscribed')).toBe(true);
    }
    expect(problems).toEqual([]);
  });

  it('survives repeated crashes without growing listeners', async () => {
    const server = redis!;
    // Reuses the buses of the first test, which already went through one crash.
    const [a, b] = buses as [RedisMessageBus, RedisMessageBus];
    const gotC: BusMessage[] = [];
    const c = new RedisMessageBus({ url: server.url, serverId: 'instance-c' });
    buses.push(c);
    await c.subscribe((m) => gotC.push(m));

    // More rounds than Node's default limit of 10 listeners per emitter, so
    // one listener added per reconnect would raise MaxListenersExceededWarning.
    for (let round = 0; round < 12; round += 1) {
      await server.kill();
      await waitFor(() => !a.health().ready && !b.health().ready && !c.health().ready, 5_000, 'crash noticed');
      await server.restart();
      await waitFor(() => a.health().ready && b.health().ready && c.health().ready, 10_000, 'ready again');
    }
    await a.publish({ serverId: a.serverId, type: 'room', target: 'r', event: 'after-crashes', data: null });
    await waitFor(() => gotC.length >= 1, 5_000, 'delivery after the crashes');
    await settle(300);

    expect(gotC.map((m) => m.event)).toEqual(['after-crashes']);
    expect(problems).toEqual([]);
  });
});
