import { randomUUID } from 'node:crypto';
import kafkajs from 'kafkajs';
import type { Admin, Kafka as KafkaClient, KafkaMessage, Producer } from 'kafkajs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DLQ_HEADERS, KafkaActivityConsumer } from '../../src/adapters/kafka/kafka-activity-consumer.ts';
import type { KafkaActivityConsumerOptions } from '../../src/adapters/kafka/kafka-activity-consumer.ts';
import type { ActivityHandler, HandleResult, MessageMeta } from '../../src/application/ports/activity-handler.port.ts';
import type { DependencyHealth } from '../../src/application/ports/lifecycle.port.ts';
import { SignalError } from '../../src/domain/errors.ts';
import { KcatMockCluster } from '../fixtures/kcat-mock-cluster.ts';
import type { LogLine } from '../fixtures/recording-logger.ts';
import { recordingLogger } from '../fixtures/recording-logger.ts';
import { settle, waitFor } from '../fixtures/wait-for.ts';

const { Kafka, Partitioners, logLevel } = kafkajs;

interface Delivery {
  value: string;
  meta: MessageMeta;
}

/**
 * A handler with a real (in-memory) idempotent effect: one "row" per value,
 * however often the value is handed over. `decide` may reject (transient)
 * or return poison; it runs after the effect when `effectFirst` is set.
 */
class ScriptedHandler implements ActivityHandler {
  readonly deliveries: Delivery[] = [];
  constructor(
    readonly rows: Map<string, number>,
    private readonly decide: (value: string, meta: MessageMeta, call: number) => Promise<HandleResult> = async () => ({ outcome: 'processed' }),
    private readonly effectFirst = false,
  ) {}

  async handle(value: Buffer | null, meta: MessageMeta): Promise<HandleResult> {
    const text = value?.toString('utf8') ?? '';
    this.deliveries.push({ value: text, meta });
    const call = this.deliveries.filter((delivery) => delivery.value === text).length;
    if (this.effectFirst) this.#apply(text);
    const result = await this.decide(text, meta, call);
    if (result.outcome === 'processed') this.#apply(text);
    return result;
  }

  values(): string[] {
    return this.deliveries.map((delivery) => delivery.value);
  }

  #apply(text: string): void {
    // Insert-if-absent, like the unique (event_id, recipient_id) constraint.
    if (!this.rows.has(text)) this.rows.set(text, this.rows.size + 1);
  }
}

const kcatInstalled = KcatMockCluster.available();
const title = kcatInstalled
  ? 'KafkaActivityConsumer on a librdkafka mock cluster (kcat)'
  : 'KafkaActivityConsumer on a librdkafka mock cluster: SKIPPED because kcat is not installed (apt-get install -y kcat)';

