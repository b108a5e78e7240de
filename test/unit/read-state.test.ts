import { describe, expect, it } from 'vitest';
import type { Notification } from '../../src/domain/notification.ts';
import { markAsRead } from '../../src/domain/read-state.ts';

function unread(overrides: Partial<Notification> = {}): Notification {
  return {
    id: '123',
    eventId: 'e-1',
    recipientId: 'u-1',
    actorId: 'u-2',
    type: 'T',
    title: 'Title',
    content: 'body',
    html: '<p>body</p>\n',
    metadata: {},
    isRead: false,
    readAt: null,
    createdAt: new Date('2026-01-01T00:00:00Z'),
    ...overrides,
  };
}

const first = new Date('2026-01-02T00:00:00Z');
const later = new Date('2026-01-03T00:00:00Z');

describe('markAsRead', () => {
  it('marks an unread notification read at the given time', () => {
    const result = markAsRead(unread(), 'u-1', first);
    expect(result).toEqual({ kind: 'marked', notification: { ...unread(), isRead: true, readAt: first } });
  });

  it('lets only the recipient mark it, read or not', () => {
    expect(markAsRead(unread(), 'u-2', first)).toEqual({ kind: 'not-recipient' });
    expect(markAsRead(unread({ isRead: true, readAt: first }), 'u-2', later)).toEqual({ kind: 'not-recipient' });
  });

  it('keeps the first readAt when marked again', () => {
    const once = markAsRead(unread(), 'u-1', first);
    if (once.kind !== 'marked') throw new Error('expected marked');
    const twice = markAsRead(once.notification, 'u-1', later);
    expect(twice.kind).toBe('already-read');
    expect(twice.kind !== 'not-recipient' && twice.notification.readAt).toEqual(first);
    expect(twice.kind !== 'not-recipient' && twice.notification).toBe(once.notification);
  });

  it('completes a half-read row, keeping a time it already has', () => {
    const flagOnly = markAsRead(unread({ isRead: true }), 'u-1', later);
    expect(flagOnly).toMatchObject({ kind: 'marked', notification: { isRead: true, readAt: later } });
    const timeOnly = markAsRead(unread({ readAt: first }), 'u-1', later);
    expect(timeOnly).toMatchObject({ kind: 'marked', notification: { isRead: true, readAt: first } });
  });

  it('changes neither the input nor the given clock value', () => {
    const original = unread();
    const now = new Date(first.getTime());
    const result = markAsRead(original, 'u-1', now);
    expect(original.isRead).toBe(false);
    expect(original.readAt).toBeNull();
    if (result.kind !== 'marked') throw new Error('expected marked');
    result.notification.readAt?.setTime(0);
    expect(now.getTime()).toBe(first.getTime());
  });
});
