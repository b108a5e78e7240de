/**
 * The inbound activity event (contract: "Inbound activity event") and its
 * schema. Anything that fails here is parked on the DLQ by the consumer, so
 * every reason names the field and the rule and never echoes the value: a
 * reason ends up in logs, and a hostile or huge value must not.
 */

export type ActivityScope = 'organizer' | 'merchant' | 'users';

export interface ActivityEvent {
  /** The idempotency key: the same eventId never creates a second row per recipient. */
  eventId: string;
  type: string;
  actorId: string;
  scope: ActivityScope;
  /** Present whenever scope is 'organizer'. */
  organizerId?: string;
  /** Present whenever scope is 'merchant'. */
  merchantId?: string;
  /** Explicit recipients, used for scope 'users'; empty when not sent. */
  recipientIds: string[];
  occurredAt?: Date;
  /** Type-specific details; empty when not sent. */
  data: Record<string, unknown>;
}

export type ParseActivityEventResult = { ok: true; event: ActivityEvent } | { ok: false; reason: string };

/** Measured in UTF-8 bytes, the unit Kafka and the HTTP body limit use. */
export const MAX_ACTIVITY_EVENT_BYTES = 1024 * 1024;
export const MAX_ID_LENGTH = 256;
export const MAX_TYPE_LENGTH = 128;
export const MAX_RECIPIENT_IDS = 10_000;

const SCOPES: readonly ActivityScope[] = ['organizer', 'merchant', 'users'];

/**
 * Validates one event. Unknown top-level fields are ignored so publishers can
 * add fields without their events being parked. `null` on an optional field
 * counts as absent: several publishers serialise unset fields that way.
 */
export function parseActivityEvent(text: string): ParseActivityEventResult {
  if (utf8ExceedsLimit(text, MAX_ACTIVITY_EVENT_BYTES)) return fail('event: larger than 1 MiB');

  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    // The SyntaxError message quotes part of the input; keep it out of the reason.
    return fail('event: not valid JSON');
  }
  if (!isPlainObject(parsed)) return fail('event: must be a JSON object');

  const eventId = requiredString(parsed, 'eventId', MAX_ID_LENGTH);
  if (typeof eventId !== 'string') return eventId;
  const type = requiredString(parsed, 'type', MAX_TYPE_LENGTH);
  if (typeof type !== 'string') return type;
  const actorId = requiredString(parsed, 'actorId', MAX_ID_LENGTH);
  if (typeof actorId !== 'string') return actorId;

  const rawScope = parsed['scope'];
  let scope: ActivityScope = 'users';
  if (rawScope !== undefined && rawScope !== null) {
    const known = SCOPES.find((candidate) => candidate === rawScope);
    if (known === undefined) return fail(`scope: must be one of ${SCOPES.join(', ')}`);
    scope = known;
  }

  const organizerId = optionalString(parsed, 'organizerId', MAX_ID_LENGTH);
  if (typeof organizerId === 'object') return organizerId;
  const merchantId = optionalString(parsed, 'merchantId', MAX_ID_LENGTH);
  if (typeof merchantId === 'object') return merchantId;
  if (scope === 'organizer' && organizerId === undefined) return fail('organizerId: required when scope is organizer');
  if (scope === 'merchant' && merchantId === undefined) return fail('merchantId: required when scope is merchant');

  const recipientIds = parseRecipientIds(parsed['recipientIds']);
  if (!Array.isArray(recipientIds)) return recipientIds;

  const rawOccurredAt = parsed['occurredAt'];
  let occurredAt: Date | undefined;
  if (rawOccurredAt !== undefined && rawOccurredAt !== null) {
    const date = typeof rawOccurredAt === 'string' ? parseIsoDate(rawOccurredAt) : null;
    if (date === null) return fail('occurredAt: must be an ISO-8601 date string');
    occurredAt = date;
  }

  const rawData = parsed['data'];
  let data: Record<string, unknown> = {};
  if (rawData !== undefined && rawData !== null) {
    if (!isPlainObject(rawData)) return fail('data: must be a JSON object');
    data = rawData;
  }

  const event: ActivityEvent = { eventId, type, actorId, scope, recipientIds, data };
  if (organizerId !== undefined) event.organizerId = organizerId;
  if (merchantId !== undefined) event.merchantId = merchantId;
  if (occurredAt !== undefined) event.occurredAt = occurredAt;
  return { ok: true, event };
}

