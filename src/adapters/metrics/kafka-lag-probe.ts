import kafkajs from 'kafkajs';
import type { Admin, SASLOptions } from 'kafkajs';
import type { Logger } from '../../application/ports/logger.port.ts';

const { Kafka, logLevel } = kafkajs;

export interface KafkaLagProbeOptions {
  brokers: string[];
  clientId: string;
  groupId: string;
  /** The consumed topic: its lag is the group's committed offset against the high watermark. */
  topic: string;
  /** Its high watermark is reported too (DLQ growth); absent until the first message is parked. */
  dlqTopic: string;
  ssl?: boolean;
  sasl?: { mechanism: 'plain' | 'scram-sha-256' | 'scram-sha-512'; username: string; password: string };
  logger: Logger;
  /** Default 30 s. */
  intervalMs?: number;
  /** One probe's upper bound; a slower one counts as failed. Default 5 s. */
  timeoutMs?: number;
}

export interface PartitionOffsets {
  topic: string;
  partition: number;
  /** The high watermark: the offset the next produced message will get. */
  logEndOffset: number;
  /** High watermark minus the group's committed offset; absent while the group has committed nothing. */
  lag?: number;
}

export interface KafkaLagSnapshot {
  partitions: readonly PartitionOffsets[];
  /** Epoch ms of the last successful probe; absent before the first. */
  lastSuccessAt?: number;
}

/**
 * Reads the consumer group's lag from the brokers on a timer, off the
 * request path: scraping only returns the last reading. kafkajs's consumer
 * does not expose high watermarks per message, so one admin connection asks
 * for them (ListOffsets) and for the group's committed offsets (OffsetFetch)
 * every interval — two small requests, bounded by a timeout, never
 * overlapping. The lag is the group's, not this instance's, so every
 * instance reports the same numbers; aggregate with max, not sum.
 */
export class KafkaLagProbe {
  readonly #options: KafkaLagProbeOptions;
  readonly #admin: Admin;
  readonly #intervalMs: number;
  readonly #timeoutMs: number;
  #snapshot: KafkaLagSnapshot = { partitions: [] };
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  /** The broker requests of a reading; one that outlived its timeout is waited on again, not repeated. */
  #reading: Promise<PartitionOffsets[]> | undefined;
  #connected = false;
  #failing = false;
  #closed = false;

  constructor(options: KafkaLagProbeOptions) {
    this.#options = options;
    this.#intervalMs = options.intervalMs ?? 30_000;
    this.#timeoutMs = options.timeoutMs ?? 5_000;
    const kafka = new Kafka({
      clientId: `${options.clientId}-lag-probe`,
      brokers: options.brokers,
      ssl: options.ssl ?? false,
      ...(options.sasl === undefined ? {} : { sasl: saslOptions(options.sasl) }),
      // Broker trouble is already logged by the consumer; this logs its own failures once per outage.
      logLevel: logLevel.NOTHING,
    });
    // No retries inside a probe: the next one is the retry.
    this.#admin = kafka.admin({ retry: { retries: 0 } });
  }

  snapshot(): KafkaLagSnapshot {
    return this.#snapshot;
  }

  /** Probes now, then every interval; never throws (failures are logged and retried). */
  start(): void {
    if (this.#closed || this.#timer !== undefined) return;
    void this.probe();
    this.#timer = setInterval(() => void this.probe(), this.#intervalMs);
    this.#timer.unref();
  }

  /** One reading; a call while one is running joins it. Resolves either way. */
  probe(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#running ??= this.#probeOnce().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#timer);
    await this.#running;
    if (this.#connected) await this.#admin.disconnect().catch(() => undefined);
  }

  async #probeOnce(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${this.#timeoutMs} ms`)), this.#timeoutMs);
    });
    const reading = (this.#reading ??= this.#read().finally(() => {
      this.#reading = undefined;
    }));
    try {
      const partitions = await Promise.race([reading, timeout]);
      this.#snapshot = { partitions, lastSuccessAt: Date.now() };
      if (this.#failing) this.#options.logger.info({ topic: this.#options.topic }, 'kafka lag probe recovered');
      this.#failing = false;
    } catch (error) {
      reading.catch(() => undefined);
      if (!this.#failing) {
        this.#options.logger.warn({ topic: this.#options.topic, error: describe(error) }, 'kafka lag probe failed; lag gauges keep their last reading');
      }
      this.#failing = true;
    } finally {
      clearTimeout(timer);
    }
  }

  async #read(): Promise<PartitionOffsets[]> {
    const { topic, dlqTopic, groupId } = this.#options;
    if (!this.#connected) {
      await this.#admin.connect();
      this.#connected = true;
    }
    const [high, committed] = await Promise.all([
      this.#admin.fetchTopicOffsets(topic),
      this.#admin.fetchOffsets({ groupId, topics: [topic] }),
    ]);
    const committedByPartition = new Map<number, number>();
    for (const entry of committed) {
      if (entry.topic !== topic) continue;
      for (const { partition, offset } of entry.partitions) {
        const value = Number(offset);
        // -1: the group has committed nothing on this partition.
        if (value >= 0) committedByPartition.set(partition, value);
      }
    }
    const partitions: PartitionOffsets[] = high.map(({ partition, high: end }) => {
      const logEndOffset = Number(end);
      const done = committedByPartition.get(partition);
      return done === undefined ? { topic, partition, logEndOffset } : { topic, partition, logEndOffset, lag: Math.max(0, logEndOffset - done) };
    });
    for (const { partition, high: end } of await this.#dlqOffsets(dlqTopic)) {
      partitions.push({ topic: dlqTopic, partition, logEndOffset: Number(end) });
    }
    return partitions;
  }

  /** The dead-letter topic is created by its first message; until then there is nothing to report. */
  async #dlqOffsets(dlqTopic: string): Promise<Array<{ partition: number; high: string }>> {
    try {
      return await this.#admin.fetchTopicOffsets(dlqTopic);
    } catch (error) {
      if (protocolErrorType(error) === 'UNKNOWN_TOPIC_OR_PARTITION') return [];
      throw error;
    }
  }
}

/** kafkajs types SASL as one variant per mechanism; a union-typed mechanism must be narrowed first. */
function saslOptions({ mechanism, username, password }: NonNullable<KafkaLagProbeOptions['sasl']>): SASLOptions {
  if (mechanism === 'plain') return { mechanism, username, password };
  if (mechanism === 'scram-sha-256') return { mechanism, username, password };
  return { mechanism, username, password };
}

/** kafkajs wraps the broker's error (which carries the `type`) in retry errors. */
function protocolErrorType(error: unknown): string | undefined {
  let current = error;
  for (let depth = 0; depth < 10 && current !== null && current !== undefined; depth++) {
    const type = (current as { type?: unknown }).type;
    if (typeof type === 'string') return type;
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
