import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { KafkaActivityConsumer, type KafkaActivityConsumerOptions } from '../../src/adapters/kafka/kafka-activity-consumer.ts';
import type { ActivityBatchHandler, ActivityMessage } from '../../src/application/ports/activity-batch-handler.port.ts';
import type { ActivityHandler, HandleResult, MessageMeta } from '../../src/application/ports/activity-handler.port.ts';
import { SignalError } from '../../src/domain/errors.ts';
import { FakeKafkaBroker } from '../fixtures/fake-kafka/fake-kafka-broker.ts';
import { recordingLogger, type LogLine } from '../fixtures/recording-logger.ts';
import { waitFor } from '../fixtures/wait-for.ts';

/**
 * When KafkaActivityConsumer commits. The broker runs in this process, so
 * the group's committed offset can be read at the very moment the handler
 * is called: a commit ahead of a message still being handled would show.
 * Messages are appended in one go, so one fetch returns them as one batch.
 */

interface Call {
  value: string;
  offset: bigint;
  /** The group's committed offset when the handler was called. */
  committed: bigint;
}

class ObservingHandler implements ActivityHandler {
  readonly calls: Call[] = [];
  constructor(
    private readonly committed: () => bigint,
    private readonly decide: (value: string, call: number) => Promise<HandleResult> = async () => ({ outcome: 'processed' }),
  ) {}

  async handle(value: Buffer | null, meta: MessageMeta): Promise<HandleResult> {
    const text = value?.toString('utf8') ?? '';
    this.calls.push({ value: text, offset: BigInt(meta.offset), committed: this.committed() });
    return this.decide(text, this.calls.filter((call) => call.value === text).length);
  }
}

/** Also takes runs of messages (ActivityBatchHandler); records what came how. */
class RunHandler extends ObservingHandler implements ActivityBatchHandler {
  readonly runs: string[][] = [];
  constructor(
    committed: () => bigint,
    decide: (value: string, call: number) => Promise<HandleResult>,
    private readonly runFails: (values: string[]) => boolean = () => false,
  ) {
    super(committed, decide);
  }

  async handleBatch(messages: readonly ActivityMessage[]): Promise<HandleResult[]> {
    const values = messages.map(({ value }) => value?.toString('utf8') ?? '');
    this.runs.push(values);
    if (this.runFails(values)) throw new SignalError('ERR_DB_UNAVAILABLE', 'database is down');
    const results: HandleResult[] = [];
    for (const { value, meta } of messages) results.push(await this.handle(value, meta));
    return results;
  }
}

let broker: FakeKafkaBroker;
const consumers: KafkaActivityConsumer[] = [];

beforeAll(async () => {
  broker = await FakeKafkaBroker.start({ log: () => {} });
});

afterEach(async () => {
  await Promise.all(consumers.splice(0).map((consumer) => consumer.close()));
});

afterAll(async () => {
  await broker?.stop();
});

function setup(
  extra: Partial<KafkaActivityConsumerOptions> = {},
  decide?: (value: string, call: number) => Promise<HandleResult>,
  makeHandler: (committed: () => bigint) => ObservingHandler = (committed) => new ObservingHandler(committed, decide),
) {
  const id = randomUUID().slice(0, 8);
  const topic = `commits-${id}`;
  const groupId = `signal-${id}`;
  const clientId = `signal-commits-${id}`;
  broker.createTopic(topic, 1);
  const committed = (): bigint => BigInt(broker.committedOffset(groupId, topic, 0) ?? '-1');
  const handler = makeHandler(committed);
  const lines: LogLine[] = [];
  const consumer = new KafkaActivityConsumer({
    brokers: [broker.brokerAddress],
    clientId,
    groupId,
    topic,
    handler,
    logger: recordingLogger(lines),
    retry: { initialDelayMs: 20, maxDelayMs: 50 },
    sessionTimeoutMs: 6_000,
    heartbeatIntervalMs: 500,
    maxWaitTimeMs: 100,
    ...extra,
  });
  consumers.push(consumer);
  const start = async (): Promise<void> => {
    await consumer.start();
    await waitFor(() => consumer.health().ready, 20_000, `consumer ready (last: ${JSON.stringify(consumer.health())})`);
  };
  /** Appends the values in one go; returns the first offset. */
  const produce = (count: number): bigint => {
    const written = broker.produce(
      topic,
      Array.from({ length: count }, (_, index) => ({ value: `m${index}` })),
    );
    return BigInt(written[0]!.offset);
  };
  const commitRequests = (): number => broker.requestLog.filter((entry) => entry.clientId === clientId && entry.apiName === 'OffsetCommit').length;
  const dlq = (): string[] => (broker.partitionCount(`${topic}.dlq`) === 0 ? [] : broker.messages(`${topic}.dlq`).map((stored) => stored.value?.toString() ?? ''));
  return { consumer, handler, lines, committed, start, produce, commitRequests, dlq };
}

