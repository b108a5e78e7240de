import kafkajs from 'kafkajs';
import type { Consumer, EachBatchPayload, IHeaders, KafkaMessage, LogEntry, Producer, SASLOptions } from 'kafkajs';
import { handlesBatches, type ActivityBatchHandler } from '../../application/ports/activity-batch-handler.port.ts';
import type { ActivityHandler, HandleResult, MessageMeta } from '../../application/ports/activity-handler.port.ts';
import type { Closeable, DependencyHealth, HealthReporter } from '../../application/ports/lifecycle.port.ts';
import type { Logger } from '../../application/ports/logger.port.ts';
import { SignalError } from '../../domain/errors.ts';

// kafkajs is CommonJS; its error classes are not visible as ESM named exports.
const { Kafka, Partitioners, KafkaJSError, logLevel } = kafkajs;

export interface KafkaActivityConsumerOptions {
  brokers: string[];
  clientId: string;
  groupId: string;
  topic: string;
  ssl?: boolean;
  sasl?: { mechanism: 'plain' | 'scram-sha-256' | 'scram-sha-512'; username: string; password: string };
  handler: ActivityHandler;
  logger: Logger;
  /** Backoff for a failing message (and for restarting a dead consumer). */
  retry?: { initialDelayMs?: number; maxDelayMs?: number };
  sessionTimeoutMs?: number;
  heartbeatIntervalMs?: number;
  rebalanceTimeoutMs?: number;
  /** Default `<topic>.dlq`. */
  dlqTopic?: string;
  /** Partitions handled at once; messages of one partition are always one at a time, in order. Default 1. */
  partitionsConsumedConcurrently?: number;
  /** How long one fetch waits on the broker for new data. Default 5000 (kafkajs's). */
  maxWaitTimeMs?: number;
  /** Upper bound on close(). Default 10000. */
  closeTimeoutMs?: number;
  /**
   * Offsets are committed at the end of every fetched batch and, inside a
   * long batch, once this many messages were processed or this much time
   * passed since the last commit, whichever comes first. Default 100
   * messages / 1000 ms. Whatever the setting, a commit never passes a
   * message that is not fully processed.
   */
  commitEvery?: { messages?: number; intervalMs?: number };
  /**
   * At most this many consecutive messages of a partition are handed over
   * in one call when the handler can take several (ActivityBatchHandler).
   * Default 100; 1 hands every message over on its own.
   */
  maxMessagesPerCall?: number;
}

export interface KafkaConsumerStats {
  processed: number;
  poison: number;
  /** Failed attempts (handler rejections, DLQ or commit failures); each was retried. */
  failures: number;
  /** Restarts this adapter made after kafkajs gave up on the consumer. */
  restarts: number;
  /** Per partition, the offset committed last (Kafka's convention: the next offset to read). */
  lastCommittedOffset: Record<number, string>;
}

export const DLQ_HEADERS = {
  reason: 'x-signal-dlq-reason',
  sourceTopic: 'x-signal-source-topic',
  sourcePartition: 'x-signal-source-partition',
  sourceOffset: 'x-signal-source-offset',
} as const;

/** Commit or heartbeat errors meaning this member lost (or is losing) its partitions. */
const MEMBERSHIP_ERRORS = new Set(['REBALANCE_IN_PROGRESS', 'NOT_COORDINATOR_FOR_GROUP', 'ILLEGAL_GENERATION', 'UNKNOWN_MEMBER_ID']);
const MAX_REASON_CHARS = 1_000;
/** How long an abandoned batch may spend committing what it did finish. */
const FINAL_COMMIT_TIMEOUT_MS = 1_000;

interface Progress {
  attempts: number;
}

/**
 * The processed but not yet committed end of one partition's batch:
 * `offset` is the next offset to read (Kafka's commit convention), set only
 * once every message before it was processed or parked.
 */
interface PendingCommit {
  topic: string;
  partition: number;
  offset: string | undefined;
  /** The last processed message's offset, for the log lines. */
  lastProcessed: string | undefined;
  count: number;
  lastCommitAt: number;
}

