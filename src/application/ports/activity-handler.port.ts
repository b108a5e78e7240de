/**
 * The inbound port an event-stream adapter (Kafka) drives for each raw
 * activity message. The adapter owns delivery: ordering per partition,
 * commits, the dead-letter topic and retries. The handler owns meaning:
 * parsing, validation and the effect.
 */

/**
 * 'processed': done (including "already done before"), the adapter commits.
 * 'poison': can never succeed (not JSON, fails the schema); the adapter parks
 * the original message on the dead-letter topic with `reason`, then commits.
 */
export type HandleResult = { outcome: 'processed' } | { outcome: 'poison'; reason: string };

/** Where the message came from; for logs and the dead-letter headers. */
export interface MessageMeta {
  topic: string;
  partition: number;
  /** Kafka offsets are 64-bit; kept as the decimal string the client gives. */
  offset: string;
  /** The message key as UTF-8, or null when the message has none. */
  key: string | null;
}

/**
 * Handles one raw message value. Resolves 'processed' (commit), 'poison'
 * (park on the DLQ, then commit); REJECTS for a transient failure (database
 * down): the adapter retries the same message with backoff and never commits
 * past it, so nothing behind it on the partition is skipped. Must be
 * idempotent: the same message may be handed over again after a crash or a
 * rebalance, and again after a rejection even if part of its effect landed.
 * A rejection should carry a stable `code` (a SignalError) for health and logs.
 */
export interface ActivityHandler {
  handle(value: Buffer | null, meta: MessageMeta): Promise<HandleResult>;
}
