import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KafkaLagProbe } from '../../src/adapters/metrics/kafka-lag-probe.ts';
import { PrometheusMetrics } from '../../src/adapters/metrics/prometheus-metrics.ts';
import type { Logger } from '../../src/application/ports/logger.port.ts';
import { FakeKafkaBroker } from '../fixtures/fake-kafka/fake-kafka-broker.ts';
import { RawKafkaClient } from '../fixtures/fake-kafka/raw-kafka-client.ts';
import { parseExposition, total } from '../fixtures/prometheus-text.ts';

/**
 * The lag probe against a broker speaking the real protocol: high
 * watermarks from ListOffsets, the group's offsets from OffsetFetch, and
 * what the metrics make of them.
 */
interface Line {
  level: string;
  fields: Record<string, unknown>;
  message: string;
}

function capturingLogger(lines: Line[]): Logger {
  const write = (level: string) => (fields: Record<string, unknown>, message: string) => void lines.push({ level, fields, message });
  const logger: Logger = { debug: write('debug'), info: write('info'), warn: write('warn'), error: write('error'), child: () => logger };
  return logger;
}

let broker: FakeKafkaBroker;
let committer: RawKafkaClient;
const probes: KafkaLagProbe[] = [];

function probe(topic: string, groupId: string, lines: Line[] = [], brokers = [broker.brokerAddress], timeoutMs = 3_000): KafkaLagProbe {
  const created = new KafkaLagProbe({ brokers, clientId: 'lag-test', groupId, topic, dlqTopic: `${topic}.dlq`, logger: capturingLogger(lines), timeoutMs });
  probes.push(created);
  return created;
}

async function commit(groupId: string, topic: string, partition: number, offset: string): Promise<void> {
  await committer.send('OffsetCommit', 5, { groupId, groupGenerationId: -1, memberId: '', topics: [{ topic, partitions: [{ partition, offset }] }] });
}

beforeAll(async () => {
  broker = await FakeKafkaBroker.start({ log: () => undefined });
  committer = await RawKafkaClient.connect(broker.brokerAddress);
});

afterAll(async () => {
  for (const each of probes) await each.close();
  committer?.close();
  await broker?.stop();
});

describe('KafkaLagProbe', () => {
  it("reads each partition's high watermark and the group's lag; no lag where the group committed nothing", async () => {
    broker.createTopic('lag-a', 3);
    broker.produce('lag-a', [0, 0, 0, 0, 0].map((_, index) => ({ value: `m${index}`, partition: 0 })));
    broker.produce('lag-a', [{ value: 'x', partition: 1 }, { value: 'y', partition: 1 }]);
    await commit('g-a', 'lag-a', 0, '2');
    await commit('g-a', 'lag-a', 1, '2');
    const lagProbe = probe('lag-a', 'g-a');
    const before = Date.now();
    await lagProbe.probe();
    const snapshot = lagProbe.snapshot();
    expect(snapshot.lastSuccessAt).toBeGreaterThanOrEqual(before);
    expect([...snapshot.partitions].sort((a, b) => a.partition - b.partition)).toEqual([
      { topic: 'lag-a', partition: 0, logEndOffset: 5, lag: 3 },
      { topic: 'lag-a', partition: 1, logEndOffset: 2, lag: 0 },
      { topic: 'lag-a', partition: 2, logEndOffset: 0 },
    ]);
  });

  it('reports the dead-letter topic once it exists, and the gauges follow the last reading', async () => {
    broker.createTopic('lag-b', 1);
    broker.produce('lag-b', [{ value: 'a' }, { value: 'b' }]);
    await commit('g-b', 'lag-b', 0, '1');
    const lagProbe = probe('lag-b', 'g-b');
    await lagProbe.probe();
    expect(lagProbe.snapshot().partitions.map((partition) => partition.topic)).toEqual(['lag-b']);

    broker.produce('lag-b.dlq', [{ value: 'parked' }]);
    broker.produce('lag-b', [{ value: 'c' }]);
    await lagProbe.probe();
    const metrics = new PrometheusMetrics({ processMetrics: false });
    metrics.watchKafka('lag-b', () => ({ processed: 7, poison: 1, failures: 2, restarts: 0, lastCommittedOffset: { 0: '1' } }));
    metrics.watchKafkaLag(() => lagProbe.snapshot());
    const scraped = parseExposition(await metrics.render());
    expect(total(scraped, 'signal_kafka_consumer_lag', { topic: 'lag-b', partition: '0' })).toBe(2);
    expect(total(scraped, 'signal_kafka_log_end_offset', { topic: 'lag-b', partition: '0' })).toBe(3);
    expect(total(scraped, 'signal_kafka_log_end_offset', { topic: 'lag-b.dlq', partition: '0' })).toBe(1);
    expect(total(scraped, 'signal_kafka_committed_offset', { topic: 'lag-b', partition: '0' })).toBe(1);
    expect(total(scraped, 'signal_kafka_messages_processed_total', { topic: 'lag-b' })).toBe(7);
    expect(total(scraped, 'signal_kafka_messages_poison_total', { topic: 'lag-b' })).toBe(1);
    expect(total(scraped, 'signal_kafka_processing_failures_total', { topic: 'lag-b' })).toBe(2);
    expect(total(scraped, 'signal_kafka_lag_probe_success_timestamp_seconds', { topic: 'lag-b' })).toBeCloseTo(
      (lagProbe.snapshot().lastSuccessAt ?? 0) / 1000,
    );
  });

  it('keeps the last reading and logs once while the brokers are unreachable', async () => {
    const down = await FakeKafkaBroker.start({ log: () => undefined });
    down.createTopic('lag-c', 1);
    down.produce('lag-c', [{ value: 'a' }]);
    const lines: Line[] = [];
    const lagProbe = probe('lag-c', 'g-c', lines, [down.brokerAddress], 500);
    await lagProbe.probe();
    const good = lagProbe.snapshot();
    expect(good.partitions).toEqual([{ topic: 'lag-c', partition: 0, logEndOffset: 1 }]);

    await down.stop();
    await lagProbe.probe();
    await lagProbe.probe();
    expect(lagProbe.snapshot()).toBe(good);
    expect(lines.filter((line) => line.level === 'warn').map((line) => line.message)).toEqual([
      'kafka lag probe failed; lag gauges keep their last reading',
    ]);
  });
});