/**
 * Feeds the activity topic to an ActivityHandler with at-least-once delivery
 * and no skipping. Messages of a partition are handled one at a time, in
 * order, batch by batch; offsets are committed by hand, only up to the end
 * of the processed prefix of a batch (every message before it processed or
 * parked on the dead-letter topic): at the end of each batch, every
 * `commitEvery` messages or milliseconds inside a long one, and before a
 * failing message is retried, so the group's offset then sits exactly on
 * it. A transient failure is retried inside eachBatch, so kafkajs never
 * moves past it; the session is kept alive meanwhile, and the retry is
 * abandoned (uncommitted, to be redelivered) on shutdown or when a
 * rebalance takes the partition away. Messages processed but not yet
 * committed when that happens are redelivered too; the handler is
 * idempotent. A group with no committed offset starts at the end; the first
 * message handled on a partition pins that start by committing its own
 * offset, so a rebalance or crash cannot move the start past it.
 */
export class KafkaActivityConsumer implements Closeable, HealthReporter {
  readonly #options: KafkaActivityConsumerOptions;
  readonly #logger: Logger;
  readonly #consumer: Consumer;
  readonly #producer: Producer;
  readonly #dlqTopic: string;
  readonly #initialDelayMs: number;
  readonly #maxDelayMs: number;
  readonly #heartbeatIntervalMs: number;
  readonly #commitEveryMessages: number;
  readonly #commitIntervalMs: number;
  readonly #maxMessagesPerCall: number;
  readonly #shutdown = new AbortController();
  readonly #failing = new Map<number, string>();
  /** Partitions whose start position was committed in the current generation. */
  readonly #pinned = new Set<number>();
  readonly #stats: KafkaConsumerStats = { processed: 0, poison: 0, failures: 0, restarts: 0, lastCommittedOffset: {} };

  #starting: Promise<void> | undefined;
  #restarting: Promise<void> | undefined;
  #restartTimer: NodeJS.Timeout | undefined;
  #restartAttempt = 0;
  #closing: Promise<void> | undefined;
  #connected = false;
  #joined = false;
  /** Set by the first fetch after a join: only then are the start offsets resolved. */
  #positioned = false;
  #producerConnected = false;
  #crash: string | undefined;

