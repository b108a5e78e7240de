/**
 * The fake Kafka broker against real kafkajs 2.2.4 clients: producer,
 * consumer groups (rebalances, commits, session expiry) and admin, plus a
 * conformance pass that sends every advertised API version with kafkajs's
 * own request encoders and reads the answers with its response decoders.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  AssignerProtocol,
  CompressionTypes,
  Kafka,
  logLevel,
  Partitioners,
  type Consumer,
  type EachMessagePayload,
  type IHeaders,
} from 'kafkajs';
import { spawnFakeKafkaBroker } from '../fixtures/fake-kafka/broker-process.ts';
import { FakeKafkaBroker } from '../fixtures/fake-kafka/fake-kafka-broker.ts';
import { FrameReader } from '../fixtures/fake-kafka/frame-reader.ts';
import { apiName, ErrorCode, newEncoder } from '../fixtures/fake-kafka/kafkajs-protocol.ts';
import { kafkajsProtocol, kafkajsVersions, RawKafkaClient } from '../fixtures/fake-kafka/raw-kafka-client.ts';
import { waitFor } from '../fixtures/wait-for.ts';

/** Shapes of kafkajs's response decoders, for the raw-client tests. */
type Errored = { errorCode: number };
type FetchedMessage = { offset: string; value: Buffer };
type FetchResponse = {
  responses: Array<{ topicName: string; partitions: Array<Errored & { highWatermark: string; messages: FetchedMessage[] }> }>;
};
type JoinResponse = Errored & {
  memberId: string;
  leaderId: string;
  generationId: number;
  groupProtocol: string;
  members: Array<{ memberId: string; memberMetadata: Buffer }>;
};
type SyncResponse = Errored & { memberAssignment: Buffer };
type PerPartition<P> = { responses: Array<{ topic: string; partitions: P[] }> };
type ApiVersionsResponse = Errored & { apiVersions: Array<{ apiKey: number; minVersion: number; maxVersion: number }> };

/** Small group timings keep rebalances and shutdowns well under a second. */
const GROUP_TIMINGS = { sessionTimeout: 3_000, rebalanceTimeout: 3_000, heartbeatInterval: 100, maxWaitTimeInMs: 100 };
const FAST_RETRY = { initialRetryTime: 50, maxRetryTime: 500, retries: 10 };

interface Received {
  partition: number;
  offset: string;
  key: string | null;
  value: string | null;
  timestamp: string;
  headers: IHeaders;
}

interface RunningConsumer {
  consumer: Consumer;
  clientId: string;
  received: Received[];
  /** The consumer's partitions of the topic after each GROUP_JOIN. */
  assignments: number[][];
}

let broker: FakeKafkaBroker;
const cleanups: Array<() => Promise<void>> = [];

beforeAll(async () => {
  broker = await FakeKafkaBroker.start();
});

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

afterAll(async () => {
  await broker?.stop();
});

function kafka(clientId: string, brokerAddress = broker.brokerAddress): Kafka {
  return new Kafka({ clientId, brokers: [brokerAddress], logLevel: logLevel.NOTHING, retry: FAST_RETRY });
}

