import { Gauge, type Registry } from 'prom-client';
import type { KafkaConsumerStats } from '../kafka/kafka-activity-consumer.ts';
import type { KafkaLagSnapshot } from './kafka-lag-probe.ts';
import { mirroredCounter, type LabelledValue } from './mirrored-counter.ts';

/** Where the Kafka series are read from at scrape time; each absent without a consumer (or a probe). */
export interface KafkaSources {
  consumer(): { topic: string; stats: KafkaConsumerStats } | undefined;
  lag(): KafkaLagSnapshot | undefined;
}

/**
 * The consumer's own totals and committed offsets (from its stats(), read
 * when scraped) and the group's lag per partition (from the lag probe's
 * last reading). Nothing is exposed while there is no consumer.
 */
export function registerKafkaMetrics(registry: Registry, sources: KafkaSources): void {
  const stat = (pick: (stats: KafkaConsumerStats) => number) => (): LabelledValue[] => {
    const consumer = sources.consumer();
    return consumer === undefined ? [] : [[{ topic: consumer.topic }, pick(consumer.stats)]];
  };
  mirroredCounter(registry, 'signal_kafka_messages_processed_total', 'Activity events handled and committed', ['topic'], stat((s) => s.processed));
  mirroredCounter(
    registry,
    'signal_kafka_messages_poison_total',
    'Activity events parked on the dead-letter topic, then committed',
    ['topic'],
    stat((s) => s.poison),
  );
  mirroredCounter(
    registry,
    'signal_kafka_processing_failures_total',
    'Failed attempts at a message (each one retried, nothing skipped)',
    ['topic'],
    stat((s) => s.failures),
  );
  mirroredCounter(registry, 'signal_kafka_consumer_restarts_total', 'Consumer restarts after kafkajs gave up on it', ['topic'], stat((s) => s.restarts));

  new Gauge({
    name: 'signal_kafka_committed_offset',
    help: 'The offset this instance committed last, per partition (the next offset to read)',
    labelNames: ['topic', 'partition'],
    registers: [registry],
    collect() {
      this.reset();
      const consumer = sources.consumer();
      if (consumer === undefined) return;
      for (const [partition, offset] of Object.entries(consumer.stats.lastCommittedOffset)) {
        this.set({ topic: consumer.topic, partition }, Number(offset));
      }
    },
  });
  new Gauge({
    name: 'signal_kafka_log_end_offset',
    help: "Each partition's high watermark (consumed topic and dead-letter topic), from the lag probe",
    labelNames: ['topic', 'partition'],
    registers: [registry],
    collect() {
      this.reset();
      for (const partition of sources.lag()?.partitions ?? []) {
        this.set({ topic: partition.topic, partition: String(partition.partition) }, partition.logEndOffset);
      }
    },
  });
  new Gauge({
    name: 'signal_kafka_consumer_lag',
    help: "Messages between the group's committed offset and the high watermark, per partition, from the lag probe (the group's, so the same on every instance)",
    labelNames: ['topic', 'partition'],
    registers: [registry],
    collect() {
      this.reset();
      for (const partition of sources.lag()?.partitions ?? []) {
        if (partition.lag !== undefined) this.set({ topic: partition.topic, partition: String(partition.partition) }, partition.lag);
      }
    },
  });
  new Gauge({
    name: 'signal_kafka_lag_probe_success_timestamp_seconds',
    help: 'When the lag probe last read the offsets (0: never); the lag gauges are as old as this',
    labelNames: ['topic'],
    registers: [registry],
    collect() {
      this.reset();
      const consumer = sources.consumer();
      const lag = sources.lag();
      if (consumer === undefined || lag === undefined) return;
      this.set({ topic: consumer.topic }, lag.lastSuccessAt === undefined ? 0 : lag.lastSuccessAt / 1000);
    },
  });
}