  constructor(options: KafkaActivityConsumerOptions) {
    this.#options = options;
    this.#logger = options.logger.child({ component: 'kafka-consumer' });
    this.#dlqTopic = options.dlqTopic ?? `${options.topic}.dlq`;
    this.#initialDelayMs = options.retry?.initialDelayMs ?? 200;
    this.#maxDelayMs = options.retry?.maxDelayMs ?? 10_000;
    this.#heartbeatIntervalMs = options.heartbeatIntervalMs ?? 3_000;
    this.#commitEveryMessages = Math.max(1, options.commitEvery?.messages ?? 100);
    this.#commitIntervalMs = Math.max(0, options.commitEvery?.intervalMs ?? 1_000);
    this.#maxMessagesPerCall = Math.max(1, Math.floor(options.maxMessagesPerCall ?? 100));
    const kafka = new Kafka({
      clientId: options.clientId,
      brokers: options.brokers,
      ssl: options.ssl ?? false,
      ...(options.sasl === undefined ? {} : { sasl: saslOptions(options.sasl) }),
      logLevel: logLevel.WARN,
      logCreator: () => (entry) => this.#kafkajsLog(entry),
    });
    this.#consumer = kafka.consumer({
      groupId: options.groupId,
      sessionTimeout: options.sessionTimeoutMs ?? 30_000,
      heartbeatInterval: this.#heartbeatIntervalMs,
      rebalanceTimeout: options.rebalanceTimeoutMs ?? 60_000,
      maxWaitTimeInMs: options.maxWaitTimeMs ?? 5_000,
    });
    this.#producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner, allowAutoTopicCreation: true });
    this.#watch();
  }

  /** Connects, joins the group and starts consuming; resolves once the first join finished (or crashed). */
  start(): Promise<void> {
    if (this.#closing !== undefined) return Promise.reject(new SignalError('ERR_KAFKA_CLOSED', 'kafka consumer is closed'));
    this.#starting ??= this.#startOnce();
    return this.#starting;
  }

  health(): DependencyHealth {
    const not = (detail: string): DependencyHealth => ({ name: 'kafka', ready: false, detail });
    if (this.#closing !== undefined) return not('closed');
    if (this.#starting === undefined) return not('not started');
    if (this.#crash !== undefined) return not(`consumer crashed: ${this.#crash}; restarting`);
    if (!this.#connected) return not('not connected to the brokers');
    if (!this.#joined) return not('joining the consumer group');
    if (!this.#positioned) return not('waiting for the first fetch');
    const failing = this.#failing.values().next();
    if (failing.done !== true) return not(`processing failing: ${failing.value}`);
    return { name: 'kafka', ready: true };
  }

  stats(): KafkaConsumerStats {
    return { ...this.#stats, lastCommittedOffset: { ...this.#stats.lastCommittedOffset } };
  }

  close(): Promise<void> {
    this.#closing ??= this.#closeOnce();
    return this.#closing;
  }

  async #startOnce(): Promise<void> {
    const { topic } = this.#options;
    try {
      await this.#producer.connect();
      await this.#consumer.connect();
      await this.#consumer.subscribe({ topic, fromBeginning: false });
    } catch (error) {
      await Promise.allSettled([this.#consumer.disconnect(), this.#producer.disconnect()]);
      throw new SignalError('ERR_KAFKA_UNAVAILABLE', `kafka: cannot connect: ${describe(error)}`, { cause: error });
    }
    await this.#run();
  }

  #run(): Promise<void> {
    return this.#consumer.run({
      autoCommit: false,
      // Offsets are resolved one by one as messages finish, so a batch left
      // half done is fetched again from its first unfinished message.
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: this.#options.partitionsConsumedConcurrently ?? 1,
      eachBatch: (payload) => this.#onBatch(payload),
    });
  }

  async #onBatch({ batch, resolveOffset, heartbeat, isRunning, isStale }: EachBatchPayload): Promise<void> {
    const { topic, partition } = batch;
    const abort = new AbortController();
    const onShutdown = (): void =>
      abort.abort(new KafkaJSError('kafka consumer is closing; message left uncommitted', { retriable: true }));
    if (this.#shutdown.signal.aborted) onShutdown();
    this.#shutdown.signal.addEventListener('abort', onShutdown, { once: true });
    // A batch (and a message's retries) blocks kafkajs's own heartbeats; a
    // long one must not let the session expire and trigger a rebalance. A
    // failing heartbeat (rebalance, lost membership) ends the batch's turn.
    let beating = false;
    const keepAlive = setInterval(() => {
      if (beating || abort.signal.aborted) return;
      beating = true;
      heartbeat().then(
        () => (beating = false),
        (error: unknown) => abort.abort(rootCause(error)),
      );
    }, this.#heartbeatIntervalMs);

    const pending: PendingCommit = { topic, partition, offset: undefined, lastProcessed: undefined, count: 0, lastCommitAt: Date.now() };
    let stopping = false;
    const { handler } = this.#options;
    const { messages } = batch;
    try {
      for (let index = 0; index < messages.length; ) {
        if (!isRunning() || isStale()) {
          stopping = true;
          break;
        }
        abort.signal.throwIfAborted();
        // Once the partition's start is pinned, a handler that can takes a
        // run of messages at once; its verdicts are then parked and
        // committed message by message, exactly as if handled one by one.
        const together = handlesBatches(handler) && this.#pinned.has(partition) ? this.#maxMessagesPerCall : 1;
        const run = messages.slice(index, index + together).map((message) => ({ message, meta: metaOf(topic, partition, message) }));
        const startedAt = Date.now();
        const results = run.length > 1 && handlesBatches(handler) ? await this.#handleRun(handler, run, abort.signal) : undefined;
        for (const [position, { message, meta }] of run.entries()) {
          await this.#onMessage(message, meta, abort.signal, pending, results?.[position], startedAt);
          resolveOffset(message.offset);
          pending.offset = (BigInt(message.offset) + 1n).toString();
          pending.lastProcessed = message.offset;
          pending.count += 1;
        }
        index += run.length;
        if (pending.count >= this.#commitEveryMessages || Date.now() - pending.lastCommitAt >= this.#commitIntervalMs) {
          await this.#commit(pending, abort.signal);
        }
      }
      // kafkajs is stopping (or the partition was moved): commit what was done without insisting.
      if (stopping) await this.#commitBeforeLeaving(pending);
      else await this.#commit(pending, abort.signal);
    } catch (error) {
      await this.#commitBeforeLeaving(pending);
      throw error;
    } finally {
      clearInterval(keepAlive);
      this.#shutdown.signal.removeEventListener('abort', onShutdown);
    }
  }

  /**
   * One handleBatch call for a run of messages: their verdicts, or
   * undefined when it failed, and the run is then handled one message at a
   * time (so a failure is retried on, and reported for, the message that
   * causes it). Rejects only when the turn is taken away.
   */
  async #handleRun(handler: ActivityBatchHandler, run: ReadonlyArray<{ meta: MessageMeta; message: KafkaMessage }>, signal: AbortSignal): Promise<HandleResult[] | undefined> {
    const first = run[0]!.meta;
    try {
      const results = await untilAborted(
        handler.handleBatch(run.map(({ message, meta }) => ({ value: message.value, meta }))),
        signal,
      );
      if (results.length !== run.length) throw new SignalError('ERR_HANDLER_RESULTS', `${results.length} results for ${run.length} messages`);
      return results;
    } catch (error) {
      if (signal.aborted) {
        for (const { meta } of run) {
          this.#logger.info(
            { topic: meta.topic, partition: meta.partition, offset: meta.offset, outcome: 'abandoned', attempts: 1, reason: describe(signal.reason) },
            'kafka message left uncommitted',
          );
        }
        throw signal.reason;
      }
      this.#stats.failures += 1;
      this.#logger.warn(
        { topic: first.topic, partition: first.partition, offset: first.offset, lastOffset: run.at(-1)!.meta.offset, code: errorCode(error), error: describe(error) },
        'kafka messages failed together; handling them one by one',
      );
      return undefined;
    }
  }

  /** `known`: the message's verdict from a run, when it was handled in one. */
  async #onMessage(message: KafkaMessage, meta: MessageMeta, signal: AbortSignal, pending: PendingCommit, known?: HandleResult, startedAt = Date.now()): Promise<void> {
    const { topic, partition, offset } = meta;
    const where = { topic, partition, offset };
    const progress: Progress = { attempts: known === undefined ? 0 : 1 };
    let result: HandleResult;
    try {
      result = await this.#deliver(message, meta, signal, progress, pending, known);
    } catch (error) {
      this.#logger.info({ ...where, outcome: 'abandoned', attempts: progress.attempts, reason: describe(error) }, 'kafka message left uncommitted');
      throw error;
    } finally {
      this.#failing.delete(partition);
    }

    const fields = { ...where, outcome: result.outcome, attempts: progress.attempts, durationMs: Date.now() - startedAt };
    if (result.outcome === 'poison') {
      this.#stats.poison += 1;
      this.#logger.warn({ ...fields, reason: result.reason, dlqTopic: this.#dlqTopic }, 'kafka message parked on the dead-letter topic');
    } else {
      this.#stats.processed += 1;
      this.#logger.info(fields, 'kafka message processed');
    }
  }

  /**
   * Handles, parks if poison; retries whichever step failed until it
   * succeeds. Rejects only when the turn is taken away (shutdown, lost
   * partition): the offset is then left as it was.
   */
  async #deliver(message: KafkaMessage, meta: MessageMeta, signal: AbortSignal, progress: Progress, pending: PendingCommit, known?: HandleResult): Promise<HandleResult> {
    const { topic, partition, offset } = meta;
    let result: HandleResult | undefined = known;
    let parked = false;
    for (let first = true; ; first = false) {
      // A verdict from a run counts as the first attempt.
      if (!(first && known !== undefined)) progress.attempts += 1;
      let stage: 'pin' | 'handle' | 'dead-letter' = 'pin';
      try {
        signal.throwIfAborted();
        // A group with no committed offset starts at "latest", which kafkajs
        // resolves anew after every join. Committing this message's own
        // offset first (it skips nothing) makes the start durable: if this
        // message is never finished here, whoever owns the partition next
        // gets it again instead of starting after it.
        if (!this.#pinned.has(partition)) {
          await this.#consumer.commitOffsets([{ topic, partition, offset }]);
          this.#pinned.add(partition);
        }
        stage = 'handle';
        // A result is kept across attempts: a poison verdict is not re-derived
        // when only the DLQ write failed.
        result ??= await untilAborted(this.#options.handler.handle(message.value, meta), signal);
        if (result.outcome === 'poison' && !parked) {
          stage = 'dead-letter';
          await untilAborted(this.#park(message, meta, result.reason), signal);
          parked = true;
        }
        return result;
      } catch (error) {
        if (signal.aborted) throw signal.reason;
        const cause = rootCause(error);
        // kafkajs recognises these and rejoins the group; the message comes back.
        if (MEMBERSHIP_ERRORS.has(kafkaType(cause))) throw cause;
        // While this message is retried the group's offset should sit on it,
        // not behind it: a crash or rebalance then redelivers only from here.
        await this.#commitOnce(pending, signal);
        this.#stats.failures += 1;
        const code = errorCode(error);
        const delayMs = this.#backoff(progress.attempts);
        this.#failing.set(partition, code);
        this.#logger.warn(
          { topic, partition, offset, code, stage, attempt: progress.attempts, retryInMs: delayMs, error: describe(error) },
          'kafka message failed; retrying the same message',
        );
        await sleep(delayMs, signal);
      }
    }
  }

  /** Commits the processed prefix, retrying with backoff until it lands; rejects only when the turn is taken away. */
  async #commit(pending: PendingCommit, signal: AbortSignal): Promise<void> {
    for (let attempt = 1; pending.offset !== undefined; attempt++) {
      try {
        await this.#commitOnce(pending, signal, true);
        this.#failing.delete(pending.partition);
      } catch (error) {
        if (signal.aborted) throw signal.reason;
        const cause = rootCause(error);
        if (MEMBERSHIP_ERRORS.has(kafkaType(cause))) throw cause;
        const { topic, partition, lastProcessed } = pending;
        this.#stats.failures += 1;
        const code = errorCode(error);
        const delayMs = this.#backoff(attempt);
        this.#failing.set(partition, code);
        this.#logger.warn(
          { topic, partition, offset: lastProcessed, code, stage: 'commit', attempt, retryInMs: delayMs, error: describe(error) },
          'kafka message failed; retrying the same message',
        );
        await sleep(delayMs, signal);
      }
    }
  }

  /**
   * One commit attempt of the processed prefix, if there is one. A failure
   * rejects when `strict`; otherwise it is left for the next commit, except
   * a lost turn (abort, lost membership), which always rejects.
   */
  async #commitOnce(pending: PendingCommit, signal: AbortSignal, strict = false): Promise<void> {
    const { topic, partition, offset } = pending;
    if (offset === undefined) return;
    try {
      signal.throwIfAborted();
      await untilAborted(this.#consumer.commitOffsets([{ topic, partition, offset }]), signal);
    } catch (error) {
      if (strict || signal.aborted || MEMBERSHIP_ERRORS.has(kafkaType(rootCause(error)))) throw error;
      this.#logger.warn({ topic, partition, offset: pending.lastProcessed, code: errorCode(error), error: describe(error) }, 'kafka offset commit failed; left for the next commit');
      return;
    }
    if (pending.offset === offset) pending.offset = undefined;
    pending.count = 0;
    pending.lastCommitAt = Date.now();
  }

  /**
   * An abandoned batch (shutdown, rebalance) still commits what it finished,
   * briefly and at most once: fewer messages are redelivered, and a failure
   * only means they are.
   */
  async #commitBeforeLeaving(pending: PendingCommit): Promise<void> {
    const { topic, partition, offset } = pending;
    if (offset === undefined) return;
    try {
      await untilAborted(this.#consumer.commitOffsets([{ topic, partition, offset }]), AbortSignal.timeout(FINAL_COMMIT_TIMEOUT_MS));
      pending.offset = undefined;
    } catch (error) {
      this.#logger.info(
        { topic, partition, offset: pending.lastProcessed, reason: describe(error) },
        'kafka offsets of processed messages left uncommitted; they will be redelivered',
      );
    }
  }

  /** Copies the original record to the DLQ with where it came from and why. */
  async #park(message: KafkaMessage, meta: MessageMeta, reason: string): Promise<void> {
    if (!this.#producerConnected) await this.#producer.connect();
    const headers: IHeaders = {};
    for (const [name, value] of Object.entries(message.headers ?? {})) {
      if (value !== undefined) headers[name] = value;
    }
    headers[DLQ_HEADERS.reason] = reason.slice(0, MAX_REASON_CHARS);
    headers[DLQ_HEADERS.sourceTopic] = meta.topic;
    headers[DLQ_HEADERS.sourcePartition] = String(meta.partition);
    headers[DLQ_HEADERS.sourceOffset] = meta.offset;
    // The DLQ must hold the message before its offset is committed: wait for every in-sync replica.
    await this.#producer.send({ topic: this.#dlqTopic, acks: -1, messages: [{ key: message.key, value: message.value, headers }] });
  }

  /** Instrumentation events drive health and the operator log lines. */
  #watch(): void {
    const consumer = this.#consumer;
    const { events } = consumer;
    const { topic, groupId } = this.#options;
    consumer.on(events.CONNECT, () => {
      if (this.#connected) return; // kafkajs reports the consumer and its group connecting separately
      this.#connected = true;
      this.#logger.info({ topic, groupId, brokers: this.#options.brokers }, 'kafka consumer connected to the brokers');
    });
    consumer.on(events.DISCONNECT, () => {
      this.#connected = false;
      this.#joined = false;
      this.#positioned = false;
      this.#logger.info({ topic, groupId }, 'kafka consumer disconnected from the brokers');
    });
    consumer.on(events.GROUP_JOIN, ({ payload }) => {
      this.#joined = true;
      this.#positioned = false;
      this.#crash = undefined;
      this.#restartAttempt = 0;
      this.#failing.clear();
      this.#pinned.clear();
      const { memberId, isLeader, memberAssignment, duration } = payload;
      this.#logger.info(
        { topic, groupId, memberId, isLeader, assignment: memberAssignment, durationMs: duration },
        'kafka consumer joined the group',
      );
    });
    consumer.on(events.FETCH, () => {
      if (this.#joined) this.#positioned = true;
    });
    consumer.on(events.REBALANCING, ({ payload }) => {
      this.#joined = false;
      this.#positioned = false;
      this.#logger.info({ topic, groupId, memberId: payload.memberId }, 'kafka consumer group is rebalancing');
    });
    consumer.on(events.COMMIT_OFFSETS, ({ payload }) => {
      for (const committed of payload.topics) {
        if (committed.topic !== topic) continue;
        for (const { partition, offset } of committed.partitions) this.#stats.lastCommittedOffset[partition] = String(offset);
      }
    });
    consumer.on(events.STOP, () => {
      this.#joined = false;
      this.#positioned = false;
      this.#logger.info({ topic, groupId }, 'kafka consumer stopped and left the group');
    });
    consumer.on(events.CRASH, ({ payload }) => {
      const { error, restart } = payload;
      this.#joined = false;
      this.#positioned = false;
      this.#crash = errorCode(error);
      this.#logger.error({ topic, groupId, code: errorCode(error), error: describe(error), restart }, 'kafka consumer crashed');
      // kafkajs restarts on retriable errors only; any other crash would leave
      // the service up but silently consuming nothing.
      if (!restart) this.#scheduleRestart();
    });
    const producer = this.#producer;
    producer.on(producer.events.CONNECT, () => {
      this.#producerConnected = true;
      this.#logger.info({ topic: this.#dlqTopic }, 'kafka dead-letter producer connected');
    });
    producer.on(producer.events.DISCONNECT, () => {
      this.#producerConnected = false;
      this.#logger.info({ topic: this.#dlqTopic }, 'kafka dead-letter producer disconnected');
    });
  }

  #scheduleRestart(): void {
    if (this.#shutdown.signal.aborted || this.#restartTimer !== undefined) return;
    this.#restartAttempt += 1;
    const delayMs = this.#backoff(this.#restartAttempt);
    this.#logger.warn({ topic: this.#options.topic, attempt: this.#restartAttempt, retryInMs: delayMs }, 'kafka consumer restarting');
    this.#restartTimer = setTimeout(() => {
      this.#restartTimer = undefined;
      if (this.#shutdown.signal.aborted) return;
      this.#stats.restarts += 1;
      this.#restarting = (async () => {
        try {
          await this.#consumer.connect();
          await this.#run();
        } catch (error) {
          this.#logger.error({ topic: this.#options.topic, code: errorCode(error), error: describe(error) }, 'kafka consumer restart failed');
          this.#scheduleRestart();
        }
      })();
    }, delayMs);
  }

  async #closeOnce(): Promise<void> {
    // Abandons any retry in flight; the message stays uncommitted.
    this.#shutdown.abort();
    clearTimeout(this.#restartTimer);
    this.#restartTimer = undefined;
    const timeoutMs = this.#options.closeTimeoutMs ?? 10_000;
    const stopping = (async () => {
      // Disconnecting mid-join would let the join finish on a closed client.
      await this.#starting?.catch(() => {});
      await this.#restarting;
      // Stops fetching, waits for eachMessage to return, leaves the group.
      await this.#consumer.disconnect().catch((error: unknown) => this.#logger.warn({ error: describe(error) }, 'kafka consumer disconnect failed'));
      await this.#producer.disconnect().catch((error: unknown) => this.#logger.warn({ error: describe(error) }, 'kafka producer disconnect failed'));
    })();
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), timeoutMs)));
    const outcome = await Promise.race([stopping.then(() => 'stopped' as const), timedOut]);
    clearTimeout(timer);
    if (outcome === 'timeout') this.#logger.warn({ topic: this.#options.topic, timeoutMs }, 'kafka consumer did not stop in time; abandoning it');
  }

  /** Exponential with equal jitter: spreads retries of many instances without ever waiting near zero. */
  #backoff(attempt: number): number {
    const ceiling = Math.min(this.#maxDelayMs, this.#initialDelayMs * 2 ** Math.min(attempt - 1, 30));
    return Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
  }

  #kafkajsLog({ namespace, level, log }: LogEntry): void {
    const { message, timestamp: _timestamp, logger: _logger, stack: _stack, ...extra } = log;
    const fields: Record<string, unknown> = { component: 'kafkajs', namespace };
    for (const [key, value] of Object.entries(extra)) fields[key] = value instanceof Error ? describe(value) : value;
    // kafkajs logs every protocol error in a response at error level, even
    // the ones it handles itself (a rebalance, a moved coordinator); what
    // matters (a crash, a stuck message) is logged by this class.
    const handledByKafkajs = namespace === 'Connection' && message.startsWith('Response ');
    if (level === logLevel.ERROR && !handledByKafkajs) this.#logger.error(fields, message);
    else if (level === logLevel.WARN || level === logLevel.ERROR) this.#logger.warn(fields, message);
    else if (level === logLevel.INFO) this.#logger.info(fields, message);
    else this.#logger.debug(fields, message);
  }
}