async function connectedProducer(clientId = 'test-producer', brokerAddress?: string) {
  const producer = kafka(clientId, brokerAddress).producer({ createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  cleanups.push(() => producer.disconnect());
  return producer;
}

async function runConsumer(options: {
  groupId: string;
  topic: string;
  clientId: string;
  fromBeginning: boolean;
  autoCommit?: boolean;
  brokerAddress?: string;
  onMessage?: (payload: EachMessagePayload, consumer: Consumer) => Promise<void>;
}): Promise<RunningConsumer> {
  const consumer = kafka(options.clientId, options.brokerAddress).consumer({ groupId: options.groupId, ...GROUP_TIMINGS });
  const running: RunningConsumer = { consumer, clientId: options.clientId, received: [], assignments: [] };
  consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => {
    running.assignments.push([...(payload.memberAssignment[options.topic] ?? [])].sort());
  });
  await consumer.connect();
  cleanups.push(() => consumer.disconnect());
  await consumer.subscribe({ topic: options.topic, fromBeginning: options.fromBeginning });
  await consumer.run({
    autoCommit: options.autoCommit ?? true,
    eachMessage: async (payload) => {
      const { partition, message } = payload;
      running.received.push({
        partition,
        offset: message.offset,
        key: message.key?.toString() ?? null,
        value: message.value?.toString() ?? null,
        timestamp: message.timestamp,
        headers: message.headers ?? {},
      });
      await options.onMessage?.(payload, consumer);
    },
  });
  return running;
}

const latest = (running: RunningConsumer): number[] => running.assignments.at(-1) ?? [];

function fetchCount(clientId: string): number {
  return broker.requestLog.filter((entry) => entry.apiName === 'Fetch' && entry.clientId === clientId).length;
}

/** Resolves after the consumer sent `count` more Fetch requests: it has nothing older left to deliver. */
async function nextFetches(clientId: string, count = 2): Promise<void> {
  const target = fetchCount(clientId) + count;
  await broker.waitFor(() => fetchCount(clientId) >= target, { description: `${count} more fetches from ${clientId}` });
}

function valuesByPartition(received: readonly Received[]): Record<number, string[]> {
  const result: Record<number, string[]> = {};
  for (const { partition, value } of received) (result[partition] ??= []).push(value ?? '<null>');
  return result;
}

describe('FakeKafkaBroker with real kafkajs clients', () => {
  it('stores what a producer sends, with offsets, keys, headers and gzip-compressed batches decoded', async () => {
    broker.createTopic('produce-store', 2);
    const producer = await connectedProducer();

    const [first] = await producer.send({
      topic: 'produce-store',
      messages: [
        { partition: 0, key: 'k0', value: 'zero', headers: { source: 'test' } },
        { partition: 0, key: 'k1', value: 'one' },
        { partition: 1, value: null },
      ],
    });
    await producer.send({
      topic: 'produce-store',
      compression: CompressionTypes.GZIP,
      messages: [{ partition: 0, value: 'gzipped' }],
    });

    expect(first).toMatchObject({ errorCode: 0 });
    const stored = broker.messages('produce-store', 0);
    expect(stored.map(({ offset, key, value, headers }) => [offset, key?.toString(), value?.toString(), headers])).toEqual([
      ['0', 'k0', 'zero', { source: 'test' }],
      ['1', 'k1', 'one', {}],
      ['2', undefined, 'gzipped', {}],
    ]);
    expect(broker.messages('produce-store', 1)).toEqual([expect.objectContaining({ offset: '0', key: null, value: null })]);
    expect(broker.highWatermark('produce-store', 0)).toBe('3');
  });

  it('with fromBeginning: false, delivers only what was produced after the consumer joined, in order per partition', async () => {
    broker.createTopic('latest-only', 2);
    broker.produce('latest-only', [
      { value: 'old-0', partition: 0 },
      { value: 'old-1', partition: 1 },
    ]);
    const consumer = await runConsumer({
      groupId: 'g-latest',
      topic: 'latest-only',
      clientId: 'latest-consumer',
      fromBeginning: false,
    });
    // Offsets are resolved (ListOffsets "latest") before the first Fetch; anything produced after that is new.
    await broker.waitFor(() => fetchCount('latest-consumer') > 0, { description: 'the first fetch' });

    const producer = await connectedProducer();
    for (let i = 0; i < 5; i++) {
      await producer.send({
        topic: 'latest-only',
        messages: [
          { partition: 0, value: `p0-${i}` },
          { partition: 1, value: `p1-${i}` },
        ],
      });
    }
    await waitFor(() => consumer.received.length >= 10, 10_000, '10 messages');
    await nextFetches('latest-consumer');

    expect(consumer.received).toHaveLength(10);
    expect(valuesByPartition(consumer.received)).toEqual({
      0: ['p0-0', 'p0-1', 'p0-2', 'p0-3', 'p0-4'],
      1: ['p1-0', 'p1-1', 'p1-2', 'p1-3', 'p1-4'],
    });
    const partitionZero = consumer.received.filter(({ partition }) => partition === 0);
    expect(partitionZero.map(({ offset }) => offset)).toEqual(['1', '2', '3', '4', '5']);
  });

  it('with fromBeginning: true, delivers the existing log in order per partition, then new messages', async () => {
    broker.createTopic('from-beginning', 3);
    broker.produce(
      'from-beginning',
      Array.from({ length: 9 }, (_, i) => ({ partition: i % 3, value: `m${i}` })),
    );
    const consumer = await runConsumer({
      groupId: 'g-beginning',
      topic: 'from-beginning',
      clientId: 'beginning-consumer',
      fromBeginning: true,
    });
    await waitFor(() => consumer.received.length >= 9, 10_000, 'the existing 9 messages');
    broker.produce('from-beginning', [{ partition: 2, value: 'late' }]);
    await waitFor(() => consumer.received.length >= 10, 10_000, 'the late message');
    await nextFetches('beginning-consumer');

    expect(valuesByPartition(consumer.received)).toEqual({
      0: ['m0', 'm3', 'm6'],
      1: ['m1', 'm4', 'm7'],
      2: ['m2', 'm5', 'm8', 'late'],
    });
  });

  it('after a manual commit, a new consumer in the same group resumes right after the committed offset', async () => {
    broker.createTopic('manual-commit', 1);
    broker.produce('manual-commit', Array.from({ length: 6 }, (_, i) => ({ value: `m${i}` })));

    const first = await runConsumer({
      groupId: 'g-manual',
      topic: 'manual-commit',
      clientId: 'manual-first',
      fromBeginning: true,
      autoCommit: false,
      onMessage: async ({ topic, partition, message }, consumer) => {
        if (message.value?.toString() === 'm2') {
          await consumer.commitOffsets([{ topic, partition, offset: String(Number(message.offset) + 1) }]);
        }
      },
    });
    await waitFor(() => first.received.length === 6, 10_000, 'all six messages');
    expect(broker.committedOffset('g-manual', 'manual-commit', 0)).toBe('3');
    await first.consumer.disconnect();
    expect(broker.committedOffset('g-manual', 'manual-commit', 0)).toBe('3');
    expect(broker.groupMembers('g-manual')).toEqual([]);

    const second = await runConsumer({
      groupId: 'g-manual',
      topic: 'manual-commit',
      clientId: 'manual-second',
      fromBeginning: true,
    });
    await waitFor(() => second.received.length >= 3, 10_000, 'the uncommitted messages');
    await nextFetches('manual-second');

    expect(second.received.map(({ offset, value }) => [offset, value])).toEqual([
      ['3', 'm3'],
      ['4', 'm4'],
      ['5', 'm5'],
    ]);
  });

  it('splits partitions between two group members and gives all of them to the survivor when one leaves', async () => {
    const topic = 'split';
    const groupId = 'g-split';
    broker.createTopic(topic, 4);
    const a = await runConsumer({ groupId, topic, clientId: 'split-a', fromBeginning: true });
    await waitFor(() => latest(a).length === 4, 10_000, 'a owning all partitions');

    const b = await runConsumer({ groupId, topic, clientId: 'split-b', fromBeginning: true });
    await waitFor(
      () => latest(a).length === 2 && latest(b).length === 2 && new Set([...latest(a), ...latest(b)]).size === 4,
      10_000,
      'a 2+2 split',
    );
    expect(broker.group(groupId)?.state).toBe('Stable');
    expect(broker.groupMembers(groupId)).toHaveLength(2);

    const producer = await connectedProducer();
    const send = (round: string) =>
      producer.send({ topic, messages: [0, 1, 2, 3].map((partition) => ({ partition, value: `${round}-p${partition}` })) });
    await send('before');
    await waitFor(() => a.received.length + b.received.length >= 4, 10_000, 'the first round');
    for (const consumer of [a, b]) {
      expect(consumer.received.every(({ partition }) => latest(consumer).includes(partition))).toBe(true);
    }

    const bMember = broker.groupMembers(groupId).find((memberId) => memberId.startsWith('split-b'));
    await b.consumer.disconnect();
    expect(broker.groupEvents).toContainEqual({ type: 'member-removed', groupId, memberId: bMember, reason: 'left' });
    await waitFor(() => latest(a).length === 4, 10_000, 'a owning all partitions again');
    expect(broker.groupMembers(groupId)).toHaveLength(1);

    await send('after');
    await waitFor(() => a.received.filter(({ value }) => value?.startsWith('after')).length >= 4, 10_000, 'the second round');
    await nextFetches('split-a');

    const delivered = [...a.received, ...b.received].map(({ value }) => value).sort();
    expect(delivered).toEqual([0, 1, 2, 3].flatMap((p) => [`after-p${p}`, `before-p${p}`]).sort());
  });

  it('removes a member whose session times out and rebalances its partitions to the others', async () => {
    const topic = 'zombie';
    const groupId = 'g-zombie';
    broker.createTopic(topic, 2);
    const alive = await runConsumer({ groupId, topic, clientId: 'zombie-survivor', fromBeginning: true });
    await waitFor(() => latest(alive).length === 2, 10_000, 'the survivor owning both partitions');

    // A member that joins like kafkajs would, then never heartbeats again.
    const zombie = await RawKafkaClient.connect(broker.brokerAddress, 'zombie');
    cleanups.push(() => zombie.close());
    const metadata = AssignerProtocol.MemberMetadata.encode({ version: 1, topics: [topic], userData: Buffer.alloc(0) });
    const join = {
      groupId,
      sessionTimeout: 500,
      rebalanceTimeout: 3_000,
      protocolType: 'consumer',
      groupProtocols: [{ name: 'RoundRobinAssigner', metadata }],
    };
    const asked = await zombie.send<JoinResponse>('JoinGroup', 5, { ...join, memberId: '' });
    expect(asked.errorCode).toBe(ErrorCode.MEMBER_ID_REQUIRED);
    const joined = await zombie.send<JoinResponse>('JoinGroup', 5, { ...join, memberId: asked.memberId });
    expect(joined).toMatchObject({ errorCode: 0, memberId: asked.memberId });
    expect(joined.leaderId).not.toBe(joined.memberId);
    const synced = await zombie.send<SyncResponse>('SyncGroup', 3, {
      groupId,
      generationId: joined.generationId,
      memberId: joined.memberId,
      groupAssignment: [],
    });
    expect(AssignerProtocol.MemberAssignment.decode(synced.memberAssignment)?.assignment[topic]).toHaveLength(1);
    await waitFor(() => latest(alive).length === 1, 10_000, 'the survivor giving up a partition');

    await broker.waitFor(() => !broker.groupMembers(groupId).includes(joined.memberId), { description: 'the zombie expiring' });
    expect(broker.groupEvents).toContainEqual({
      type: 'member-removed',
      groupId,
      memberId: joined.memberId,
      reason: 'session-timeout',
    });
    await waitFor(() => latest(alive).length === 2, 10_000, 'the survivor owning both partitions again');
    const heartbeat = await zombie.send<Errored>('Heartbeat', 3, {
      groupId,
      groupGenerationId: joined.generationId,
      memberId: joined.memberId,
    });
    expect(heartbeat.errorCode).toBe(ErrorCode.UNKNOWN_MEMBER_ID);
  });

  it('round-trips keys, timestamps and headers (binary and repeated) between producer, broker and consumer', async () => {
    broker.createTopic('headers', 1);
    const producer = await connectedProducer();
    await producer.send({
      topic: 'headers',
      messages: [
        {
          key: 'key-1',
          value: 'with-headers',
          timestamp: '1700000000123',
          headers: { 'trace-id': 'abc-123', binary: Buffer.from([0, 1, 2, 255]), repeated: ['x', 'y'] },
        },
      ],
    });
    broker.produce('headers', [{ value: 'direct', headers: { source: 'fixture' }, timestamp: 1700000000999 }]);

    const consumer = await runConsumer({
      groupId: 'g-headers',
      topic: 'headers',
      clientId: 'headers-consumer',
      fromBeginning: true,
    });
    await waitFor(() => consumer.received.length >= 2, 10_000, 'both messages');

    const [fromProducer, direct] = consumer.received;
    expect(fromProducer).toMatchObject({ key: 'key-1', value: 'with-headers', timestamp: '1700000000123' });
    expect(fromProducer!.headers).toEqual({
      'trace-id': Buffer.from('abc-123'),
      binary: Buffer.from([0, 1, 2, 255]),
      repeated: [Buffer.from('x'), Buffer.from('y')],
    });
    expect(direct).toMatchObject({ value: 'direct', timestamp: '1700000000999', headers: { source: Buffer.from('fixture') } });
    expect(broker.messages('headers', 0)[0]!.headers).toEqual({
      'trace-id': 'abc-123',
      binary: '\u0000\u0001\u0002\ufffd',
      repeated: 'y',
    });
  });

  it('serves admin createTopics, listTopics, fetchTopicOffsets(ByTimestamp) and fetchOffsets', async () => {
    const admin = kafka('test-admin').admin();
    await admin.connect();
    cleanups.push(() => admin.disconnect());

    expect(await admin.createTopics({ topics: [{ topic: 'admin-created', numPartitions: 3 }] })).toBe(true);
    expect(await admin.createTopics({ topics: [{ topic: 'admin-created', numPartitions: 3 }] })).toBe(false);
    expect(broker.partitionCount('admin-created')).toBe(3);
    expect(await admin.listTopics()).toContain('admin-created');

    broker.produce('admin-created', [
      { partition: 1, value: 'a', timestamp: 1_000 },
      { partition: 1, value: 'b', timestamp: 2_000 },
    ]);
    expect(await admin.fetchTopicOffsets('admin-created')).toEqual([
      { partition: 0, offset: '0', high: '0', low: '0' },
      { partition: 1, offset: '2', high: '2', low: '0' },
      { partition: 2, offset: '0', high: '0', low: '0' },
    ]);
    const byTimestamp = await admin.fetchTopicOffsetsByTimestamp('admin-created', 1_500);
    expect(byTimestamp.find(({ partition }) => partition === 1)).toEqual({ partition: 1, offset: '1' });

    const committer = await RawKafkaClient.connect(broker.brokerAddress);
    cleanups.push(() => committer.close());
    await committer.send('OffsetCommit', 5, {
      groupId: 'g-admin',
      groupGenerationId: -1,
      memberId: '',
      topics: [{ topic: 'admin-created', partitions: [{ partition: 1, offset: '1' }] }],
    });
    const [offsets] = await admin.fetchOffsets({ groupId: 'g-admin', topics: ['admin-created'] });
    expect(offsets!.partitions.map(({ partition, offset }) => [partition, offset])).toEqual([
      [0, '-1'],
      [1, '1'],
      [2, '-1'],
    ]);
  });

  it('keeps serving a consumer whose connections were dropped (it reconnects and resumes)', async () => {
    broker.createTopic('dropped', 1);
    const consumer = await runConsumer({
      groupId: 'g-dropped',
      topic: 'dropped',
      clientId: 'dropped-consumer',
      fromBeginning: true,
    });
    broker.produce('dropped', [{ value: 'before' }]);
    await waitFor(() => consumer.received.length === 1, 10_000, 'the first message');

    const connectionsBefore = new Set(broker.requestLog.map(({ connectionId }) => connectionId));
    broker.dropConnections();
    broker.produce('dropped', [{ value: 'after' }]);
    await waitFor(() => consumer.received.length >= 2, 10_000, 'the message produced after the drop');
    await nextFetches('dropped-consumer');

    expect(consumer.received.map(({ value }) => value)).toEqual(['before', 'after']);
    const reconnected = broker.requestLog.filter(
      ({ clientId, connectionId }) => clientId === 'dropped-consumer' && !connectionsBefore.has(connectionId),
    );
    expect(reconnected.length).toBeGreaterThan(0);
  });

  it('runs in its own process, outliving the clients that talk to it', async () => {
    const processBroker = await spawnFakeKafkaBroker({ topics: { 'in-process': 2 } });
    cleanups.push(() => processBroker.stop());
    const producer = await connectedProducer('process-producer', processBroker.brokerAddress);
    await producer.send({ topic: 'in-process', messages: [{ partition: 1, value: 'across processes' }] });
    await producer.disconnect();

    const consumer = await runConsumer({
      groupId: 'g-process',
      topic: 'in-process',
      clientId: 'process-consumer',
      fromBeginning: true,
      brokerAddress: processBroker.brokerAddress,
    });
    await waitFor(() => consumer.received.length === 1, 10_000, 'the message');
    expect(consumer.received[0]).toMatchObject({ partition: 1, offset: '0', value: 'across processes' });
    await consumer.consumer.disconnect();
    await processBroker.stop();
    expect(processBroker.child.exitCode).toBe(0);
    expect(processBroker.stderr).toEqual([]);
  });
});

describe('FakeKafkaBroker wire behaviour', () => {
  const TOPIC = 'wire';

  beforeAll(() => {
    broker.createTopic(TOPIC, 2);
    broker.produce(TOPIC, [{ value: 'w0' }, { value: 'w1' }]);
  });

  async function rawClient(clientId = 'raw'): Promise<RawKafkaClient> {
    const client = await RawKafkaClient.connect(broker.brokerAddress, clientId);
    cleanups.push(() => client.close());
    return client;
  }

  const fetchArgs = (fetchOffset: string, maxWaitTime: number, maxBytes = 1 << 20) => ({
    replicaId: -1,
    maxWaitTime,
    minBytes: 1,
    maxBytes,
    topics: [{ topic: TOPIC, partitions: [{ partition: 0, fetchOffset, maxBytes }] }],
  });

  it('answers a request that arrives one byte at a time', async () => {
    const client = await rawClient();
    const { request, response } = kafkajsProtocol('ApiVersions', 2);
    const payload = await client.sendRequest(request, (bytes) => {
      void (async () => {
        for (const byte of bytes) {
          client.writeRaw(Buffer.from([byte]));
          await new Promise((resolve) => setImmediate(resolve));
        }
      })();
    });
    const decoded = (await response.decode(payload)) as ApiVersionsResponse;
    expect(decoded.errorCode).toBe(0);
    expect(decoded.apiVersions.length).toBeGreaterThan(10);
  });

  it('answers requests written in one chunk, in the order they were written', async () => {
    const client = await rawClient();
    const metadata = kafkajsProtocol('Metadata', 6, { topics: [TOPIC] });
    const versions = kafkajsProtocol('ApiVersions', 2);
    const written: string[] = [];
    const arrived: string[] = [];
    const pending: Buffer[] = [];
    const collect = (name: string) => (bytes: Buffer) => {
      written.push(name);
      pending.push(bytes);
      if (pending.length === 2) client.writeRaw(Buffer.concat(pending));
    };
    const track = (name: string, payload: Promise<Buffer>) => payload.then((body) => (arrived.push(name), body));
    const [first, second] = await Promise.all([
      track('Metadata', client.sendRequest(metadata.request, collect('Metadata'))),
      track('ApiVersions', client.sendRequest(versions.request, collect('ApiVersions'))),
    ]);
    expect(arrived).toEqual(written);
    expect(await metadata.response.decode(first)).toMatchObject({ topicMetadata: [{ topic: TOPIC }] });
    expect(await versions.response.decode(second)).toMatchObject({ errorCode: 0 });
  });

  it('closes the connection, with a log line, on an unknown API key or an unadvertised version', async () => {
    const lines: string[] = [];
    const strict = await FakeKafkaBroker.start({ log: (line) => lines.push(line) });
    cleanups.push(() => strict.stop());

    const unknown = await RawKafkaClient.connect(strict.brokerAddress, 'bogus-client');
    const bogus = { apiKey: 99, apiVersion: 0, apiName: 'Bogus', encode: async () => newEncoder() };
    await expect(unknown.sendRequest(bogus)).rejects.toThrow(/connection closed/);
    expect(lines).toEqual([expect.stringMatching(/unknown API key 99 .*bogus-client/)]);

    const old = await RawKafkaClient.connect(strict.brokerAddress, 'old-client');
    await expect(old.sendRequest(kafkajsProtocol('Fetch', 3, fetchArgs('0', 0)).request)).rejects.toThrow(/connection closed/);
    expect(lines[1]).toMatch(/unsupported version in Fetch v3/);
  });

  it('answers an ApiVersions newer than it knows with UNSUPPORTED_VERSION in the v0 layout, keeping the connection', async () => {
    const client = await rawClient();
    const future = { ...kafkajsProtocol('ApiVersions', 2).request, apiVersion: 9 };
    const body = await client.sendRequest(future);
    expect(body.readInt16BE(0)).toBe(ErrorCode.UNSUPPORTED_VERSION);
    const decoded = await client.send<ApiVersionsResponse>('ApiVersions', 0);
    expect(decoded.apiVersions).toContainEqual({ apiKey: 18, minVersion: 0, maxVersion: 2 });
  });

  it('does not answer a Produce with acks=0, but stores it', async () => {
    const client = await rawClient();
    const before = broker.messages(TOPIC, 1).length;
    await client.sendOneWay('Produce', 7, {
      acks: 0,
      timeout: 1_000,
      topicData: [{ topic: TOPIC, partitions: [{ partition: 1, messages: [{ value: 'fire-and-forget' }] }] }],
    });
    // Served in order: once the next request is answered, the produce was handled.
    await client.send('ApiVersions', 2);
    expect(client.unmatched).toEqual([]);
    expect(broker.messages(TOPIC, 1).slice(before).map(({ value }) => value?.toString())).toEqual(['fire-and-forget']);
  });

  it('long-polls a Fetch at the log end until a record arrives', async () => {
    const client = await rawClient('long-poll');
    const started = Date.now();
    const answer = client.send<FetchResponse>('Fetch', 11, fetchArgs(broker.highWatermark(TOPIC, 0), 5_000));
    await broker.waitFor(() => fetchCount('long-poll') === 1, { description: 'the parked fetch' });
    broker.produce(TOPIC, [{ value: 'arrived' }]);

    const { responses } = await answer;
    expect(responses[0]!.partitions[0]!.messages.map(({ value }) => value.toString())).toEqual(['arrived']);
    expect(Date.now() - started).toBeLessThan(4_000);
  });

  it('answers an empty Fetch only after its maxWaitTime', async () => {
    const client = await rawClient();
    const started = Date.now();
    const { responses } = await client.send<FetchResponse>('Fetch', 11, fetchArgs(broker.highWatermark(TOPIC, 0), 200));
    expect(responses[0]!.partitions[0]!.messages).toEqual([]);
    expect(Date.now() - started).toBeGreaterThanOrEqual(190);
  });

  it('reports offsets out of range and unknown partitions instead of waiting', async () => {
    const client = await rawClient();
    const started = Date.now();
    const { responses } = await client.send<FetchResponse>('Fetch', 11, {
      ...fetchArgs('999', 5_000),
      topics: [
        { topic: TOPIC, partitions: [{ partition: 0, fetchOffset: '999', maxBytes: 1024 }] },
        { topic: 'no-such-topic', partitions: [{ partition: 0, fetchOffset: '0', maxBytes: 1024 }] },
      ],
    });
    expect(responses.map(({ partitions }) => partitions[0]!.errorCode)).toEqual([
      ErrorCode.OFFSET_OUT_OF_RANGE,
      ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
    ]);
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  it('limits a Fetch by maxBytes, yet always returns at least one record', async () => {
    broker.createTopic('max-bytes', 2);
    const payload = 'x'.repeat(100);
    for (const partition of [0, 1]) broker.produce('max-bytes', [0, 1, 2].map(() => ({ value: payload, partition })));
    const client = await rawClient();
    const fetch = (responseMaxBytes: number, partitionMaxBytes: number) =>
      client.send<FetchResponse>('Fetch', 11, {
        ...fetchArgs('0', 0, responseMaxBytes),
        topics: [
          {
            topic: 'max-bytes',
            partitions: [0, 1].map((partition) => ({ partition, fetchOffset: '0', maxBytes: partitionMaxBytes })),
          },
        ],
      });
    const counts = async (responseMaxBytes: number, partitionMaxBytes: number) => {
      const { responses } = await fetch(responseMaxBytes, partitionMaxBytes);
      return responses[0]!.partitions.map(({ messages }) => messages.length);
    };

    expect(await counts(1 << 20, 1 << 20)).toEqual([3, 3]);
    expect(await counts(1 << 20, 300)).toEqual([2, 2]);
    expect(await counts(300, 1 << 20)).toEqual([2, 0]);
    expect(await counts(1, 1)).toEqual([1, 0]);
  });

  it('buffers frames split anywhere, including inside the size prefix', () => {
    const frame = (body: string) => {
      const bytes = Buffer.from(body);
      return Buffer.concat([Buffer.from([0, 0, 0, bytes.length]), bytes]);
    };
    const stream = Buffer.concat([frame('first'), frame(''), frame('third!')]);
    for (let cut = 0; cut <= stream.length; cut++) {
      const reader = new FrameReader();
      const frames = [...reader.push(stream.subarray(0, cut)), ...reader.push(stream.subarray(cut))];
      expect(frames.map(String)).toEqual(['first', '', 'third!']);
      expect(reader.pendingBytes).toBe(0);
    }
  });
});

/**
 * Every version the broker advertises, sent with kafkajs's encoder for that
 * version and read back with its decoder. The broker closes the connection
 * when a request is not consumed to its last byte, so a layout mismatch in
 * either direction fails here.
 */
describe('FakeKafkaBroker protocol conformance', () => {
  const ADVERTISED: Record<string, [number, number]> = {
    Produce: [3, 7],
    Fetch: [4, 11],
    ListOffsets: [1, 3],
    Metadata: [0, 6],
    OffsetCommit: [2, 5],
    OffsetFetch: [1, 4],
    GroupCoordinator: [0, 2],
    JoinGroup: [0, 5],
    Heartbeat: [0, 3],
    LeaveGroup: [0, 3],
    SyncGroup: [0, 3],
    ApiVersions: [0, 2],
    CreateTopics: [0, 3],
  };
  const TOPIC = 'conformance';
  const PROTOCOLS = [{ name: 'RoundRobinAssigner', metadata: Buffer.from('member-metadata') }];
  let client: RawKafkaClient;

  beforeAll(async () => {
    broker.createTopic(TOPIC, 2);
    broker.produce(TOPIC, ['f0', 'f1', 'f2'].map((value) => ({ value, partition: 0 })));
    client = await RawKafkaClient.connect(broker.brokerAddress, 'conformance');
  });

  afterAll(async () => {
    await client?.close();
  });

  /** Joins a fresh group alone (answering MEMBER_ID_REQUIRED when asked) and returns the member. */
  async function joinAlone(groupId: string, version = 5): Promise<JoinResponse> {
    const args = {
      groupId,
      sessionTimeout: 10_000,
      rebalanceTimeout: 10_000,
      protocolType: 'consumer',
      groupProtocols: PROTOCOLS,
    };
    let joined = await client.send<JoinResponse>('JoinGroup', version, { ...args, memberId: '' });
    if (version >= 4) {
      expect(joined.errorCode).toBe(ErrorCode.MEMBER_ID_REQUIRED);
      joined = await client.send<JoinResponse>('JoinGroup', version, { ...args, memberId: joined.memberId });
    }
    expect(joined.errorCode).toBe(0);
    return joined;
  }

  async function joinAndSync(groupId: string): Promise<JoinResponse> {
    const joined = await joinAlone(groupId);
    const synced = await client.send<SyncResponse>('SyncGroup', 3, {
      groupId,
      generationId: joined.generationId,
      memberId: joined.memberId,
      groupAssignment: [{ memberId: joined.memberId, memberAssignment: Buffer.from('mine') }],
    });
    expect(synced.errorCode).toBe(0);
    return joined;
  }

  const scenarios: Record<string, (version: number) => Promise<void>> = {
    ApiVersions: async (version) => {
      const { errorCode, apiVersions } = await client.send<ApiVersionsResponse>('ApiVersions', version);
      expect(errorCode).toBe(0);
      expect(apiVersions.find(({ apiKey }) => apiKey === 1)).toEqual({ apiKey: 1, minVersion: 4, maxVersion: 11 });
    },
    Metadata: async (version) => {
      type Metadata = {
        brokers: Array<{ nodeId: number; port: number }>;
        topicMetadata: Array<{ topic: string; topicErrorCode: number; partitionMetadata: Array<{ leader: number }> }>;
      };
      const response = await client.send<Metadata>('Metadata', version, { topics: [TOPIC] });
      expect(response.brokers).toEqual([expect.objectContaining({ nodeId: 0, host: '127.0.0.1', port: broker.port })]);
      expect(response.topicMetadata).toEqual([expect.objectContaining({ topic: TOPIC, topicErrorCode: 0 })]);
      expect(response.topicMetadata[0]!.partitionMetadata.map(({ leader }) => leader)).toEqual([0, 0]);
    },
    GroupCoordinator: async (version) => {
      const { coordinator } = await client.send<{ coordinator: unknown }>('GroupCoordinator', version, { groupId: 'any' });
      expect(coordinator).toEqual({ nodeId: 0, host: '127.0.0.1', port: broker.port });
    },
    CreateTopics: async (version) => {
      const topic = `conformance-created-v${version}`;
      const create = () =>
        client.send<{ topicErrors: unknown[] }>('CreateTopics', version, { topics: [{ topic, numPartitions: 3 }] });
      expect((await create()).topicErrors).toEqual([expect.objectContaining({ topic, errorCode: 0 })]);
      expect(broker.partitionCount(topic)).toBe(3);
      expect((await create()).topicErrors).toEqual([expect.objectContaining({ errorCode: ErrorCode.TOPIC_ALREADY_EXISTS })]);
    },
    Produce: async (version) => {
      const before = broker.messages(TOPIC, 1).length;
      const message = { key: 'k', value: `produce-v${version}`, headers: { v: `${version}` } };
      const { topics } = await client.send<{ topics: Array<{ partitions: unknown[] }> }>('Produce', version, {
        acks: -1,
        timeout: 1_000,
        topicData: [{ topic: TOPIC, partitions: [{ partition: 1, messages: [message] }] }],
      });
      expect(topics[0]!.partitions).toEqual([
        expect.objectContaining({ partition: 1, errorCode: 0, baseOffset: String(before) }),
      ]);
      expect(broker.messages(TOPIC, 1).at(-1)).toMatchObject({
        value: Buffer.from(message.value),
        headers: message.headers,
      });
    },
    Fetch: async (version) => {
      const { responses } = await client.send<FetchResponse>('Fetch', version, {
        replicaId: -1,
        maxWaitTime: 0,
        minBytes: 1,
        maxBytes: 1 << 20,
        topics: [{ topic: TOPIC, partitions: [{ partition: 0, fetchOffset: '1', maxBytes: 1 << 20 }] }],
      });
      const [partition] = responses[0]!.partitions;
      expect(partition).toMatchObject({ errorCode: 0, highWatermark: '3' });
      expect(partition!.messages.map(({ offset, value }) => [offset, value.toString()])).toEqual([
        ['1', 'f1'],
        ['2', 'f2'],
      ]);
    },
    ListOffsets: async (version) => {
      const ask = async (timestamp: number) => {
        const { responses } = await client.send<PerPartition<{ offset: string }>>('ListOffsets', version, {
          topics: [{ topic: TOPIC, partitions: [{ partition: 0, timestamp }] }],
        });
        return responses[0]!.partitions[0]!.offset;
      };
      expect(await ask(-1)).toBe('3');
      expect(await ask(-2)).toBe('0');
    },
    JoinGroup: async (version) => {
      const joined = await joinAlone(`conformance-join-v${version}`, version);
      expect(joined).toMatchObject({ generationId: 1, leaderId: joined.memberId, groupProtocol: 'RoundRobinAssigner' });
      expect(joined.members).toEqual([
        expect.objectContaining({ memberId: joined.memberId, memberMetadata: Buffer.from('member-metadata') }),
      ]);
    },
    SyncGroup: async (version) => {
      const groupId = `conformance-sync-v${version}`;
      const joined = await joinAlone(groupId);
      const synced = await client.send<SyncResponse>('SyncGroup', version, {
        groupId,
        generationId: joined.generationId,
        memberId: joined.memberId,
        groupAssignment: [{ memberId: joined.memberId, memberAssignment: Buffer.from('assigned') }],
      });
      expect(synced).toMatchObject({ errorCode: 0, memberAssignment: Buffer.from('assigned') });
      expect(broker.group(groupId)?.state).toBe('Stable');
    },
    Heartbeat: async (version) => {
      const groupId = `conformance-heartbeat-v${version}`;
      const joined = await joinAndSync(groupId);
      const beat = (groupGenerationId: number) =>
        client.send<Errored>('Heartbeat', version, { groupId, groupGenerationId, memberId: joined.memberId });
      expect((await beat(joined.generationId)).errorCode).toBe(0);
      expect((await beat(joined.generationId + 1)).errorCode).toBe(ErrorCode.ILLEGAL_GENERATION);
    },
    LeaveGroup: async (version) => {
      const groupId = `conformance-leave-v${version}`;
      const joined = await joinAndSync(groupId);
      const left = await client.send<Errored & { members?: Errored[] }>('LeaveGroup', version, {
        groupId,
        memberId: joined.memberId,
      });
      expect(left.errorCode).toBe(0);
      if (version >= 3) expect(left.members).toEqual([expect.objectContaining({ memberId: joined.memberId, errorCode: 0 })]);
      expect(broker.group(groupId)).toMatchObject({ state: 'Empty', members: [] });
    },
    OffsetCommit: async (version) => {
      const groupId = `conformance-commit-v${version}`;
      const joined = await joinAndSync(groupId);
      const commit = async (groupGenerationId: number) => {
        const { responses } = await client.send<PerPartition<Errored>>('OffsetCommit', version, {
          groupId,
          groupGenerationId,
          memberId: joined.memberId,
          topics: [{ topic: TOPIC, partitions: [{ partition: 0, offset: `${10 + version}` }] }],
        });
        return responses[0]!.partitions[0]!.errorCode;
      };
      expect(await commit(joined.generationId)).toBe(0);
      expect(broker.committedOffset(groupId, TOPIC, 0)).toBe(`${10 + version}`);
      expect(await commit(joined.generationId + 1)).toBe(ErrorCode.ILLEGAL_GENERATION);
    },
    OffsetFetch: async (version) => {
      const groupId = `conformance-fetch-v${version}`;
      await client.send('OffsetCommit', 5, {
        groupId,
        groupGenerationId: -1,
        memberId: '',
        topics: [{ topic: TOPIC, partitions: [{ partition: 1, offset: '7', metadata: 'note' }] }],
      });
      const { responses } = await client.send<PerPartition<{ partition: number; offset: string }>>('OffsetFetch', version, {
        groupId,
        topics: [{ topic: TOPIC, partitions: [{ partition: 0 }, { partition: 1 }] }],
      });
      expect(responses).toEqual([
        {
          topic: TOPIC,
          partitions: [
            expect.objectContaining({ partition: 0, offset: '-1', errorCode: 0 }),
            expect.objectContaining({ partition: 1, offset: '7', metadata: 'note', errorCode: 0 }),
          ],
        },
      ]);
    },
  };

  it('advertises exactly the versions below, all of which kafkajs implements', async () => {
    const { apiVersions } = await client.send<ApiVersionsResponse>('ApiVersions', 2);
    const advertised = Object.fromEntries(
      apiVersions.map(({ apiKey, minVersion, maxVersion }) => [apiName(apiKey), [minVersion, maxVersion]]),
    );
    expect(advertised).toEqual(ADVERTISED);
    for (const [name, [min, max]] of Object.entries(ADVERTISED)) {
      expect(kafkajsVersions(name)).toEqual(expect.arrayContaining(range(min, max)));
      expect(Object.keys(scenarios)).toContain(name);
    }
  });

  describe.each(Object.entries(ADVERTISED))('%s', (name, [min, max]) => {
    it.each(range(min, max))(`v%i`, async (version) => {
      await scenarios[name]!(version);
    });
  });
});

function range(min: number, max: number): number[] {
  return Array.from({ length: max - min + 1 }, (_, i) => min + i);
}
