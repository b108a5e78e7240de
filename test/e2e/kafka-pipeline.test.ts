import kafkajs from 'kafkajs';
import type { Producer } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeKafkaBroker } from '../fixtures/fake-kafka/fake-kafka-broker.ts';
import {
  killAll,
  merchantEvent,
  PipelineDatabase,
  pollUntil,
  PUSH_EVENT,
  readiness,
  Recipient,
  restGet,
  sharedIssuer,
  snowflakeNode,
  startPipelineService,
  stopService,
  type PipelineService,
} from '../fixtures/pipeline-harness.ts';
import { RawKafkaClient } from '../fixtures/fake-kafka/raw-kafka-client.ts';
import { TcpProxy } from '../fixtures/tcp-proxy.ts';
import { settle } from '../fixtures/wait-for.ts';

/**
 * The Kafka pipeline end to end: the real service as a child process
 * (`src/bootstrap/main.ts`), a fake broker speaking the Kafka protocol (held
 * in this process so its groups and offsets can be inspected), and one fresh
 * PostgreSQL database; memberships are written and rows counted with SQL.
 * Each scenario has its own topic and group. Topics of one partition keep
 * offsets equal to event indexes, so "committed N" means "events 0..N-1 done".
 *
 * The service exposes no Kafka timings (session timeout 30 s, fetch wait
 * 5 s), so nothing here depends on short ones: a crashed member is evicted
 * with a LeaveGroup in its name instead of waiting out its session.
 */
const { Kafka, Partitioners, logLevel } = kafkajs;

let broker: FakeKafkaBroker;
let database: PipelineDatabase;
let shared: Awaited<ReturnType<typeof sharedIssuer>>;
let producer: Producer;
const services: PipelineService[] = [];
const recipients: Recipient[] = [];
const proxies: TcpProxy[] = [];
const brokerComplaints: string[] = [];
let nextNodeId = 100;

async function launch(name: string, topic: string, groupId: string, databaseUrl = database.url): Promise<PipelineService> {
  const service = await startPipelineService({
    name,
    brokers: [broker.brokerAddress],
    topic,
    groupId,
    databaseUrl,
    dataDir: shared.dataDir,
    nodeId: nextNodeId++,
  });
  services.push(service);
  return service;
}

/** Resolves once the service fetches from the broker: its group joined and its start offsets are resolved. */
async function fetching(service: PipelineService, since = 0, timeoutMs = 20_000): Promise<void> {
  await broker.waitFor(() => broker.requestLog.slice(since).some((entry) => entry.clientId === service.clientId && entry.apiName === 'Fetch'), {
    timeoutMs,
    description: `a Fetch from ${service.name}`,
  });
}

/** Resolves once the group is stable with exactly these members and each of them fetches in the new generation. */
async function stableWith(groupId: string, members: readonly PipelineService[], timeoutMs = 30_000): Promise<void> {
  await broker.waitFor(
    () => {
      const group = broker.group(groupId);
      return (
        group?.state === 'Stable' &&
        group.members.length === members.length &&
        members.every((member) => group.members.some((id) => id.startsWith(`${member.clientId}-`)))
      );
    },
    { timeoutMs, description: `group ${groupId} stable with ${members.map((member) => member.name).join(', ')}` },
  );
  const since = broker.requestLog.length;
  await Promise.all(members.map((member) => fetching(member, since, timeoutMs)));
}

async function connect(service: PipelineService, userId: string): Promise<Recipient> {
  const recipient = await Recipient.connect(service, shared.issuer, userId);
  recipients.push(recipient);
  return recipient;
}

async function send(topic: string, events: Array<{ value: unknown; partition?: number; key?: string }>): Promise<string[]> {
  const written = await producer.send({
    topic,
    acks: -1,
    messages: events.map(({ value, partition, key }) => ({
      partition: partition ?? 0,
      key: key ?? null,
      value: typeof value === 'string' ? value : JSON.stringify(value),
    })),
  });
  return written.map((entry) => entry.baseOffset ?? '-1');
}