type Failure = { ok: false; reason: string };

function fail(reason: string): Failure {
  return { ok: false, reason };
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A blank id would match nobody and hide a publisher bug, so it counts as empty. */
function isUsableString(value: unknown, maxLength: number): value is string {
  return typeof value === 'string' && value.trim().length > 0 && value.length <= maxLength;
}

function stringRule(field: string, maxLength: number, requirement: string): Failure {
  return fail(`${field}: ${requirement} non-empty string of at most ${maxLength} characters`);
}

function requiredString(object: Record<string, unknown>, field: string, maxLength: number): string | Failure {
  const value = object[field];
  if (value === undefined || value === null || value === '') return fail(`${field}: required non-empty string`);
  return isUsableString(value, maxLength) ? value : stringRule(field, maxLength, 'must be a');
}

function optionalString(object: Record<string, unknown>, field: string, maxLength: number): string | undefined | Failure {
  const value = object[field];
  if (value === undefined || value === null) return undefined;
  return isUsableString(value, maxLength) ? value : stringRule(field, maxLength, 'when present, a');
}

function parseRecipientIds(value: unknown): string[] | Failure {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) return fail('recipientIds: must be an array of strings');
  if (value.length > MAX_RECIPIENT_IDS) return fail(`recipientIds: at most ${MAX_RECIPIENT_IDS} entries`);
  for (let index = 0; index < value.length; index += 1) {
    if (!isUsableString(value[index], MAX_ID_LENGTH)) {
      return stringRule(`recipientIds[${index}]`, MAX_ID_LENGTH, 'must be a');
    }
  }
  return value as string[];
}

/**
 * Counts UTF-8 bytes without allocating, stopping as soon as the limit is
 * passed. A code unit is at least one byte and at most three, so most
 * inputs are decided by their length alone.
 */
function utf8ExceedsLimit(text: string, limit: number): boolean {
  if (text.length > limit) return true;
  if (text.length * 3 <= limit) return false;
  let bytes = 0;
  for (let index = 0; index < text.length; index += 1) {
    const unit = text.charCodeAt(index);
    if (unit < 0x80) bytes += 1;
    else if (unit < 0x800) bytes += 2;
    // A surrogate pair is one 4-byte character: two units at 2 bytes each.
    else if (unit >= 0xd800 && unit <= 0xdfff) bytes += 2;
    else bytes += 3;
    if (bytes > limit) return true;
  }
  return false;
}

const ISO_DATE =
  /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?(Z|z|[+-]\d{2}(?::?\d{2})?)?)?$/;

/**
 * ISO-8601 calendar dates and date-times, checked field by field rather than
 * left to `Date.parse`, whose leniency differs between engines. A date-time
 * without a zone is read as UTC: reading it in the server's local zone
 * would make the same event mean different instants on different hosts.
 */
export function parseIsoDate(text: string): Date | null {
  const match = ISO_DATE.exec(text);
  if (match === null) return null;
  const [, y, mo, d, h, mi, s, fraction, zone] = match;
  const year = Number(y);
  const month = Number(mo);
  const day = Number(d);
  const hour = h === undefined ? 0 : Number(h);
  const minute = mi === undefined ? 0 : Number(mi);
  const second = s === undefined ? 0 : Number(s);
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return null;
  if (hour > 23 || minute > 59 || second > 59) return null;
  const millisecond = fraction === undefined ? 0 : Math.floor(Number(`0.${fraction}`) * 1000);

  let offsetMinutes = 0;
  if (zone !== undefined && zone !== 'Z' && zone !== 'z') {
    const sign = zone.startsWith('-') ? -1 : 1;
    const digits = zone.slice(1).replace(':', '');
    const offsetHours = Number(digits.slice(0, 2));
    const offsetMins = digits.length > 2 ? Number(digits.slice(2)) : 0;
    if (offsetHours > 23 || offsetMins > 59) return null;
    offsetMinutes = sign * (offsetHours * 60 + offsetMins);
  }

  const utc = new Date(0);
  utc.setUTCFullYear(year, month - 1, day);
  utc.setUTCHours(hour, minute, second, millisecond);
  return new Date(utc.getTime() - offsetMinutes * 60_000);
}

function daysInMonth(year: number, month: number): number {
  if (month === 2) return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0 ? 29 : 28;
  return [4, 6, 9, 11].includes(month) ? 30 : 31;
}