describe.skipIf(!kcatInstalled)(title, () => {
  let cluster: KcatMockCluster;
  let client: KafkaClient;
  let admin: Admin;
  let feeder: Producer;
  const consumers: KafkaActivityConsumer[] = [];

  beforeAll(async () => {
    cluster = await KcatMockCluster.start();
    client = new Kafka({ clientId: 'signal-test-feeder', brokers: cluster.brokers, logLevel: logLevel.NOTHING });
    admin = client.admin();
    await admin.connect();
    feeder = client.producer({ createPartitioner: Partitioners.DefaultPartitioner });
    await feeder.connect();
  });

  afterEach(async () => {
    await Promise.all(consumers.splice(0).map((consumer) => consumer.close()));
  });

  afterAll(async () => {
    await feeder?.disconnect();
    await admin?.disconnect();
    await cluster?.stop();
  });

  const names = (): { topic: string; groupId: string } => {
    const id = randomUUID().slice(0, 8);
    return { topic: `activity-${id}`, groupId: `signal-${id}` };
  };

  function consumer(
    topic: string,
    groupId: string,
    handler: ActivityHandler,
    lines: LogLine[],
    extra: Partial<KafkaActivityConsumerOptions> = {},
  ): KafkaActivityConsumer {
    const created = new KafkaActivityConsumer({
      brokers: cluster.brokers,
      clientId: 'signal-test',
      groupId,
      topic,
      handler,
      logger: recordingLogger(lines),
      retry: { initialDelayMs: 50, maxDelayMs: 200 },
      // The mock completes a rebalance only after a session timeout; keep it short.
      sessionTimeoutMs: 6_000,
      heartbeatIntervalMs: 500,
      // Short fetch polls: readiness (first fetch after the join) comes quickly.
      maxWaitTimeMs: 200,
      ...extra,
    });
    consumers.push(created);
    return created;
  }

  /** Produces to partition 0 (one partition keeps the order observable); returns the first offset. */
  async function produce(topic: string, values: string[], extra: { key?: string; headers?: Record<string, string> } = {}): Promise<bigint> {
    const [written] = await feeder.send({
      topic,
      acks: -1,
      messages: values.map((value) => ({ partition: 0, value, key: extra.key ?? null, headers: extra.headers })),
    });
    return BigInt(written?.baseOffset ?? '-1');
  }

  async function committed(groupId: string, topic: string): Promise<string> {
    const [offsets] = await admin.fetchOffsets({ groupId, topics: [topic] });
    return offsets?.partitions.find((entry) => entry.partition === 0)?.offset ?? 'missing';
  }

  async function ready(subject: KafkaActivityConsumer): Promise<void> {
    await waitFor(() => subject.health().ready, 20_000, `kafka consumer ready (last: ${JSON.stringify(subject.health())})`);
  }

  const messageLines = (lines: LogLine[], outcome: string): LogLine[] => lines.filter((line) => line.fields.outcome === outcome);

  it('processes messages of a partition in order and commits them', async () => {
    const { topic, groupId } = names();
    const lines: LogLine[] = [];
    const handler = new ScriptedHandler(new Map());
    const subject = consumer(topic, groupId, handler, lines);
    expect(subject.health()).toMatchObject({ name: 'kafka', ready: false });
    await subject.start();
    await ready(subject);

    const base = await produce(topic, ['m1', 'm2', 'm3']);
    await waitFor(() => subject.stats().lastCommittedOffset[0] === String(base + 3n), 10_000, 'three commits');

    expect(handler.values()).toEqual(['m1', 'm2', 'm3']);
    expect(handler.deliveries.map((delivery) => delivery.meta.offset)).toEqual([base, base + 1n, base + 2n].map(String));
    expect(await committed(groupId, topic)).toBe(String(base + 3n));
    expect(subject.stats()).toMatchObject({ processed: 3, poison: 0, failures: 0 });
    expect(messageLines(lines, 'processed').map((line) => [line.fields.topic, line.fields.partition, line.fields.offset])).toEqual(
      [base, base + 1n, base + 2n].map((offset) => [topic, 0, String(offset)]),
    );
    const join = lines.find((line) => line.message.includes('joined the group'));
    expect(join?.fields.assignment).toMatchObject({ [topic]: expect.arrayContaining([0]) });
    expect(subject.health()).toEqual({ name: 'kafka', ready: true });

    await subject.close();
    expect(subject.health()).toMatchObject({ ready: false, detail: 'closed' });
    expect(lines.some((line) => line.message.includes('left the group'))).toBe(true);
    expect(lines.some((line) => line.message.includes('disconnected from the brokers'))).toBe(true);
  });

  it('starts from the latest offset when the group has none: earlier messages are not processed', async () => {
    const { topic, groupId } = names();
    await produce(topic, ['before-1', 'before-2']);
    const handler = new ScriptedHandler(new Map());
    const subject = consumer(topic, groupId, handler, []);
    await subject.start();
    await ready(subject);

    const base = await produce(topic, ['after']);
    await waitFor(() => subject.stats().lastCommittedOffset[0] === String(base + 1n), 10_000, 'the new message committed');
    await settle(300);
    expect(handler.values()).toEqual(['after']);
  });

  it('redelivers an uncommitted message to the next member of the group; the idempotent effect lands once', async () => {
    const { topic, groupId } = names();
    const rows = new Map<string, number>();
    // The first member writes the row for r2, then "loses the acknowledgement"
    // and keeps retrying with a long backoff until it is closed.
    const first = new ScriptedHandler(
      rows,
      async (value) => {
        if (value === 'r2') throw new SignalError('ERR_DB_TIMEOUT', 'acknowledgement lost');
        return { outcome: 'processed' };
      },
      true,
    );
    const firstLines: LogLine[] = [];
    const a = consumer(topic, groupId, first, firstLines, { retry: { initialDelayMs: 30_000, maxDelayMs: 30_000 } });
    await a.start();
    await ready(a);
    const base = await produce(topic, ['r1', 'r2']);
    await waitFor(() => first.values().includes('r2') && a.stats().failures === 1, 10_000, 'r2 failing on the first member');
    expect(a.stats().lastCommittedOffset[0]).toBe(String(base + 1n));

    const closing = Date.now();
    await a.close();
    // The 30 s backoff was abandoned, not waited out.
    expect(Date.now() - closing).toBeLessThan(5_000);
    expect(await committed(groupId, topic)).toBe(String(base + 1n));
    expect(messageLines(firstLines, 'abandoned').map((line) => line.fields.offset)).toEqual([String(base + 1n)]);

    const second = new ScriptedHandler(rows);
    const b = consumer(topic, groupId, second, []);
    await b.start();
    await waitFor(() => b.stats().lastCommittedOffset[0] === String(base + 2n), 20_000, 'r2 committed by the second member');

    expect(second.values()).toEqual(['r2']);
    expect(second.deliveries[0]?.meta.offset).toBe(String(base + 1n));
    expect([...rows.keys()]).toEqual(['r1', 'r2']);
    expect(await committed(groupId, topic)).toBe(String(base + 2n));
  });

  it('parks a poison message on the DLQ with its reason and origin, then goes on', async () => {
    const { topic, groupId } = names();
    const lines: LogLine[] = [];
    const handler = new ScriptedHandler(new Map(), async (value) =>
      value === '{not json' ? { outcome: 'poison', reason: 'value is not JSON' } : { outcome: 'processed' },
    );
    const subject = consumer(topic, groupId, handler, lines);
    await subject.start();
    await ready(subject);

    const base = await produce(topic, ['{not json'], { key: 'k-bad', headers: { 'trace-id': 't-1' } });
    await produce(topic, ['good']);
    await waitFor(() => subject.stats().lastCommittedOffset[0] === String(base + 2n), 10_000, 'both messages committed');
    expect(handler.values()).toEqual(['{not json', 'good']);
    expect(subject.stats()).toMatchObject({ processed: 1, poison: 1, failures: 0 });
    const warning = lines.find((line) => line.fields.outcome === 'poison');
    expect(warning).toMatchObject({ level: 'warn', fields: { topic, partition: 0, offset: String(base), reason: 'value is not JSON' } });

    const parked = await readAll(`${topic}.dlq`, 1);
    expect(parked).toHaveLength(1);
    const [message] = parked;
    expect(message?.value?.toString()).toBe('{not json');
    expect(message?.key?.toString()).toBe('k-bad');
    const headers = Object.fromEntries(Object.entries(message?.headers ?? {}).map(([name, value]) => [name, String(value)]));
    expect(headers).toEqual({
      'trace-id': 't-1',
      [DLQ_HEADERS.reason]: 'value is not JSON',
      [DLQ_HEADERS.sourceTopic]: topic,
      [DLQ_HEADERS.sourcePartition]: '0',
      [DLQ_HEADERS.sourceOffset]: String(base),
    });
  });

  it('retries a transient failure on the same message without committing, and reports not ready meanwhile', async () => {
    const { topic, groupId } = names();
    const seen: Array<{ call: number; health: DependencyHealth; committed: string }> = [];
    let current: KafkaActivityConsumer | undefined;
    const handler = new ScriptedHandler(new Map(), async (value, _meta, call) => {
      if (value !== 'flaky') return { outcome: 'processed' };
      seen.push({ call, health: current?.health() as DependencyHealth, committed: await committed(groupId, topic) });
      if (call <= 2) throw new SignalError('ERR_DB_UNAVAILABLE', 'database is down');
      return { outcome: 'processed' };
    });
    const lines: LogLine[] = [];
    const subject = consumer(topic, groupId, handler, lines);
    current = subject;
    await subject.start();
    await ready(subject);

    const base = await produce(topic, ['warm-up', 'flaky', 'after']);
    await waitFor(() => subject.stats().lastCommittedOffset[0] === String(base + 3n), 10_000, 'all three committed');

    expect(handler.values()).toEqual(['warm-up', 'flaky', 'flaky', 'flaky', 'after']);
    expect(seen.map((entry) => entry.call)).toEqual([1, 2, 3]);
    expect(seen[0]?.health.ready).toBe(true);
    for (const entry of seen.slice(1)) {
      expect(entry.health).toEqual({ name: 'kafka', ready: false, detail: 'processing failing: ERR_DB_UNAVAILABLE' });
    }
    // Never past the failing message. Its first attempt comes straight after
    // 'warm-up' in the same batch, before that batch's commit (the group's
    // offset is still the pinned start, or already 'flaky'); before each
    // retry the processed prefix is committed, so the offset sits on it.
    expect([String(base), String(base + 1n)]).toContain(seen[0]?.committed);
    expect(seen.slice(1).map((entry) => entry.committed)).toEqual([String(base + 1n), String(base + 1n)]);
    expect(handler.rows.size).toBe(3);
    expect(subject.stats()).toMatchObject({ processed: 3, failures: 2 });
    expect(messageLines(lines, 'processed').filter((line) => line.fields.offset === String(base + 1n))).toHaveLength(1);
    const retries = lines.filter((line) => line.message.includes('retrying the same message'));
    expect(retries.map((line) => [line.level, line.fields.code, line.fields.offset])).toEqual([
      ['warn', 'ERR_DB_UNAVAILABLE', String(base + 1n)],
      ['warn', 'ERR_DB_UNAVAILABLE', String(base + 1n)],
    ]);
    expect(subject.health()).toEqual({ name: 'kafka', ready: true });
  });

  it('keeps its group session alive while one message is retried for longer than the session timeout', async () => {
    const { topic, groupId } = names();
    const lines: LogLine[] = [];
    let failUntil = Number.POSITIVE_INFINITY;
    const handler = new ScriptedHandler(new Map(), async (value) => {
      if (value === 'slow' && Date.now() < failUntil) throw new SignalError('ERR_DB_UNAVAILABLE', 'database is down');
      return { outcome: 'processed' };
    });
    const subject = consumer(topic, groupId, handler, lines, {
      sessionTimeoutMs: 3_000,
      heartbeatIntervalMs: 300,
      retry: { initialDelayMs: 1_000, maxDelayMs: 2_000 },
    });
    await subject.start();
    await ready(subject);

    const base = await produce(topic, ['slow']);
    await waitFor(() => handler.values().length >= 1, 10_000, 'first attempt');
    failUntil = Date.now() + 7_000;
    await waitFor(() => subject.stats().lastCommittedOffset[0] === String(base + 1n), 20_000, 'the message committed');

    // Two and a half session timeouts later the member is still the same one.
    const joins = lines.filter((line) => line.message.includes('joined the group'));
    expect(joins).toHaveLength(1);
    expect(lines.filter((line) => line.message.includes('rebalancing'))).toEqual([]);
    expect(messageLines(lines, 'abandoned')).toEqual([]);
    expect(subject.stats().failures).toBeGreaterThanOrEqual(3);
    expect(messageLines(lines, 'processed')).toHaveLength(1);
  });

  // 'stuck' is the group's very first message: without a committed start
  // position, the rejoin would resolve "latest" again and skip it.
  it('abandons a retry promptly when a rebalance takes the partition away, without committing', async () => {
    const { topic, groupId } = names();
    const rows = new Map<string, number>();
    let databaseDown = true;
    const decide = async (value: string): Promise<HandleResult> => {
      if (value === 'stuck' && databaseDown) throw new SignalError('ERR_DB_UNAVAILABLE', 'database is down');
      return { outcome: 'processed' };
    };
    const firstLines: LogLine[] = [];
    const a = consumer(topic, groupId, new ScriptedHandler(rows, decide), firstLines, {
      retry: { initialDelayMs: 30_000, maxDelayMs: 30_000 },
    });
    await a.start();
    await ready(a);
    const base = await produce(topic, ['stuck']);
    await waitFor(() => a.stats().failures === 1, 10_000, 'the message failing');

    const b = consumer(topic, groupId, new ScriptedHandler(rows, decide), []);
    const joining = Date.now();
    const bStarted = b.start();
    await waitFor(() => messageLines(firstLines, 'abandoned').length === 1, 10_000, 'the retry abandoned by the rebalance');
    // Well inside the 30 s backoff: the heartbeat noticed the rebalance.
    expect(Date.now() - joining).toBeLessThan(5_000);
    expect(await committed(groupId, topic)).not.toBe(String(base + 1n));

    databaseDown = false;
    await bStarted;
    const committedBy = (): KafkaActivityConsumer | undefined => [a, b].find((member) => member.stats().lastCommittedOffset[0] === String(base + 1n));
    await waitFor(() => committedBy() !== undefined, 30_000, 'the message committed by whichever member owns partition 0');
    expect([...rows.keys()]).toEqual(['stuck']);
    expect(await committed(groupId, topic)).toBe(String(base + 1n));
  }, 60_000);

  it('treats a failing DLQ write as transient: the poison message is neither committed nor skipped', async () => {
    const { topic, groupId } = names();
    const lines: LogLine[] = [];
    const handler = new ScriptedHandler(new Map(), async (value) =>
      value === 'poison' ? { outcome: 'poison', reason: 'fails the schema' } : { outcome: 'processed' },
    );
    // An empty topic name is refused by the producer on every attempt.
    const subject = consumer(topic, groupId, handler, lines, { dlqTopic: '' });
    await subject.start();
    await ready(subject);

    const base = await produce(topic, ['poison', 'behind']);
    await waitFor(() => subject.stats().failures >= 3, 10_000, 'three failed DLQ writes');
    expect(subject.health()).toMatchObject({ ready: false, detail: expect.stringMatching(/^processing failing: /) });
    const failures = lines.filter((line) => line.message.includes('retrying the same message'));
    expect(failures.every((line) => line.fields.stage === 'dead-letter' && line.fields.offset === String(base))).toBe(true);
    // The poison verdict is kept: the handler is not asked again for each DLQ attempt.
    expect(handler.values()).toEqual(['poison']);
    expect(subject.stats()).toMatchObject({ processed: 0, poison: 0 });
    expect(await committed(groupId, topic)).toBe(String(base));
  });

  it('closes promptly while the handler hangs, leaves the message uncommitted, and is idempotent', async () => {
    const { topic, groupId } = names();
    const lines: LogLine[] = [];
    const handler = new ScriptedHandler(new Map(), () => new Promise<HandleResult>(() => {}));
    const subject = consumer(topic, groupId, handler, lines);
    await subject.start();
    await ready(subject);
    const base = await produce(topic, ['hangs']);
    await waitFor(() => handler.values().length === 1, 10_000, 'the message handed over');

    const closing = Date.now();
    const first = subject.close();
    expect(subject.close()).toBe(first);
    await first;
    expect(Date.now() - closing).toBeLessThan(5_000);
    expect(messageLines(lines, 'abandoned').map((line) => line.fields.offset)).toEqual([String(base)]);
    expect(await committed(groupId, topic)).toBe(String(base));
    expect(subject.health()).toEqual({ name: 'kafka', ready: false, detail: 'closed' });
    await expect(subject.start()).rejects.toMatchObject({ code: 'ERR_KAFKA_CLOSED' });
  });

  /** Everything on a topic from the beginning, through a throwaway group. */
  async function readAll(topic: string, expected: number): Promise<KafkaMessage[]> {
    const reader = client.consumer({ groupId: `reader-${randomUUID().slice(0, 8)}`, maxWaitTimeInMs: 200 });
    const messages: KafkaMessage[] = [];
    await reader.connect();
    try {
      await reader.subscribe({ topic, fromBeginning: true });
      await reader.run({ eachMessage: async ({ message }) => void messages.push(message) });
      await waitFor(() => messages.length >= expected, 15_000, `${expected} message(s) on ${topic}`);
      await settle(200);
      return messages;
    } finally {
      await reader.disconnect();
    }
  }
});
