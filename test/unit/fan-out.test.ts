import { describe, expect, it } from 'vitest';
import { Delivery } from '../../src/application/delivery.ts';
import { FanOut } from '../../src/application/fan-out.ts';
import type { LiveConnection } from '../../src/application/local-connections.ts';
import { LocalConnections } from '../../src/application/local-connections.ts';
import type { Logger } from '../../src/application/ports/logger.port.ts';
import { silentLogger } from '../../src/application/ports/logger.port.ts';
import type { BusMessage, MessageBus } from '../../src/application/ports/message-bus.port.ts';

/** Records what it was handed, in order; a global log shows the interleaving across connections. */
class Recorder implements LiveConnection {
  readonly userId: string;
  readonly connectedAt = 0;
  readonly lastActivity = 0;
  readonly encrypted = true;
  readonly got: string[] = [];
  failOn: string | null = null;
  constructor(
    readonly id: string,
    private readonly log: string[],
    userId = 'u',
  ) {
    this.userId = userId;
  }
  deliver(text: string): void {
    if (text === this.failOn) throw new Error(`refused ${text}`);
    this.got.push(text);
    this.log.push(`${this.id}:${text}`);
  }
  terminate(): void {}
}

/** A scheduler the test steps by hand, so slices are observable one at a time. */
class ManualScheduler {
  private tasks: Array<() => void> = [];
  readonly schedule = (task: () => void): void => {
    this.tasks.push(task);
  };
  get waiting(): number {
    return this.tasks.length;
  }
  runOne(): void {
    const task = this.tasks.shift();
    if (task === undefined) throw new Error('nothing scheduled');
    task();
  }
  runAll(): void {
    while (this.tasks.length > 0) this.runOne();
  }
}

/** A transport's write batching as the fan-out sees it: what was delivered while held waits. */
class RecordingBatch {
  readonly events: string[] = [];
  readonly released: string[][] = [];
  holding = false;
  private from = 0;
  constructor(private readonly log: string[]) {}
  hold(): void {
    this.events.push('hold');
    this.holding = true;
    this.from = this.log.length;
  }
  release(): void {
    this.events.push('release');
    this.holding = false;
    this.released.push(this.log.slice(this.from));
  }
  get waiting(): number {
    return this.holding ? new Set(this.log.slice(this.from).map((entry) => entry.split(':')[0])).size : 0;
  }
}

function recorders(count: number, log: string[], prefix = 'c'): Recorder[] {
  return Array.from({ length: count }, (_, index) => new Recorder(`${prefix}${index}`, log));
}