function metaOf(topic: string, partition: number, message: KafkaMessage): MessageMeta {
  return { topic, partition, offset: message.offset, key: message.key?.toString('utf8') ?? null };
}

/** kafkajs types SASL as one variant per mechanism; a union-typed mechanism must be narrowed first. */
function saslOptions({ mechanism, username, password }: NonNullable<KafkaActivityConsumerOptions['sasl']>): SASLOptions {
  if (mechanism === 'plain') return { mechanism, username, password };
  if (mechanism === 'scram-sha-256') return { mechanism, username, password };
  return { mechanism, username, password };
}

/** Rejects with the signal's reason as soon as it aborts; the work itself runs on, unobserved. */
function untilAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) {
    work.catch(() => {});
    return Promise.reject(signal.reason);
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** kafkajs wraps protocol errors in retry errors; the innermost one carries the `type`. */
function rootCause(error: unknown): unknown {
  let current = error;
  for (let depth = 0; depth < 10; depth++) {
    const cause = (current as { cause?: unknown } | null)?.cause;
    if (cause === undefined || cause === null || cause === current) break;
    current = cause;
  }
  return current;
}

function kafkaType(error: unknown): string {
  const type = (error as { type?: unknown } | null)?.type;
  return typeof type === 'string' ? type : '';
}

/** The stable code shown in health and logs: ours, then kafkajs's protocol type, then the error class. */
function errorCode(error: unknown): string {
  if (error instanceof SignalError) return error.code;
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && code !== '') return code;
  const type = kafkaType(rootCause(error));
  if (type !== '') return type;
  return error instanceof Error ? error.name : 'ERR_UNKNOWN';
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
