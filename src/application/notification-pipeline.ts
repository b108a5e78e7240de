import { parseActivityEvent, type ActivityEvent } from '../domain/activity-event.ts';
import { buildContent } from '../domain/notification-content.ts';
import { NOTIFICATION_CREATED_EVENT, toViewCreatedAt, type NewNotification, type Notification } from '../domain/notification.ts';
import { membershipTarget, resolveRecipients, type MembershipTarget } from '../domain/recipients.ts';
import type { Delivery, DeliveryReport } from './delivery.ts';
import type { ActivityBatchHandler, ActivityMessage } from './ports/activity-batch-handler.port.ts';
import type { ActivityHandler, HandleResult, MessageMeta } from './ports/activity-handler.port.ts';
import type { Clock } from './ports/clock.port.ts';
import type { Logger } from './ports/logger.port.ts';
import type { MembershipDirectory } from './ports/membership-directory.port.ts';
import { noopMetrics, type Metrics } from './ports/metrics.port.ts';
import type { NotificationStore } from './ports/notification-store.port.ts';

export interface IdGenerator {
  next(): string;
}

export type SubmitResult = { ok: true; created: number; recipients: number } | { ok: false; reason: string };

/**
 * Rows per INSERT. The rows travel as one JSON document, so there is no
 * parameter limit to respect; this bounds one statement's size and how many
 * pushes wait for it. The rows of several events share a statement (one
 * round trip and one commit for all of them); a larger event's rows are
 * split over several.
 */
const INSERT_ROWS = 2_000;

/** One event on its way through: its rows, then what became of them. */
interface Ingestion {
  event: ActivityEvent;
  meta: MessageMeta | undefined;
  recipients: number;
  /** `createdAt` of every row, formatted once for the pushes. */
  createdAtText: string;
  created: number;
  /** The created notifications themselves, only when the caller wants them back (one event). */
  kept: Notification[] | undefined;
  pushedLocal: number;
  published: number;
}

/**
 * Activity event → recipients → one stored notification each → a live push
 * to each recipient's connections on every instance.
 *
 * Idempotent by (eventId, recipientId): the store returns only rows it
 * created, and only those are pushed, so a redelivered event neither
 * duplicates a row nor pushes twice. A store or directory failure rejects,
 * and the caller (the Kafka adapter) retries the whole event. Several
 * events (one run of a Kafka batch) can be ingested together: one
 * membership query per distinct merchant or organizer, their rows in as few
 * INSERTs as INSERT_ROWS allows, then the pushes; the same guarantees hold
 * per event, and a failure rejects the whole run.
 */
export class NotificationPipeline implements ActivityHandler, ActivityBatchHandler {
  constructor(
    private readonly store: NotificationStore,
    private readonly membership: MembershipDirectory,
    private readonly delivery: Delivery,
    private readonly ids: IdGenerator,
    private readonly clock: Clock,
    private readonly logger: Logger,
    private readonly metrics: Metrics = noopMetrics,
  ) {}

  async handle(value: Buffer | null, meta: MessageMeta): Promise<HandleResult> {
    const result = await this.submit(value === null ? null : value.toString('utf8'), meta);
    return result.ok ? { outcome: 'processed' } : { outcome: 'poison', reason: result.reason };
  }

  async handleBatch(messages: readonly ActivityMessage[]): Promise<HandleResult[]> {
    const results: HandleResult[] = [];
    const valid: Array<{ event: ActivityEvent; meta: MessageMeta }> = [];
    for (const { value, meta } of messages) {
      const parsed = parse(value === null ? null : value.toString('utf8'));
      if (parsed.ok) {
        valid.push({ event: parsed.event, meta });
        results.push({ outcome: 'processed' });
      } else {
        results.push({ outcome: 'poison', reason: parsed.reason });
      }
    }
    if (valid.length > 0) await this.ingestAll(valid);
    return results;
  }

  /** Validates and ingests one raw event; an invalid one is reported, never thrown. */
  async submit(text: string | null, meta?: MessageMeta): Promise<SubmitResult> {
    const parsed = parse(text);
    if (!parsed.ok) return parsed;
    const { created, recipients } = await this.ingest(parsed.event, meta);
    return { ok: true, created: created.length, recipients };
  }

  async ingest(event: ActivityEvent, meta?: MessageMeta): Promise<{ created: Notification[]; recipients: number }> {
    const [ingested] = await this.ingestAll([{ event, meta }], true);
    return { created: ingested!.kept ?? [], recipients: ingested!.recipients };
  }