describe('FanOut', () => {
  it('hands a send no larger than a slice to every target at once, in the call', () => {
    const log: string[] = [];
    const scheduler = new ManualScheduler();
    const fanOut = new FanOut({ sliceSize: 4, schedule: scheduler.schedule });
    const targets = recorders(4, log);
    expect(fanOut.many(new Set(targets), 'm1')).toBe(4);
    expect(targets.map((target) => target.got)).toEqual([['m1'], ['m1'], ['m1'], ['m1']]);
    expect(fanOut.pending).toBe(0);
  });

  it('counts direct sends against the macrotask budget, so a burst of small sends is sliced too', () => {
    const log: string[] = [];
    const scheduler = new ManualScheduler();
    const fanOut = new FanOut({ sliceSize: 4, schedule: scheduler.schedule });
    const targets = new Set(recorders(3, log));
    fanOut.many(targets, 'a'); // 3 of 4 spent
    fanOut.many(targets, 'b'); // 1 now, 2 in the next macrotask
    expect(log).toEqual(['c0:a', 'c1:a', 'c2:a', 'c0:b']);
    fanOut.many(targets, 'c'); // queued behind b
    expect(fanOut.pending).toBe(5);
    scheduler.runOne(); // fresh budget of 4: the rest of b, then 2 of c
    expect(log.slice(4)).toEqual(['c1:b', 'c2:b', 'c0:c', 'c1:c']);
    scheduler.runAll();
    expect(log.at(-1)).toBe('c2:c');
    expect(fanOut.pending).toBe(0);
    // After the budget is renewed, a small send goes out at once again.
    fanOut.many(targets, 'd');
    expect(log.slice(-3)).toEqual(['c0:d', 'c1:d', 'c2:d']);
  });

  it('delivers the first slice of a large send at once and each further slice in its own task', () => {
    const log: string[] = [];
    const scheduler = new ManualScheduler();
    const fanOut = new FanOut({ sliceSize: 3, schedule: scheduler.schedule });
    const targets = recorders(8, log);
    expect(fanOut.many(new Set(targets), 'big')).toBe(8);
    expect(log).toEqual(['c0:big', 'c1:big', 'c2:big']);
    expect(fanOut.pending).toBe(5);
    scheduler.runOne();
    expect(log).toHaveLength(6);
    expect(scheduler.waiting).toBe(1);
    scheduler.runOne();
    expect(log).toHaveLength(8);
    expect(fanOut.pending).toBe(0);
    scheduler.runAll(); // the budget renewal only
    expect(log).toHaveLength(8);
    expect(targets.every((target) => target.got.length === 1)).toBe(true);
  });

  it('queues every later send behind a sliced one, so each connection sees the call order', () => {
    const log: string[] = [];
    const scheduler = new ManualScheduler();
    const fanOut = new FanOut({ sliceSize: 2, schedule: scheduler.schedule });
    const targets = recorders(5, log);
    const last = targets[4] as Recorder;
    fanOut.many(new Set(targets), 'first');
    // Small sends would go out at once on an idle queue; here they must wait.
    fanOut.one(last, 'second');
    fanOut.many(new Set([last, targets[0] as Recorder]), 'third');
    expect(last.got).toEqual([]);
    scheduler.runAll();
    expect(last.got).toEqual(['first', 'second', 'third']);
    expect((targets[0] as Recorder).got).toEqual(['first', 'third']);
    for (const target of targets.slice(1, 4)) expect(target.got).toEqual(['first']);
  });

  it('crosses send boundaries within one slice and leaves nothing queued at the end', () => {
    const log: string[] = [];
    const scheduler = new ManualScheduler();
    const fanOut = new FanOut({ sliceSize: 4, schedule: scheduler.schedule });
    const targets = recorders(6, log);
    fanOut.many(new Set(targets), 'a'); // 4 now, 2 left
    fanOut.many(new Set(targets.slice(0, 3)), 'b'); // queued
    scheduler.runOne(); // the 2 left of a, then 2 of b
    expect(log.slice(4)).toEqual(['c4:a', 'c5:a', 'c0:b', 'c1:b']);
    scheduler.runAll();
    expect(log).toHaveLength(9);
    expect(fanOut.pending).toBe(0);
    // An idle queue is back to immediate delivery.
    fanOut.one(targets[0] as Recorder, 'c');
    expect(log.at(-1)).toBe('c0:c');
  });

  it('skips excluded connections and counts only the others', () => {
    const log: string[] = [];
    const fanOut = new FanOut({ sliceSize: 100 });
    const targets = recorders(5, log);
    expect(fanOut.many(new Set(targets), 'x', new Set(['c1', 'c3']))).toBe(3);
    expect(log).toEqual(['c0:x', 'c2:x', 'c4:x']);
    expect(fanOut.many(new Set([targets[1] as Recorder]), 'y', new Set(['c1']))).toBe(0);
  });

  it('reports a connection whose delivery throws and still delivers to the rest, later slices included', () => {
    const log: string[] = [];
    const errors: unknown[] = [];
    const scheduler = new ManualScheduler();
    const fanOut = new FanOut({ sliceSize: 2, schedule: scheduler.schedule, onError: (error) => errors.push(error) });
    const targets = recorders(5, log);
    (targets[1] as Recorder).failOn = 'm';
    (targets[3] as Recorder).failOn = 'm';
    fanOut.many(new Set(targets), 'm');
    scheduler.runAll();
    expect(log).toEqual(['c0:m', 'c2:m', 'c4:m']);
    expect(errors.map((error) => (error as Error).message)).toEqual(['refused m', 'refused m']);
    expect(fanOut.pending).toBe(0);
  });

  it('lets the event loop run between slices with the default scheduler', async () => {
    const log: string[] = [];
    const fanOut = new FanOut({ sliceSize: 10 });
    const targets = recorders(35, log);
    let deliveredWhenTimerRan = -1;
    const timerRan = new Promise<void>((resolve) =>
      setImmediate(() => {
        deliveredWhenTimerRan = log.length;
        resolve();
      }),
    );
    fanOut.many(new Set(targets), 'm');
    await timerRan;
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(deliveredWhenTimerRan).toBeGreaterThanOrEqual(10);
    expect(deliveredWhenTimerRan).toBeLessThan(35);
    expect(log).toHaveLength(35);
  });

  it('hands out fewer deliveries per macrotask while deliveries are slow, and more again once they are fast', async () => {
    const log: string[] = [];
    const scheduler = new ManualScheduler();
    let clock = 0;
    let costMs = 1;
    const fanOut = new FanOut({ sliceSize: 1024, sliceTargetMs: 20, now: () => clock, schedule: scheduler.schedule });
    const targets = recorders(6000, log).map((recorder) => {
      const deliver = recorder.deliver.bind(recorder);
      recorder.deliver = (text) => {
        clock += costMs;
        deliver(text);
      };
      return recorder;
    });
    const sizes: number[] = [];
    fanOut.many(new Set(targets), 'slow');
    sizes.push(log.length);
    while (fanOut.pending > 0) {
      await null; // the burst is timed in a microtask, after the writes its deliveries queued
      const before = log.length;
      scheduler.runOne();
      sizes.push(log.length - before);
    }
    // Nothing measured yet: the first slice is 256. Then 1 ms per delivery against
    // a 20 ms target: each slice moves halfway down, never below 64.
    expect(sizes.slice(0, 4)).toEqual([256, 138, 79, 64]);
    expect(Math.min(...sizes.slice(0, -1))).toBe(64); // the last slice is what was left
    expect(fanOut.currentSliceSize).toBe(64);
    expect(log).toHaveLength(6000);

    costMs = 0.001;
    scheduler.runAll();
    const grown: number[] = [];
    fanOut.many(new Set(targets), 'fast');
    grown.push(log.length - 6000);
    while (fanOut.pending > 0) {
      await null;
      const before = log.length;
      scheduler.runOne();
      grown.push(log.length - before);
    }
    // Halfway up to the 1,024 cap with each measured slice.
    expect(grown.slice(0, 4)).toEqual([64, 544, 784, 904]);
    expect(fanOut.currentSliceSize).toBeGreaterThan(1000);
    expect(fanOut.currentSliceSize).toBeLessThanOrEqual(1024);
    expect(log).toHaveLength(12000);
  });

  it('does not time bursts too small to say what a delivery costs', async () => {
    const log: string[] = [];
    const scheduler = new ManualScheduler();
    let clock = 0;
    const fanOut = new FanOut({ sliceSize: 100, sliceTargetMs: 1, now: () => (clock += 50), schedule: scheduler.schedule });
    fanOut.many(new Set(recorders(63, log)), 'm');
    await null;
    expect(fanOut.currentSliceSize).toBe(100);
  });

  it('refuses a slice target that is not positive', () => {
    expect(() => new FanOut({ sliceTargetMs: 0 })).toThrow(/sliceTargetMs/);
    expect(() => new FanOut({ sliceTargetMs: Number.NaN })).toThrow(/sliceTargetMs/);
  });

  it("holds a backlog's writes across slices and releases them when the queue drains", () => {
    const log: string[] = [];
    const scheduler = new ManualScheduler();
    const batch = new RecordingBatch(log);
    const fanOut = new FanOut({ sliceSize: 8, writes: batch, holdWritesMs: 1_000, now: () => 0, schedule: scheduler.schedule });
    const targets = new Set(recorders(3, log));
    fanOut.many(targets, 'a');
    fanOut.many(targets, 'b'); // both fit the budget: out at once, no holding
    expect(batch.events).toEqual([]);
    fanOut.many(targets, 'c'); // 2 now; a single send is not held
    fanOut.many(targets, 'd');
    expect(batch.events).toEqual([]);
    scheduler.runOne(); // two sends queued: held; the rest of c and all of d drain the queue, so the writes go
    expect(batch.events).toEqual(['hold', 'release']);
    expect(batch.released).toEqual([['c2:c', 'c0:d', 'c1:d', 'c2:d']]);
    expect(fanOut.pending).toBe(0);
  });

  it('works sends queued back to back to the same connections connection by connection, each in one slice', () => {
    const log: string[] = [];
    const scheduler = new ManualScheduler();
    const batch = new RecordingBatch(log);
    const fanOut = new FanOut({ sliceSize: 4, writes: batch, holdWritesMs: 1_000, now: () => 0, schedule: scheduler.schedule });
    fanOut.many(new Set(recorders(4, log, 'f')), 'fill'); // spends this macrotask's budget
    const room = new Set(recorders(3, log));
    for (const text of ['b', 'c', 'd']) expect(fanOut.many(room, text)).toBe(3);
    expect(fanOut.pending).toBe(9);
    log.length = 0;
    scheduler.runOne(); // a budget of 4 fits one connection's 3 frames
    expect(log).toEqual(['c0:b', 'c0:c', 'c0:d']);
    expect(fanOut.pending).toBe(6);
    scheduler.runAll();
    expect(log.slice(3)).toEqual(['c1:b', 'c1:c', 'c1:d', 'c2:b', 'c2:c', 'c2:d']);
    // One queued job: nothing to hold, each socket's frames leave within one slice.
    expect(batch.events).toEqual([]);
  });

  it('merges at most 16 sends into one job', () => {
    const log: string[] = [];
    const scheduler = new ManualScheduler();
    const fanOut = new FanOut({ sliceSize: 64, schedule: scheduler.schedule });
    fanOut.many(new Set(recorders(64, log, 'f')), 'fill');
    const pair = new Set(recorders(2, log));
    const texts = Array.from({ length: 20 }, (_, index) => `t${index}`);
    for (const text of texts) fanOut.many(pair, text);
    log.length = 0;
    scheduler.runOne();
    // t0-t15 to c0 then c1 as one job, then t16-t19 as the next.
    expect(log.slice(0, 17)).toEqual([...texts.slice(0, 16).map((text) => `c0:${text}`), 'c1:t0']);
    expect(log.slice(32)).toEqual(['c0:t16', 'c0:t17', 'c0:t18', 'c0:t19', 'c1:t16', 'c1:t17', 'c1:t18', 'c1:t19']);
  });

  it('keeps separate the sends whose targets differ from the last queued one, or that has started', () => {
    const log: string[] = [];
    const scheduler = new ManualScheduler();
    const fanOut = new FanOut({ sliceSize: 4, schedule: scheduler.schedule });
    fanOut.many(new Set(recorders(4, log, 'f')), 'fill');
    const [c0, c1, c2, late] = recorders(4, log);
    const room = new Set([c0!, c1!, c2!]);
    fanOut.many(room, 'b');
    room.add(late!); // joined after b was sent
    fanOut.many(room, 'c');
    fanOut.many(room, 'd', new Set(['c1'])); // c1 excluded
    fanOut.many(room, 'e');
    scheduler.runAll();
    expect(c0!.got).toEqual(['b', 'c', 'd', 'e']);
    expect(c1!.got).toEqual(['b', 'c', 'e']);
    expect(late!.got).toEqual(['c', 'd', 'e']);
    // b, c and d each went to every target before the next began: none was merged.
    const firstOf = (text: string): number => log.findIndex((entry) => entry.endsWith(`:${text}`));
    const lastOf = (text: string): number => log.findLastIndex((entry) => entry.endsWith(`:${text}`));
    expect(lastOf('b')).toBeLessThan(firstOf('c'));
    expect(lastOf('c')).toBeLessThan(firstOf('d'));
    expect(lastOf('d')).toBeLessThan(firstOf('e'));
  });

  it('keeps holding while a backlog revisits the same sockets and releases once when it runs down', () => {
    const log: string[] = [];
    const scheduler = new ManualScheduler();
    const batch = new RecordingBatch(log);
    const fanOut = new FanOut({ sliceSize: 100, writes: batch, holdWritesMs: 1_000, now: () => 0, schedule: scheduler.schedule });
    const room = new Set(recorders(100, log));
    // The same sockets in another order (another room with the same members): sends alternate, so none merge.
    const reversed = new Set([...room].reverse());
    for (const [index, text] of ['a', 'b', 'c', 'd', 'e'].entries()) fanOut.many(index % 2 === 0 ? room : reversed, text); // a at once, b-e queued
    scheduler.runAll();
    // b, c and d leave together; with only e left the writes go, and e is a single send.
    expect(batch.events).toEqual(['hold', 'release']);
    expect(batch.released[0]).toHaveLength(300);
    expect(log.filter((entry) => entry.startsWith('c7:'))).toEqual(['c7:a', 'c7:b', 'c7:c', 'c7:d', 'c7:e']);
  });

  it('stops holding when a slice reaches mostly sockets that were not waiting, and never holds one wide send', () => {
    const log: string[] = [];
    const scheduler = new ManualScheduler();
    const batch = new RecordingBatch(log);
    const fanOut = new FanOut({ sliceSize: 100, writes: batch, holdWritesMs: 1_000, now: () => 0, schedule: scheduler.schedule });
    fanOut.many(new Set(recorders(500, log)), 'wide');
    scheduler.runAll();
    expect(batch.events).toEqual([]);

    const first = new Set(recorders(300, log));
    const second = new Set(recorders(300, log, 'y'));
    fanOut.many(new Set(recorders(100, log)), 'fill'); // spends this macrotask's budget
    fanOut.many(first, 'p');
    fanOut.many(second, 'q');
    scheduler.runOne(); // 100 of p, held
    expect(batch.events).toEqual(['hold']);
    scheduler.runOne(); // 100 more new sockets: holding buys nothing, released
    expect(batch.events).toEqual(['hold', 'release']);
    scheduler.runAll();
    expect(batch.holding).toBe(false);
    expect(log.filter((entry) => entry.endsWith(':q'))).toHaveLength(300);
  });

  it('releases held writes once flushing the sockets that wait would take twice the slice target', () => {
    const log: string[] = [];
    const scheduler = new ManualScheduler();
    const batch = new RecordingBatch(log);
    // Before any flush is measured, a socket's flush is reckoned at 0.04 ms: 3 waiting sockets reach 2 × 0.06 ms.
    const fanOut = new FanOut({ sliceSize: 8, sliceTargetMs: 0.06, writes: batch, holdWritesMs: 1_000, now: () => 0, schedule: scheduler.schedule });
    const pair = new Set(recorders(2, log));
    for (const text of ['a', 'b', 'c', 'd', 'e', 'f', 'g']) fanOut.many(pair, text); // a-d at once; e, f, g queued as one job
    const others = new Set(recorders(2, log, 'x'));
    fanOut.many(others, 'y');
    fanOut.many(pair, 'h');
    expect(batch.events).toEqual([]);
    scheduler.runOne(); // e, f, g to the same 2 sockets, then y to 2 more: 4 wait, released with h still queued
    expect(batch.events).toEqual(['hold', 'release']);
    expect(batch.released[0]).toEqual(['c0:e', 'c0:f', 'c0:g', 'c1:e', 'c1:f', 'c1:g', 'x0:y', 'x1:y']);
    expect(fanOut.pending).toBe(2);
    scheduler.runAll();
    expect(batch.holding).toBe(false);
    expect(log.filter((entry) => entry.startsWith('c0:'))).toHaveLength(8);
  });

  it('releases held writes after holdWritesMs even while a backlog remains', () => {
    const log: string[] = [];
    const scheduler = new ManualScheduler();
    const batch = new RecordingBatch(log);
    let clock = 0;
    const fanOut = new FanOut({ sliceSize: 4, writes: batch, holdWritesMs: 25, now: () => clock, schedule: scheduler.schedule });
    const targets = new Set(recorders(2, log));
    const reversed = new Set([...targets].reverse()); // alternating with it, no send merges with the one before
    const send = (texts: string[]): void => {
      for (const [index, text] of texts.entries()) fanOut.many(index % 2 === 0 ? targets : reversed, text);
    };
    send(['a', 'b', 'c', 'd', 'e', 'f']);
    // a and b went out at once (4 of 4); c..f are worked two sends per slice
    expect(batch.events).toEqual([]);
    clock = 10;
    scheduler.runOne(); // c, d: held (2 sockets wait, fewer than the slice of 4)
    expect(batch.events).toEqual(['hold']);
    clock = 40; // 30 ms after holding began
    scheduler.runOne(); // e, f: the queue drains anyway
    expect(batch.events).toEqual(['hold', 'release']);
    send(['g', 'h', 'i', 'j', 'k', 'l']);
    scheduler.runOne();
    clock = 100;
    expect(batch.events.slice(2)).toEqual(['hold']);
    scheduler.runOne(); // 60 ms held, backlog left: released by the time bound
    expect(batch.events.slice(2)).toEqual(['hold', 'release']);
    expect(fanOut.pending).toBeGreaterThan(0);
    scheduler.runAll();
    expect(batch.holding).toBe(false);
    expect(log.filter((entry) => entry.startsWith('c0:'))).toHaveLength(12);
  });

  it('refuses a slice size that is not a positive integer', () => {
    expect(() => new FanOut({ sliceSize: 0 })).toThrow(/sliceSize/);
    expect(() => new FanOut({ sliceSize: 1.5 })).toThrow(/sliceSize/);
  });
});

