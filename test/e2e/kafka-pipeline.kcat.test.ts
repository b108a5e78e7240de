import { randomUUID } from 'node:crypto';
import kafkajs from 'kafkajs';
import type { Admin, Producer } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KcatMockCluster } from '../fixtures/kcat-mock-cluster.ts';
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
  type PipelineService,
} from '../fixtures/pipeline-harness.ts';
import { settle } from '../fixtures/wait-for.ts';

/**
 * The pipeline against librdkafka's mock cluster (hosted by kcat): an
 * implementation of the Kafka protocol other than kafkajs and other than the
 * fake broker. The service runs with its production Kafka timings (none are
 * configurable): the mock answers a fetch only when its 5 s wait ends, and
 * a crashed member is replaced only after its 30 s session expires, so the
 * waits below are sized for that.
 */
const { Kafka, Partitioners, logLevel } = kafkajs;

const kcatInstalled = KcatMockCluster.available();
const title = kcatInstalled
  ? 'the Kafka pipeline, end to end, on a librdkafka mock cluster (kcat)'
  : 'the Kafka pipeline on a librdkafka mock cluster: SKIPPED because kcat is not installed (apt-get install -y kcat)';

describe.skipIf(!kcatInstalled)(title, () => {
  const suffix = randomUUID().slice(0, 8);
  // The mock creates topics on first use with 4 partitions; everything here goes to partition 0.
  const topic = `kcat-e2e-${suffix}`;
  const groupId = `signal-kcat-${suffix}`;
  let cluster: KcatMockCluster;
  let database: PipelineDatabase;
  let shared: Awaited<ReturnType<typeof sharedIssuer>>;
  let producer: Producer;
  let admin: Admin;
  const services: PipelineService[] = [];
  const recipients: Recipient[] = [];
  let first: PipelineService;

  beforeAll(async () => {
    [cluster, database, shared] = await Promise.all([KcatMockCluster.start(), PipelineDatabase.create('kafkakcat'), sharedIssuer('kafka-kcat')]);
    const kafka = new Kafka({ clientId: 'e2e-publisher', brokers: cluster.brokers, logLevel: logLevel.NOTHING });
    producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
    admin = kafka.admin();
    await Promise.all([producer.connect(), admin.connect()]);
    await database.addMembers('m-kcat', ['u-k1', 'u-k2', 'u-k3']);
    await database.addMembers('m-kcat-other', ['u-kx']);
  });

  afterAll(async () => {
    for (const recipient of recipients) recipient.close();
    await killAll(services);
    await producer?.disconnect();
    await admin?.disconnect();
    await cluster?.stop();
    await database?.close();
    shared?.remove();
  });

  async function launch(name: string, nodeId: number): Promise<PipelineService> {
    const service = await startPipelineService({
      name,
      brokers: cluster.brokers,
      topic,
      groupId,
      databaseUrl: database.url,
      dataDir: shared.dataDir,
      nodeId,
    });
    services.push(service);
    return service;
  }

  /** Ready means: database reachable, group joined, first fetch done (start offsets resolved). */
  async function ready(service: PipelineService, timeoutMs: number): Promise<void> {
    let last: unknown;
    await pollUntil(
      async () => {
        const answer = await readiness(service);
        last = answer.body;
        return answer.status === 200;
      },
      { timeoutMs, intervalMs: 100, description: `${service.name} ready` },
    ).catch((error: Error) => {
      throw new Error(`${error.message}: ${JSON.stringify(last)}\n${service.tail()}`);
    });
  }

  async function send(values: unknown[]): Promise<bigint> {
    const [written] = await producer.send({
      topic,
      acks: -1,
      messages: values.map((value) => ({ partition: 0, value: JSON.stringify(value) })),
    });
    return BigInt(written?.baseOffset ?? '-1');
  }

  async function committed(): Promise<bigint> {
    const [offsets] = await admin.fetchOffsets({ groupId, topics: [topic] });
    return BigInt(offsets?.partitions.find((entry) => entry.partition === 0)?.offset ?? '-1');
  }

  async function connect(service: PipelineService, userId: string): Promise<Recipient> {
    const recipient = await Recipient.connect(service, shared.issuer, userId);
    recipients.push(recipient);
    return recipient;
  }

  it('takes an event from the topic to 3 rows, an encrypted push and the inbox; earlier events and non-members get nothing', async () => {
    // Published before the group ever joined: a new group starts at the end.
    await send([merchantEvent('ev-k-early', 'm-kcat')]);
    first = await launch('kcat-1', 201);
    await ready(first, 40_000);
    const member = await connect(first, 'u-k1');
    const outsider = await connect(first, 'u-kx');

    const offset = await send([merchantEvent('ev-k-1', 'm-kcat')]);
    await pollUntil(async () => (await database.completeEvents(['ev-k-1'], 3)) === 1, { timeoutMs: 20_000, description: '3 rows for ev-k-1' });
    const rows = await database.rows(['ev-k-1']);
    expect(rows.map((row) => row.recipientId).sort()).toEqual(['u-k1', 'u-k2', 'u-k3']);

    await pollUntil(() => member.pushes.length === 1, { timeoutMs: 5_000, description: 'the push to u-k1' });
    const push = member.messages.find((message) => message.event === PUSH_EVENT);
    expect(member.raw.frames.filter((frame) => frame.event !== 'connected').every((frame) => frame.event === 'encrypted')).toBe(true);
    expect(push?.data).toMatchObject({ recipientId: 'u-k1', type: 'PAYMENT_SUCCESS', isRead: false });
    expect(push?.data.id).toBe(rows.find((row) => row.recipientId === 'u-k1')?.id);

    const inbox = await restGet(first, shared.issuer, '/notifications', 'u-k1');
    expect(inbox.status).toBe(200);
    expect(inbox.body.items.map((item: { id: string }) => item.id)).toEqual([push?.data.id]);

    await pollUntil(async () => (await committed()) === offset + 1n, { timeoutMs: 10_000, description: 'ev-k-1 committed' });
    await settle(200);
    expect(outsider.messages).toEqual([]);
    expect(await database.countsByEvent(['ev-k-early'])).toEqual(new Map());
  }, 90_000);

  it('redelivers what a killed process stored but did not commit; the restart creates no duplicate row and pushes nothing twice', async () => {
    expect(first, 'needs the process of the first test').toBeDefined();
    const onFirst = await connect(first, 'u-k1');
    const total = 60;
    const eventIds = Array.from({ length: total }, (_, index) => `ev-k-crash-${index}`);
    // A stream, a few events at a time: the process goes through many
    // batches (the events it fetched together are stored together and
    // committed after), so there are many moments to freeze it in.
    const base = await send(eventIds.slice(0, 4).map((eventId) => merchantEvent(eventId, 'm-kcat')));
    const streaming = (async () => {
      for (let index = 4; index < total; index += 2) {
        await send(eventIds.slice(index, index + 2).map((eventId) => merchantEvent(eventId, 'm-kcat')));
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    })();
    const end = base + BigInt(total);
    /** Events at or past the committed offset that already have rows. */
    const uncommittedWithRows = async (): Promise<{ at: bigint; pending: string[] }> => {
      const counts = await database.countsByEvent(eventIds);
      const at = await committed();
      return { at, pending: eventIds.filter((eventId, index) => base + BigInt(index) >= at && counts.has(eventId)) };
    };

    await pollUntil(async () => (await committed()) >= base + 10n, { timeoutMs: 20_000, intervalMs: 10, description: 'ten events committed' });
    // Freeze the process at arbitrary points until it is caught between
    // storing an event's rows and committing its offset, then kill it there.
    const pid = first.child.pid!;
    let attempts = 0;
    for (; attempts < 60; attempts++) {
      process.kill(pid, 'SIGSTOP');
      const state = await uncommittedWithRows();
      if (state.pending.length > 0 || state.at >= end - 5n) break;
      process.kill(pid, 'SIGCONT');
      await new Promise((resolve) => setTimeout(resolve, attempts % 3));
    }
    first.child.kill('SIGKILL');
    await streaming;
    expect((await first.exited).signal).toBe('SIGKILL');
    await settle(300); // a commit sent just before the freeze has landed by now
    const { at: committedAtKill, pending } = await uncommittedWithRows();
    expect(committedAtKill, 'killed before the end of the stream').toBeLessThan(end);
    expect(pending.length, `caught between rows and commit (after ${attempts} freezes)`).toBeGreaterThan(0);

    const second = await launch('kcat-2', 202);
    const onSecond = await connect(second, 'u-k1');
    // The dead member holds partition 0 until its 30 s session expires.
    await pollUntil(async () => (await committed()) === end, { timeoutMs: 75_000, intervalMs: 250, description: 'every event committed by the second process' });

    const counts = await database.countsByEvent(eventIds);
    expect(eventIds.filter((eventId) => counts.get(eventId) !== 3)).toEqual([]);
    expect(await database.duplicatePairs(eventIds)).toEqual([]);
    const rows = await database.rows(eventIds);
    expect(rows).toHaveLength(3 * total);

    await pollUntil(() => second.outcomes('processed').length > 0, { description: 'the processed lines of the second process' });
    expect(second.outcomes('processed', 0)[0]).toBe(String(committedAtKill));
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

    const mine = rows.filter((row) => row.recipientId === 'u-k1');
    const createdBySecond = mine.filter((row) => snowflakeNode(row.id) === second.nodeId).map((row) => row.id);
    await pollUntil(() => onSecond.pushes.length >= createdBySecond.length, { timeoutMs: 5_000, description: 'the pushes of the second process' });
    await settle(200);
    expect(onSecond.pushes.map((push) => push.id).sort()).toEqual([...createdBySecond].sort());
    const firstEvents = new Set(onFirst.pushes.map((push) => push.eventId));
    expect(onSecond.pushes.filter((push) => firstEvents.has(push.eventId))).toEqual([]);
  }, 110_000);
});
