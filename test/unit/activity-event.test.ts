import { describe, expect, it } from 'vitest';
import { MAX_ACTIVITY_EVENT_BYTES, parseActivityEvent, parseIsoDate } from '../../src/domain/activity-event.ts';

const valid = {
  eventId: 'e-123',
  type: 'PAYMENT_SUCCESS',
  actorId: 'u-1',
  scope: 'merchant',
  organizerId: 'o-1',
  merchantId: 'm-1',
  recipientIds: ['u-2'],
  occurredAt: '2026-11-21T10:00:00Z',
  data: { orderCode: 'SO-1001', amount: 250000, currency: 'VND' },
};

function parse(value: unknown) {
  return parseActivityEvent(JSON.stringify(value));
}

function reasonFor(value: unknown): string {
  const result = parse(value);
  if (result.ok) throw new Error('expected a rejection');
  return result.reason;
}

describe('parseActivityEvent', () => {
  it('accepts the contract example with every field', () => {
    const result = parse(valid);
    expect(result).toEqual({
      ok: true,
      event: { ...valid, occurredAt: new Date(Date.UTC(2026, 10, 21, 10)) },
    });
  });

  it('fills the defaults of a minimal event: scope users, no recipients, empty data', () => {
    const result = parse({ eventId: 'e', type: 'T', actorId: 'a' });
    expect(result).toEqual({ ok: true, event: { eventId: 'e', type: 'T', actorId: 'a', scope: 'users', recipientIds: [], data: {} } });
    if (!result.ok) return;
    expect('organizerId' in result.event).toBe(false);
    expect('occurredAt' in result.event).toBe(false);
  });

  it('treats null optional fields as absent and ignores unknown fields', () => {
    const result = parse({ eventId: 'e', type: 'T', actorId: 'a', scope: null, merchantId: null, recipientIds: null, occurredAt: null, data: null, extra: [1] });
    expect(result).toEqual({ ok: true, event: { eventId: 'e', type: 'T', actorId: 'a', scope: 'users', recipientIds: [], data: {} } });
  });

  it('rejects text that is not JSON, without quoting it', () => {
    const result = parseActivityEvent('{"eventId": SECRET-TOKEN-VALUE');
    expect(result).toEqual({ ok: false, reason: 'event: not valid JSON' });
  });

  it('rejects JSON that is not an object', () => {
    for (const text of ['[]', 'null', '"x"', '42', '[{"eventId":"e"}]']) {
      expect(parseActivityEvent(text)).toEqual({ ok: false, reason: 'event: must be a JSON object' });
    }
  });

  it('names the missing or empty required field', () => {
    for (const field of ['eventId', 'type', 'actorId'] as const) {
      expect(reasonFor({ ...valid, [field]: undefined })).toBe(`${field}: required non-empty string`);
      expect(reasonFor({ ...valid, [field]: '' })).toBe(`${field}: required non-empty string`);
      expect(reasonFor({ ...valid, [field]: '   ' })).toMatch(new RegExp(`^${field}: must be a non-empty string`));
      expect(reasonFor({ ...valid, [field]: 42 })).toMatch(new RegExp(`^${field}: must be a non-empty string`));
    }
  });

  it('limits ids to 256 characters and the type to 128', () => {
    expect(parse({ ...valid, eventId: 'e'.repeat(256) }).ok).toBe(true);
    expect(reasonFor({ ...valid, eventId: 'e'.repeat(257) })).toBe('eventId: must be a non-empty string of at most 256 characters');
    expect(reasonFor({ ...valid, actorId: 'a'.repeat(257) })).toBe('actorId: must be a non-empty string of at most 256 characters');
    expect(parse({ ...valid, type: 'T'.repeat(128) }).ok).toBe(true);
    expect(reasonFor({ ...valid, type: 'T'.repeat(129) })).toBe('type: must be a non-empty string of at most 128 characters');
  });

  it('accepts only the three scopes', () => {
    expect(reasonFor({ ...valid, scope: 'everyone' })).toBe('scope: must be one of organizer, merchant, users');
    expect(reasonFor({ ...valid, scope: 'Merchant' })).toBe('scope: must be one of organizer, merchant, users');
    expect(reasonFor({ ...valid, scope: ['users'] })).toBe('scope: must be one of organizer, merchant, users');
  });

  it('requires the organizer or merchant id that the scope names', () => {
    expect(reasonFor({ eventId: 'e', type: 'T', actorId: 'a', scope: 'organizer', merchantId: 'm' })).toBe('organizerId: required when scope is organizer');
    expect(reasonFor({ eventId: 'e', type: 'T', actorId: 'a', scope: 'merchant', organizerId: 'o' })).toBe('merchantId: required when scope is merchant');
    expect(parse({ eventId: 'e', type: 'T', actorId: 'a', scope: 'organizer', organizerId: 'o' }).ok).toBe(true);
    expect(reasonFor({ ...valid, merchantId: '' })).toMatch(/^merchantId: when present, a non-empty string/);
    expect(reasonFor({ ...valid, organizerId: 7 })).toMatch(/^organizerId: when present, a non-empty string/);
  });

  it('checks recipientIds entries and their number', () => {
    expect(reasonFor({ ...valid, recipientIds: 'u-2' })).toBe('recipientIds: must be an array of strings');
    expect(reasonFor({ ...valid, recipientIds: ['u-2', ''] })).toBe('recipientIds[1]: must be a non-empty string of at most 256 characters');
    expect(reasonFor({ ...valid, recipientIds: ['u-2', 'u-3', 3] })).toMatch(/^recipientIds\[2\]: /);
    const many = Array.from({ length: 10_000 }, (_, index) => `u-${index}`);
    expect(parse({ ...valid, recipientIds: many }).ok).toBe(true);
    expect(reasonFor({ ...valid, recipientIds: [...many, 'one-more'] })).toBe('recipientIds: at most 10000 entries');
  });

  it('accepts ISO-8601 dates and rejects anything else in occurredAt', () => {
    const at = (value: unknown) => {
      const result = parse({ ...valid, occurredAt: value });
      return result.ok ? result.event.occurredAt?.toISOString() : result.reason;
    };
    expect(at('2026-11-21T17:00:00+07:00')).toBe('2026-11-21T10:00:00.000Z');
    expect(at('2026-11-21T10:00:00.123456Z')).toBe('2026-11-21T10:00:00.123Z');
    expect(at('2026-11-21')).toBe('2026-11-21T00:00:00.000Z');
    const rejected = 'occurredAt: must be an ISO-8601 date string';
    for (const bad of ['yesterday', '2026-13-01', '2026-02-30T00:00:00Z', '2026-11-21T25:00:00Z', 'Sat, 21 Nov 2026 10:00:00 GMT', '', 1_763_719_200_000]) {
      expect(at(bad)).toBe(rejected);
    }
  });

  it('reads a date-time without a zone as UTC, the same on every host', () => {
    expect(parseIsoDate('2026-11-21T10:00:00')?.toISOString()).toBe('2026-11-21T10:00:00.000Z');
    expect(parseIsoDate('2024-02-29T23:59:59-05:30')?.toISOString()).toBe('2024-03-01T05:29:59.000Z');
    expect(parseIsoDate('2023-02-29')).toBeNull();
    expect(parseIsoDate('2026-11-21T10:00:00+24:00')).toBeNull();
  });

  it('requires data to be an object, not an array or a scalar', () => {
    expect(reasonFor({ ...valid, data: [1, 2] })).toBe('data: must be a JSON object');
    expect(reasonFor({ ...valid, data: 'x' })).toBe('data: must be a JSON object');
    const result = parse({ ...valid, data: { nested: { list: [1] } } });
    expect(result.ok && result.event.data).toEqual({ nested: { list: [1] } });
  });

  it('rejects text over 1 MiB before parsing it, counting UTF-8 bytes', () => {
    const base = JSON.stringify({ ...valid, data: {} });
    const padded = base + ' '.repeat(MAX_ACTIVITY_EVENT_BYTES - base.length);
    expect(parseActivityEvent(padded).ok).toBe(true);
    expect(parseActivityEvent(padded + ' ')).toEqual({ ok: false, reason: 'event: larger than 1 MiB' });
    // 400k three-byte characters: fewer code units than the limit, more bytes.
    const wide = JSON.stringify({ ...valid, data: { note: '€'.repeat(400_000) } });
    expect(wide.length).toBeLessThan(MAX_ACTIVITY_EVENT_BYTES);
    expect(parseActivityEvent(wide)).toEqual({ ok: false, reason: 'event: larger than 1 MiB' });
    // Not even valid JSON: the size is what is reported, so nothing was parsed.
    expect(parseActivityEvent('{'.repeat(MAX_ACTIVITY_EVENT_BYTES + 1))).toEqual({ ok: false, reason: 'event: larger than 1 MiB' });
  });

  it('never echoes a value in a reason', () => {
    const huge = 'X'.repeat(5000);
    const cases = [
      { ...valid, eventId: huge },
      { ...valid, scope: huge },
      { ...valid, occurredAt: huge },
      { ...valid, recipientIds: [huge + huge] },
      { ...valid, data: huge },
    ];
    for (const value of cases) {
      const reason = reasonFor(value);
      expect(reason).not.toContain('XXXX');
      expect(reason.length).toBeLessThan(100);
    }
  });
});