describe('KafkaActivityConsumer commits (fake broker)', () => {
  it('commits a batch once, after its last message, never ahead of a message being handled', async () => {
    const { consumer, handler, committed, start, produce, commitRequests } = setup({ commitEvery: { messages: 100, intervalMs: 60_000 } });
    await start();
    const base = produce(30);
    // The consumer learns of its commit when the answer arrives, after the broker stored it.
    await waitFor(() => consumer.stats().lastCommittedOffset[0] === String(base + 30n), 10_000, 'the batch committed');

    expect(committed()).toBe(base + 30n);
    expect(handler.calls.map((call) => call.offset)).toEqual(Array.from({ length: 30 }, (_, index) => base + BigInt(index)));
    // Only the start was pinned while the batch was handled.
    expect(handler.calls.every((call) => call.committed === base)).toBe(true);
    // The pin, then the batch.
    expect(commitRequests()).toBe(2);
    expect(consumer.stats()).toMatchObject({ processed: 30, failures: 0 });
  });

  it('commits every N messages inside a long batch', async () => {
    const { handler, committed, start, produce, commitRequests } = setup({ commitEvery: { messages: 10, intervalMs: 60_000 } });
    await start();
    const base = produce(30);
    await waitFor(() => committed() === base + 30n, 10_000, 'the batch committed');

    expect(handler.calls.map((call) => call.committed - base)).toEqual(Array.from({ length: 30 }, (_, index) => BigInt(10 * Math.floor(index / 10))));
    // The pin, then one commit per ten messages; nothing was left for the end of the batch.
    expect(commitRequests()).toBe(4);
  });

  it('commits what was processed before a failing message, retries it without passing it, then goes on', async () => {
    const { consumer, handler, lines, committed, start, produce } = setup({}, async (value, call) => {
      if (value === 'm5' && call <= 2) throw new SignalError('ERR_DB_UNAVAILABLE', 'database is down');
      return { outcome: 'processed' };
    });
    await start();
    const base = produce(10);
    await waitFor(() => committed() === base + 10n, 10_000, 'everything committed');

    const attempts = handler.calls.filter((call) => call.value === 'm5');
    expect(attempts).toHaveLength(3);
    expect(attempts[0]!.committed).toBe(base);
    expect(attempts.slice(1).map((call) => call.committed)).toEqual([base + 5n, base + 5n]);
    expect(handler.calls.every((call) => call.committed <= call.offset)).toBe(true);
    expect(handler.calls.map((call) => call.value)).toEqual(['m0', 'm1', 'm2', 'm3', 'm4', 'm5', 'm5', 'm5', 'm6', 'm7', 'm8', 'm9']);
    expect(consumer.stats()).toMatchObject({ processed: 10, failures: 2 });
    const processed = lines.filter((line) => line.fields.outcome === 'processed').map((line) => line.fields.offset);
    expect(processed).toEqual(Array.from({ length: 10 }, (_, index) => String(base + BigInt(index))));
  });

  it('on close in the middle of a batch, commits the messages it finished and leaves the one in progress', async () => {
    const { handler, lines, committed, start, produce, consumer } = setup({}, (value) =>
      value === 'm4' ? new Promise<HandleResult>(() => {}) : Promise.resolve({ outcome: 'processed' }),
    );
    await start();
    const base = produce(10);
    await waitFor(() => handler.calls.some((call) => call.value === 'm4'), 10_000, 'm4 handed over');
    expect(committed()).toBe(base);

    await consumer.close();
    expect(committed()).toBe(base + 4n);
    expect(handler.calls.map((call) => call.value)).toEqual(['m0', 'm1', 'm2', 'm3', 'm4']);
    expect(lines.filter((line) => line.fields.outcome === 'abandoned').map((line) => line.fields.offset)).toEqual([String(base + 4n)]);
  });

  it('hands runs of messages to a handler that takes several, after pinning the start with the first; parks the poison ones among them', async () => {
    const poison = async (value: string): Promise<HandleResult> =>
      value === 'm3' || value === 'm8' ? { outcome: 'poison', reason: 'fails the schema' } : { outcome: 'processed' };
    let runs: string[][] = [];
    const { handler, lines, committed, start, produce, dlq, commitRequests } = setup({ maxMessagesPerCall: 4, commitEvery: { messages: 100, intervalMs: 60_000 } }, poison, (observe) => {
      const made = new RunHandler(observe, poison);
      runs = made.runs;
      return made;
    });
    await start();
    const base = produce(10);
    await waitFor(() => committed() === base + 10n, 10_000, 'everything committed');

    // m0 alone (it pins the start), then runs of at most 4; the last one, m9 alone, through handle.
    expect(runs).toEqual([
      ['m1', 'm2', 'm3', 'm4'],
      ['m5', 'm6', 'm7', 'm8'],
    ]);
    expect(handler.calls.map((call) => call.value)).toEqual(['m0', 'm1', 'm2', 'm3', 'm4', 'm5', 'm6', 'm7', 'm8', 'm9']);
    expect(handler.calls.every((call) => call.committed === base)).toBe(true);
    expect(dlq()).toEqual(['m3', 'm8']);
    const outcomes = lines.filter((line) => line.fields.outcome !== undefined).map((line) => `${BigInt(String(line.fields.offset)) - base} ${String(line.fields.outcome)}`);
    expect(outcomes).toEqual(['0 processed', '1 processed', '2 processed', '3 poison', '4 processed', '5 processed', '6 processed', '7 processed', '8 poison', '9 processed']);
    // The pin, then the end of the batch.
    expect(commitRequests()).toBe(2);
  });

  it('when a run fails, handles its messages one by one, retrying only the failing one, never committing past it', async () => {
    const decide = async (value: string, call: number): Promise<HandleResult> => {
      if (value === 'm5' && call <= 2) throw new SignalError('ERR_DB_UNAVAILABLE', 'database is down');
      return { outcome: 'processed' };
    };
    let runs: string[][] = [];
    const { consumer, handler, lines, committed, start, produce } = setup({}, decide, (observe) => {
      const made = new RunHandler(observe, decide, (values) => values.includes('m5'));
      runs = made.runs;
      return made;
    });
    await start();
    const base = produce(10);
    await waitFor(() => committed() === base + 10n, 10_000, 'everything committed');

    expect(runs).toEqual([['m1', 'm2', 'm3', 'm4', 'm5', 'm6', 'm7', 'm8', 'm9']]);
    expect(handler.calls.map((call) => call.value)).toEqual(['m0', 'm1', 'm2', 'm3', 'm4', 'm5', 'm5', 'm5', 'm6', 'm7', 'm8', 'm9']);
    const m5 = handler.calls.filter((call) => call.value === 'm5');
    expect(m5.slice(1).map((call) => call.committed)).toEqual([base + 5n, base + 5n]);
    expect(handler.calls.every((call) => call.committed <= call.offset)).toBe(true);
    expect(lines.filter((line) => line.message.includes('failed together')).map((line) => line.fields.offset)).toEqual([String(base + 1n)]);
    expect(lines.filter((line) => line.message.includes('retrying the same message')).map((line) => line.fields.offset)).toEqual([
      String(base + 5n),
      String(base + 5n),
    ]);
    expect(lines.filter((line) => line.fields.outcome === 'processed')).toHaveLength(10);
    expect(consumer.stats()).toMatchObject({ processed: 10, failures: 3 });
  });
});