beforeAll(async () => {
  // Killed clients leave half-sent requests behind; the broker's complaints are kept, not printed.
  [broker, database, shared] = await Promise.all([
    FakeKafkaBroker.start({ log: (line) => brokerComplaints.push(line) }),
    PipelineDatabase.create('kafkae2e'),
    sharedIssuer('kafka-e2e'),
  ]);
  const kafka = new Kafka({ clientId: 'e2e-publisher', brokers: [broker.brokerAddress], logLevel: logLevel.NOTHING });
  producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
});

afterAll(async () => {
  for (const recipient of recipients) recipient.close();
  await killAll(services);
  await Promise.all(proxies.map((proxy) => proxy.stop()));
  await producer?.disconnect();
  await broker?.stop();
  await database?.close();
  shared?.remove();
});

describe('the Kafka pipeline, end to end, on a fake broker', () => {
  it('stores one row per member, pushes it encrypted to a connected recipient, and lists it in the inbox; a non-member gets nothing', async () => {
    const topic = 'e2e.happy';
    const groupId = 'signal-happy';
    broker.createTopic(topic, 1);
    await database.addMembers('m-happy', ['u-h1', 'u-h2', 'u-h3']);
    await database.addMembers('m-other', ['u-hx']);

    const service = await launch('happy', topic, groupId);
    await fetching(service);
    const member = await connect(service, 'u-h1');
    const outsider = await connect(service, 'u-hx');

    const [offset] = await send(topic, [{ value: merchantEvent('ev-happy-1', 'm-happy'), key: 'm-happy' }]);
    await pollUntil(async () => (await database.completeEvents(['ev-happy-1'], 3)) === 1, { description: '3 rows for ev-happy-1' });

    const rows = await database.rows(['ev-happy-1']);
    expect(rows.map((row) => row.recipientId).sort()).toEqual(['u-h1', 'u-h2', 'u-h3']);
    await pollUntil(() => member.pushes.length === 1, { description: 'the push to u-h1', timeoutMs: 5_000 });
    const push = member.messages.find((message) => message.event === PUSH_EVENT);
    const wire = member.raw.frames.filter((frame) => frame.event !== 'connected');
    expect(wire.map((frame) => frame.event)).toEqual(['encrypted']);
    expect(wire[0]?.text).not.toContain('SO-ev-happy-1');
    expect(push?.data).toMatchObject({ recipientId: 'u-h1', actorId: 'u-actor', type: 'PAYMENT_SUCCESS', isRead: false, readAt: null });
    expect(push?.data.id).toBe(rows.find((row) => row.recipientId === 'u-h1')?.id);

    const inbox = await restGet(service, shared.issuer, '/notifications', 'u-h1');
    expect(inbox.status).toBe(200);
    expect(inbox.body.count).toBe(1);
    expect(inbox.body.items.map((item: { id: string }) => item.id)).toEqual([push?.data.id]);

    await broker.waitFor(() => broker.committedOffset(groupId, topic, 0) === String(BigInt(offset!) + 1n), { description: 'the event committed' });
    await settle(200);
    expect(outsider.messages).toEqual([]);
    expect((await restGet(service, shared.issuer, '/notifications', 'u-hx')).body).toEqual({ count: 0, items: [] });
  });

  it('starts from the latest offset: events published before the group first joined are never processed, later ones are', async () => {
    const topic = 'e2e.latest';
    const groupId = 'signal-latest';
    broker.createTopic(topic, 1);
    await database.addMembers('m-latest', ['u-l1', 'u-l2']);
    const early = await send(topic, [{ value: merchantEvent('ev-early-1', 'm-latest') }, { value: merchantEvent('ev-early-2', 'm-latest') }]);
    expect(early).toEqual(['0']);
    expect(broker.highWatermark(topic, 0)).toBe('2');

    const service = await launch('latest', topic, groupId);
    await fetching(service);
    const [late] = await send(topic, [{ value: merchantEvent('ev-late-1', 'm-latest') }]);
    expect(late).toBe('2');
    await pollUntil(async () => (await database.completeEvents(['ev-late-1'], 2)) === 1, { description: '2 rows for ev-late-1' });
    await broker.waitFor(() => broker.committedOffset(groupId, topic, 0) === '3', { description: 'ev-late-1 committed' });

    // One partition, in order: had the early events been taken, they would have been handled first.
    expect(await database.countsByEvent(['ev-early-1', 'ev-early-2'])).toEqual(new Map());
    // The line is written after the commit: wait for it rather than race it.
    await pollUntil(() => service.outcomes('processed').length > 0, { description: 'the processed line' });
    expect(service.outcomes('processed')).toEqual(['2']);
  });

  it('survives a SIGKILL mid-stream: the next process redelivers from the last commit, no row is lost or duplicated, nothing is pushed twice', async () => {
    const topic = 'e2e.crash';
    const groupId = 'signal-crash';
    broker.createTopic(topic, 1);
    await database.addMembers('m-crash', ['u-c1', 'u-c2', 'u-c3']);
    const first = await launch('crash-1', topic, groupId);
    await fetching(first);
    const onFirst = await connect(first, 'u-c1');

    const total = 80;
    const eventIds = Array.from({ length: total }, (_, index) => `ev-crash-${index}`);
    // A stream, a few events at a time: the process goes through many
    // batches (the events it fetched together are stored together and
    // committed after), so there are many moments to freeze it in.
    const [base] = await send(topic, eventIds.slice(0, 4).map((eventId) => ({ value: merchantEvent(eventId, 'm-crash') })));
    expect(base).toBe('0');
    const streaming = (async () => {
      for (let index = 4; index < total; index += 2) {
        await send(topic, eventIds.slice(index, index + 2).map((eventId) => ({ value: merchantEvent(eventId, 'm-crash') })));
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    })();
    const committed = (): number => Number(broker.committedOffset(groupId, topic, 0) ?? '0');
    /** Rows exist for an event at or past the committed offset: processed, not yet acknowledged. */
    const uncommittedWithRows = async (): Promise<string[]> => {
      const counts = await database.countsByEvent(eventIds);
      return eventIds.slice(committed()).filter((eventId) => counts.has(eventId));
    };

    await broker.waitFor(() => committed() >= 10, { timeoutMs: 15_000, description: 'ten events committed' });
    // Freeze the process at arbitrary points until it is caught between
    // storing an event's rows and committing its offset, then kill it there.
    const pid = first.child.pid!;
    let attempts = 0;
    for (; attempts < 60 && committed() < total - 5; attempts++) {
      process.kill(pid, 'SIGSTOP');
      if ((await uncommittedWithRows()).length > 0) break;
      process.kill(pid, 'SIGCONT');
      await new Promise((resolve) => setTimeout(resolve, attempts % 3));
    }
    const deadMembers = broker.groupMembers(groupId);
    expect(deadMembers).toHaveLength(1);
    first.child.kill('SIGKILL');
    await streaming;
    expect((await first.exited).signal).toBe('SIGKILL');
    await settle(100); // whatever the process wrote before it died reaches the broker
    const committedAtKill = committed();
    const pending = await uncommittedWithRows();
    expect(committedAtKill, 'killed before the end of the stream').toBeLessThan(total);
    expect(pending.length, `caught between rows and commit (after ${attempts} freezes)`).toBeGreaterThan(0);

    const second = await launch('crash-2', topic, groupId);
    const onSecond = await connect(second, 'u-c1');
    // The dead member would be evicted when its session (30 s, not
    // configurable) expires; a LeaveGroup in its name does the same now.
    const evictor = await RawKafkaClient.connect(broker.brokerAddress, 'e2e-evictor');
    try {
      const left = await evictor.send<{ errorCode: number }>('LeaveGroup', 1, { groupId, memberId: deadMembers[0] });
      expect(left.errorCode).toBe(0);
    } finally {
      await evictor.close();
    }

    await broker.waitFor(() => committed() === total, { timeoutMs: 20_000, description: 'every event committed by the second process' });
    const counts = await database.countsByEvent(eventIds);
    expect(eventIds.filter((eventId) => counts.get(eventId) !== 3)).toEqual([]);
    expect(await database.duplicatePairs(eventIds)).toEqual([]);
    const rows = await database.rows(eventIds);
    expect(rows).toHaveLength(3 * total);

    // The second process started exactly at the committed offset and took the
    // half-done events again, creating none of their rows a second time.
    expect(second.outcomes('processed')[0]).toBe(String(committedAtKill));
    // The last batch's lines may still be on their way through the pipe when its commit is seen.
    const alreadyStored = (): Array<Record<string, unknown>> => second.logsWith('event already stored: nothing new to push');
    await pollUntil(() => pending.every((eventId) => alreadyStored().some((line) => line.eventId === eventId)), {
      timeoutMs: 5_000,
      description: 'an "already stored" line for each redelivered event',
    });
    for (const eventId of pending) {
      expect(rows.filter((row) => row.eventId === eventId).every((row) => snowflakeNode(row.id) === first.nodeId)).toBe(true);
      expect(second.logsWith('event already stored: nothing new to push').some((line) => line.eventId === eventId)).toBe(true);
    }

    // Pushes: each process pushed exactly the rows it created; none twice.
    const mine = rows.filter((row) => row.recipientId === 'u-c1');
    const createdBySecond = mine.filter((row) => snowflakeNode(row.id) === second.nodeId).map((row) => row.id);
    await pollUntil(() => onSecond.pushes.length >= createdBySecond.length, { description: 'the pushes of the second process', timeoutMs: 5_000 });
    await settle(200);
    expect(onSecond.pushes.map((push) => push.id).sort()).toEqual([...createdBySecond].sort());
    const firstIds = new Set(onFirst.pushes.map((push) => push.id));
    expect(onSecond.pushes.filter((push) => firstIds.has(push.id))).toEqual([]);
    const firstEvents = new Set(onFirst.pushes.map((push) => push.eventId));
    expect(onSecond.pushes.filter((push) => firstEvents.has(push.eventId))).toEqual([]);
    const createdByFirst = new Set(mine.filter((row) => snowflakeNode(row.id) === first.nodeId).map((row) => row.id));
    expect(onFirst.pushes.every((push) => createdByFirst.has(push.id))).toBe(true);
  }, 60_000);

  it('exits 0 promptly on SIGTERM while a message is being retried, leaves the group, and commits nothing past that message', async () => {
    const topic = 'e2e.sigterm';
    const groupId = 'signal-sigterm';
    broker.createTopic(topic, 1);
    await database.addMembers('m-term', ['u-t1']);
    const { proxy, url } = await TcpProxy.forUrl(database.url, 5432);
    proxies.push(proxy);
    const service = await launch('sigterm', topic, groupId, url);
    await fetching(service);

    await send(topic, [{ value: merchantEvent('ev-term-0', 'm-term') }]);
    await broker.waitFor(() => broker.committedOffset(groupId, topic, 0) === '1', { description: 'ev-term-0 committed' });
    proxy.cut();
    const [stuck] = await send(topic, [{ value: merchantEvent('ev-term-1', 'm-term') }]);
    expect(stuck).toBe('1');
    await pollUntil(() => service.logsWith('kafka message failed; retrying the same message').some((line) => line.offset === '1'), {
      description: 'ev-term-1 failing and being retried',
    });
    expect(broker.groupMembers(groupId)).toHaveLength(1);

    const exit = await stopService(service);
    expect(exit, service.tail()).toMatchObject({ code: 0, signal: null, forced: false });
    expect(exit.elapsedMs).toBeLessThan(5_000);
    expect(broker.groupMembers(groupId)).toEqual([]);
    expect(broker.groupEvents).toContainEqual(expect.objectContaining({ type: 'member-removed', groupId, reason: 'left' }));
    expect(broker.committedOffset(groupId, topic, 0)).toBe('1');
    await pollUntil(() => service.outcomes('abandoned').length > 0, { description: 'the abandoned line', timeoutMs: 2_000 });
    expect(service.outcomes('abandoned')).toEqual(['1']);
    proxy.restore();
    expect(await database.countsByEvent(['ev-term-0', 'ev-term-1'])).toEqual(new Map([['ev-term-0', 1]]));
  });

  it('exits 0 promptly on SIGTERM while the handler waits on a hung database, leaves the group, and commits nothing past that message', async () => {
    const topic = 'e2e.sigterm-hung';
    const groupId = 'signal-sigterm-hung';
    broker.createTopic(topic, 1);
    await database.addMembers('m-hung', ['u-g1']);
    const { proxy, url } = await TcpProxy.forUrl(database.url, 5432);
    proxies.push(proxy);
    const service = await launch('sigterm-hung', topic, groupId, url);
    await fetching(service);

    await send(topic, [{ value: merchantEvent('ev-hung-0', 'm-hung') }]);
    await broker.waitFor(() => broker.committedOffset(groupId, topic, 0) === '1', { description: 'ev-hung-0 committed' });
    // The database stops answering (no reset, no refusal): the next event's
    // membership query is sent and never answered.
    proxy.stall();
    const [stuck] = await send(topic, [{ value: merchantEvent('ev-hung-1', 'm-hung') }]);
    expect(stuck).toBe('1');
    await pollUntil(() => proxy.stalledTraffic().includes('PolicyDefinition'), {
      timeoutMs: 10_000,
      description: `ev-hung-1 waiting on its membership query (${JSON.stringify(proxy.counts)}, ${proxy.stalledTraffic().length} bytes held)`,
    });

    const exit = await stopService(service);
    proxy.restore();
    expect.soft(exit, service.tail()).toMatchObject({ code: 0, signal: null, forced: false });
    expect.soft(exit.elapsedMs, 'SIGTERM to exit').toBeLessThan(5_000);
    expect(broker.groupMembers(groupId)).toEqual([]);
    expect(broker.committedOffset(groupId, topic, 0)).toBe('1');
    await pollUntil(() => service.outcomes('abandoned').length > 0, { description: 'the abandoned line', timeoutMs: 2_000 });
    expect(service.outcomes('abandoned')).toEqual(['1']);
    expect(await database.countsByEvent(['ev-hung-0', 'ev-hung-1'])).toEqual(new Map([['ev-hung-0', 1]]));
  });

  it('keeps events flowing through a two-member group while one member stops and another joins; every event ends with exactly its rows', async () => {
    const topic = 'e2e.rebalance';
    const groupId = 'signal-rebalance';
    const partitions = [0, 1, 2];
    broker.createTopic(topic, partitions.length);
    await database.addMembers('m-reb', ['u-r1', 'u-r2']);
    const [a, b] = await Promise.all([launch('reb-a', topic, groupId), launch('reb-b', topic, groupId)]);
    await stableWith(groupId, [a!, b!]);

    // A partition's start is pinned by the first message it handles; pin all
    // three before the stream, so no rebalance can move one to "latest".
    const warm = partitions.map((partition) => `ev-reb-warm-${partition}`);
    await send(topic, warm.map((eventId, partition) => ({ value: merchantEvent(eventId, 'm-reb'), partition })));
    await pollUntil(async () => (await database.completeEvents(warm, 2)) === warm.length, { description: 'the warm-up events' });
    // Each member owns at least one of the three partitions, so each took a warm-up event.
    await pollUntil(() => a!.outcomes('processed').length > 0 && b!.outcomes('processed').length > 0, {
      description: 'both members processing',
      timeoutMs: 5_000,
    });

    const streamed: string[] = [];
    let streaming = true;
    const streamer = (async () => {
      while (streaming) {
        const eventId = `ev-reb-${streamed.length}`;
        await send(topic, [{ value: merchantEvent(eventId, 'm-reb'), partition: streamed.length % partitions.length }]);
        streamed.push(eventId);
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
    })();
    const flowing = async (from: number, description: string): Promise<void> => {
      const window = (): string[] => streamed.slice(from, from + 3 * partitions.length);
      await pollUntil(async () => window().length === 3 * partitions.length && (await database.completeEvents(window(), 2)) === window().length, {
        timeoutMs: 20_000,
        description,
      });
    };

    try {
      await flowing(0, 'the stream flowing through both members');
      const bExit = await stopService(b!);
      expect(bExit, b!.tail()).toMatchObject({ code: 0, forced: false });
      const aLinesAtStop = a!.logs.length;
      await stableWith(groupId, [a!]);
      await flowing(streamed.length, 'the stream flowing through the remaining member');
      const takenOver = (): number[] =>
        [...new Set(a!.logs.slice(aLinesAtStop).filter((line) => line.outcome === 'processed').map((line) => Number(line.partition)))].sort();
      await pollUntil(() => takenOver().length === partitions.length, { timeoutMs: 5_000, description: 'the remaining member on every partition' });
      expect(takenOver()).toEqual(partitions);

      const c = await launch('reb-c', topic, groupId);
      await stableWith(groupId, [a!, c]);
      await flowing(streamed.length, 'the stream flowing after the new member joined');
      await pollUntil(() => c.outcomes('processed').length > 0, { description: 'the new member processing', timeoutMs: 10_000 });
    } finally {
      streaming = false;
      await streamer;
    }

    const all = [...warm, ...streamed];
    await pollUntil(async () => (await database.completeEvents(all, 2)) === all.length, { timeoutMs: 20_000, description: 'every event stored' });
    await broker.waitFor(() => partitions.every((partition) => broker.committedOffset(groupId, topic, partition) === broker.highWatermark(topic, partition)), {
      timeoutMs: 10_000,
      description: 'every partition committed to its end',
    });
    const counts = await database.countsByEvent(all);
    expect(all.filter((eventId) => counts.get(eventId) !== 2)).toEqual([]);
    expect(await database.duplicatePairs(all)).toEqual([]);
    expect(await database.rows(all)).toHaveLength(2 * all.length);
  }, 90_000);

  it('parks a non-JSON and a schema-violating message on the DLQ with the reason, commits them, and processes the next event', async () => {
    const topic = 'e2e.poison';
    const groupId = 'signal-poison';
    broker.createTopic(topic, 1);
    await database.addMembers('m-poison', ['u-p1']);
    const service = await launch('poison', topic, groupId);
    await fetching(service);

    const [base] = await send(topic, [
      { value: '{"eventId": "ev-broken", "type": ', key: 'k-broken' },
      { value: { eventId: 'ev-invalid', type: 'PAYMENT_SUCCESS', scope: 'merchant', merchantId: 'm-poison' }, key: 'k-invalid' },
      { value: merchantEvent('ev-after-poison', 'm-poison') },
    ]);
    expect(base).toBe('0');
    await pollUntil(async () => (await database.completeEvents(['ev-after-poison'], 1)) === 1, { description: 'the valid event stored' });
    await broker.waitFor(() => broker.committedOffset(groupId, topic, 0) === '3', { description: 'all three committed' });

    const parked = broker.messages(`${topic}.dlq`);
    expect(parked.map((message) => message.value?.toString())).toEqual([
      '{"eventId": "ev-broken", "type": ',
      JSON.stringify({ eventId: 'ev-invalid', type: 'PAYMENT_SUCCESS', scope: 'merchant', merchantId: 'm-poison' }),
    ]);
    expect(parked.map((message) => message.key?.toString())).toEqual(['k-broken', 'k-invalid']);
    expect(parked[0]?.headers).toMatchObject({
      'x-signal-dlq-reason': expect.stringMatching(/JSON/),
      'x-signal-source-topic': topic,
      'x-signal-source-partition': '0',
      'x-signal-source-offset': '0',
    });
    expect(parked[1]?.headers).toMatchObject({ 'x-signal-dlq-reason': expect.stringMatching(/^actorId/), 'x-signal-source-offset': '1' });
    await pollUntil(() => service.outcomes('processed').length > 0, { description: 'the processed line' });
    expect(service.outcomes('poison')).toEqual(['0', '1']);
    expect(service.outcomes('processed')).toEqual(['2']);
    expect(await database.countsByEvent(['ev-broken', 'ev-invalid'])).toEqual(new Map());
  });

  it('rides out a database outage: /ready is 503 naming the database, nothing is committed past an unprocessed event, and every event ends with exactly its rows', async () => {
    const topic = 'e2e.outage';
    const groupId = 'signal-outage';
    broker.createTopic(topic, 1);
    await database.addMembers('m-out', ['u-o1', 'u-o2']);
    const { proxy, url } = await TcpProxy.forUrl(database.url, 5432);
    proxies.push(proxy);
    const service = await launch('outage', topic, groupId, url);
    await fetching(service);

    const eventIds: string[] = [];
    const publish = async (count: number): Promise<void> => {
      for (let index = 0; index < count; index++) {
        const eventId = `ev-out-${eventIds.length}`;
        const [offset] = await send(topic, [{ value: merchantEvent(eventId, 'm-out') }]);
        expect(offset).toBe(String(eventIds.length));
        eventIds.push(eventId);
      }
    };
    const committed = (): number => Number(broker.committedOffset(groupId, topic, 0) ?? '0');

    await publish(5);
    await pollUntil(async () => (await database.completeEvents(eventIds, 2)) === 5, { description: 'the first five events stored' });
    await broker.waitFor(() => committed() === 5, { description: 'the first five committed' });
    expect((await readiness(service)).status).toBe(200);

    // Every offset the group commits while the database is down.
    const commitsDuringOutage: number[] = [];
    let outage = true;
    const watch = broker.waitFor(
      () => {
        if (!outage) return true;
        if (commitsDuringOutage.at(-1) !== committed()) commitsDuringOutage.push(committed());
        return false;
      },
      { timeoutMs: 60_000, description: 'the end of the outage' },
    );
    proxy.cut();
    const streaming = (async () => {
      for (let index = 0; index < 8; index++) {
        await publish(1);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    })();
    let down: { status: number; body: any } | undefined;
    await pollUntil(
      async () => {
        down = await readiness(service);
        return down.status === 503 && down.body.dependencies.some((dependency: { name: string; ready: boolean }) => dependency.name === 'database' && !dependency.ready);
      },
      { timeoutMs: 10_000, description: '/ready reporting the database down' },
    );
    expect(down?.body.dependencies).toContainEqual({ name: 'database', ready: false, detail: expect.stringMatching(/^unreachable/) });
    await streaming;
    await pollUntil(() => service.logsWith('kafka message failed; retrying the same message').some((line) => line.offset === '5'), {
      description: 'the first event of the outage being retried',
    });

    // Still inside the outage: what is stored, and what was committed.
    const countsDuringOutage = await database.countsByEvent(eventIds);
    outage = false;
    // Offsets are event indexes here: the events before offset N are those
    // that must be fully stored for a commit of N to be allowed.
    const processedPrefix = eventIds.findIndex((eventId) => countsDuringOutage.get(eventId) !== 2);
    expect(processedPrefix).toBe(5);
    expect(eventIds.slice(5).filter((eventId) => countsDuringOutage.has(eventId))).toEqual([]);
    expect(commitsDuringOutage.length).toBeGreaterThan(0);
    expect(Math.max(...commitsDuringOutage)).toBeLessThanOrEqual(processedPrefix);
    expect(committed()).toBe(5);
    proxy.restore();
    await watch.catch(() => undefined);

    await publish(4);
    await pollUntil(async () => (await database.completeEvents(eventIds, 2)) === eventIds.length, {
      timeoutMs: 30_000,
      description: 'every event stored after the outage',
    });
    await broker.waitFor(() => committed() === eventIds.length, { description: 'every event committed' });
    const counts = await database.countsByEvent(eventIds);
    expect(eventIds.filter((eventId) => counts.get(eventId) !== 2)).toEqual([]);
    expect(await database.duplicatePairs(eventIds)).toEqual([]);
    await pollUntil(async () => (await readiness(service)).status === 200, { timeoutMs: 10_000, description: '/ready back to 200' });
    const retried = service.logsWith('kafka message failed; retrying the same message');
    expect(new Set(retried.map((line) => line.offset))).toEqual(new Set(['5']));
  }, 60_000);
});