  private async ingestAll(events: ReadonlyArray<{ event: ActivityEvent; meta: MessageMeta | undefined }>, keep = false): Promise<Ingestion[]> {
    const members = await this.membersOfTargets(events.map(({ event }) => event));

    // Rows of consecutive events fill each statement; pushed statement by
    // statement, so if a later one fails, the retry finds these rows
    // existing and pushes only what is new. Rows are made as the
    // statements are filled: at most one statement's rows are held at once,
    // however many recipients the events have together.
    const ingestions: Ingestion[] = [];
    let rows: NewNotification[] = [];
    let owners: Ingestion[] = [];
    for (const { event, meta } of events) {
      const target = membershipTarget(event);
      const recipients = resolveRecipients(event, target === null ? [] : (members.get(targetKey(target)) ?? []));
      const content = buildContent(event);
      const createdAt = new Date(this.clock.now());
      const ingestion: Ingestion = {
        event,
        meta,
        recipients: recipients.length,
        createdAtText: createdAt.toISOString(),
        created: 0,
        kept: keep ? [] : undefined,
        pushedLocal: 0,
        published: 0,
      };
      ingestions.push(ingestion);
      for (const recipientId of recipients) {
        rows.push({
          id: this.ids.next(),
          eventId: event.eventId,
          recipientId,
          actorId: event.actorId,
          type: event.type,
          title: content.title,
          content: content.content,
          html: content.html,
          metadata: content.metadata,
          createdAt,
        });
        owners.push(ingestion);
        if (rows.length === INSERT_ROWS) {
          await this.storeAndPush(rows, owners);
          rows = [];
          owners = [];
        }
      }
    }
    if (rows.length > 0) await this.storeAndPush(rows, owners);

    // One line per event (its counts), not one per push: at 50 recipients
    // the per-push lines were most of the pipeline's logging cost. Pushes
    // are logged one by one at debug.
    for (const { event, meta, recipients, created, pushedLocal, published } of ingestions) {
      this.logger.info(
        {
          eventId: event.eventId,
          type: event.type,
          topic: meta?.topic,
          partition: meta?.partition,
          offset: meta?.offset,
          recipients,
          created,
          pushedLocal,
          published,
        },
        created === 0 && recipients > 0 ? 'event already stored: nothing new to push' : 'event stored',
      );
    }
    return ingestions;
  }

  /** One query per distinct merchant or organizer among the events. */
  private async membersOfTargets(events: readonly ActivityEvent[]): Promise<Map<string, string[]>> {
    const targets = new Map<string, MembershipTarget>();
    for (const event of events) {
      const target = membershipTarget(event);
      if (target !== null) targets.set(targetKey(target), target);
    }
    const members = new Map<string, string[]>();
    for (const [key, { target, id }] of targets) members.set(key, await this.membership.membersOf(target, id));
    return members;
  }

  /** `owners[i]` is the event `rows[i]` belongs to. */
  private async storeAndPush(rows: readonly NewNotification[], owners: readonly Ingestion[]): Promise<void> {
    const inserted = await this.store.insertMany(rows);
    if (inserted.length === 0) return;
    this.metrics.notificationsCreated(inserted.length);
    // The store returns the created rows in input order: a subsequence of `rows`.
    const insertedOwners: Ingestion[] = [];
    for (let index = 0, next = 0; index < rows.length && next < inserted.length; index++) {
      if (rows[index]!.id !== inserted[next]!.id) continue;
      insertedOwners.push(owners[index]!);
      next++;
    }
    const reports = await Promise.all(inserted.map((notification, index) => this.push(notification, insertedOwners[index]!)));
    reports.forEach((report, index) => {
      const owner = insertedOwners[index]!;
      owner.created += 1;
      owner.kept?.push(inserted[index]!);
      owner.pushedLocal += report.local;
      if (report.published) owner.published += 1;
    });
  }

  private async push(notification: Notification, owner: Ingestion): Promise<DeliveryReport> {
    const report = await this.delivery.toUser(notification.recipientId, NOTIFICATION_CREATED_EVENT, toViewCreatedAt(notification, owner.createdAtText));
    // The contract's per-push line (topic, recipientId), at the default level.
    this.logger.info(
      { topic: owner.meta?.topic, recipientId: notification.recipientId, local: report.local, published: report.published },
      'notification pushed',
    );
    return report;
  }
}

function parse(text: string | null): { ok: true; event: ActivityEvent } | { ok: false; reason: string } {
  if (text === null || text.length === 0) return { ok: false, reason: 'empty message' };
  return parseActivityEvent(text);
}

function targetKey({ target, id }: MembershipTarget): string {
  return `${target}:${id}`;
}
