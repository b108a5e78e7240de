import type { ActivityHandler, HandleResult, MessageMeta } from './activity-handler.port.ts';

/** One raw message of a run handed over together. */
export interface ActivityMessage {
  value: Buffer | null;
  meta: MessageMeta;
}

/**
 * Optional capability of an ActivityHandler: consecutive messages of one
 * partition, in order, handled together (one database round trip for all
 * of them instead of one each). The adapter still owns delivery: it parks
 * the poison ones, commits, and never commits past a message it has no
 * result for.
 *
 * Resolves one result per message, in the same order, with the meaning of
 * `handle`'s. REJECTS for a transient failure of any of them; part of the
 * effect may have landed (as with `handle`, the effect is idempotent), and
 * the adapter then hands the same messages over again, one by one through
 * `handle`, so that a failure is retried on, and reported for, the message
 * that causes it.
 */
export interface ActivityBatchHandler {
  handleBatch(messages: readonly ActivityMessage[]): Promise<HandleResult[]>;
}

export function handlesBatches(handler: ActivityHandler): handler is ActivityHandler & ActivityBatchHandler {
  return typeof (handler as Partial<ActivityBatchHandler>).handleBatch === 'function';
}