/** Notes how many local deliveries had happened when each message reached the bus. */
class ObservingBus implements MessageBus {
  readonly serverId = 'a';
  readonly published: Array<{ message: BusMessage; localDeliveriesBefore: number }> = [];
  constructor(private readonly log: string[]) {}
  async publish(message: BusMessage): Promise<void> {
    this.published.push({ message, localDeliveriesBefore: this.log.length });
  }
  async subscribe(): Promise<void> {}
}

describe('Delivery through the fan-out', () => {
  function setup(sliceSize: number) {
    const log: string[] = [];
    const connections = new LocalConnections();
    const members = recorders(6, log);
    for (const member of members) {
      connections.add(member);
      connections.join(member, 'room-1');
    }
    const bus = new ObservingBus(log);
    const scheduler = new ManualScheduler();
    const logger: Logger = silentLogger;
    const delivery = new Delivery(connections, bus, logger, undefined, { sliceSize, schedule: scheduler.schedule });
    return { log, members, bus, scheduler, delivery };
  }

  it('publishes room, user and broadcast sends to the bus before the local fan-out starts', async () => {
    const { bus, delivery } = setup(100);
    await delivery.toRoom('room-1', 'e', { n: 1 });
    await delivery.broadcast('e', { n: 2 });
    await delivery.toUser('u', 'e', { n: 3 });
    expect(bus.published.map((entry) => [entry.message.type, entry.localDeliveriesBefore])).toEqual([
      ['room', 0],
      ['broadcast', 6],
      ['user', 12],
    ]);
  });

  it('reports every local target of a sliced send at once, and a direct message waits behind it', async () => {
    const { members, scheduler, delivery, log } = setup(4);
    const report = await delivery.broadcast('news', { n: 1 });
    expect(report).toEqual({ local: 6, published: true });
    expect(delivery.pendingDeliveries).toBe(2);
    const direct = await delivery.toClient('c5', 'dm', { n: 2 });
    expect(direct).toEqual({ local: 1, published: false });
    expect((members[5] as Recorder).got).toEqual([]);
    scheduler.runAll();
    expect((members[5] as Recorder).got.map((text) => JSON.parse(text).event)).toEqual(['news', 'dm']);
    expect(log).toHaveLength(7);
  });
});
