import { parseActivityEvent, type ActivityEvent } from '../domain/activity-event.ts';
import { buildContent } from '../domain/notification-content.ts';
import { NOTIFICATION_CREATED_EVENT, toView, type NewNotification, type Notification } from '../domain/notification.ts';
import { membershipTarget, resolveRecipients } from '../domain/recipients.ts';
import type { Delivery } from './delivery.ts';
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

/** Rows per INSERT: a large organizer must not hit PostgreSQL's parameter limit. */
const INSERT_CHUNK = 500;

/**
 * Activity event → recipients → one stored notification each → a live push
 * to each recipient's connections on every instance.
 *
 * Idempotent by (eventId, recipientId): the store returns only rows it
 * created, and only those are pushed, so a redelivered event neither
 * duplicates a row nor pushes twice. A store or directory failure rejects,
 * and the caller (the Kafka adapter) retries the whole event.
 */
export class NotificationPipeline implements ActivityHandler {
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

  /** Validates and ingests one raw event; an invalid one is reported, never thrown. */
  async submit(text: string | null, meta?: MessageMeta): Promise<SubmitResult> {
    if (text === null || text.length === 0) return { ok: false, reason: 'empty message' };
    const parsed = parseActivityEvent(text);
    if (!parsed.ok) return { ok: false, reason: parsed.reason };
    const { created, recipients } = await this.ingest(parsed.event, meta);
    return { ok: true, created: created.length, recipients };
  }

  async ingest(event: ActivityEvent, meta?: MessageMeta): Promise<{ created: Notification[]; recipients: number }> {
    const target = membershipTarget(event);
    const members = target === null ? [] : await this.membership.membersOf(target.target, target.id);
    const recipients = resolveRecipients(event, members);
    const content = buildContent(event);
    const createdAt = new Date(this.clock.now());
    const rows: NewNotification[] = recipients.map((recipientId) => ({
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
    }));

    const created: Notification[] = [];
    for (let start = 0; start < rows.length; start += INSERT_CHUNK) {
      const inserted = await this.store.insertMany(rows.slice(start, start + INSERT_CHUNK));
      // Pushed chunk by chunk: if a later chunk fails, the retry finds these
      // rows existing and pushes only what is new.
      if (inserted.length > 0) this.metrics.notificationsCreated(inserted.length);
      await Promise.all(inserted.map((notification) => this.push(notification, meta)));
      created.push(...inserted);
    }
    this.logger.info(
      { eventId: event.eventId, type: event.type, recipients: recipients.length, created: created.length, topic: meta?.topic },
      created.length === 0 && recipients.length > 0 ? 'event already stored: nothing new to push' : 'event stored',
    );
    return { created, recipients: recipients.length };
  }

  private async push(notification: Notification, meta: MessageMeta | undefined): Promise<void> {
    const report = await this.delivery.toUser(notification.recipientId, NOTIFICATION_CREATED_EVENT, toView(notification));
    // Operators trace a missing notification by recipient: one line per push.
    this.logger.info(
      { topic: meta?.topic, recipientId: notification.recipientId, local: report.local, published: report.published },
      'notification pushed',
    );
  }
}
